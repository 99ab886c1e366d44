"""Runs the real Snakefile on a tiny config and checks every output, then the rerun and error behaviour."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.workflow
VARIANTS = list(yaml.safe_load((ROOT / "config.yaml").read_text())["variants"])


def snakemake(workdir: Path, *args, config=("tests/tiny.yaml",)):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    configfiles = [str(ROOT / "config.yaml")] + [str(ROOT / c) for c in config]
    cmd = [str(BIN / "snakemake"), *args, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", "--configfile", *configfiles]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf")
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def _splits(workdir):
    return pd.read_csv(workdir / "results/data/demo/splits.tsv", sep="\t", dtype=str)


def test_every_output_with_right_grid(run):
    splits = _splits(run)
    assert sorted(splits["split"]) == ["test", "train", "train"]
    test = splits.loc[splits["split"] == "test", "subject"].tolist()
    for subject in splits["subject"]:
        hr = nib.load(run / f"results/data/demo/sub-{subject}/sub-{subject}_T1w.nii.gz")
        assert nib.aff2axcodes(hr.affine) == ("R", "A", "S")
        assert all(n % 2 == 0 for n in hr.shape)
        data = np.asanyarray(hr.dataobj)
        assert abs(data.mean()) < 1e-4 and abs(data.std() - 1) < 1e-3
    for subject in test:
        hr = nib.load(run / f"results/data/demo/sub-{subject}/sub-{subject}_T1w.nii.gz")
        data = np.asanyarray(hr.dataobj)
        lr = nib.load(run / f"results/lr/demo/nearest/sub-{subject}_T1w.nii.gz")
        assert lr.shape == tuple(n // 2 for n in hr.shape)
        np.testing.assert_allclose(lr.affine[:3, :3], hr.affine[:3, :3] * 2)
        np.testing.assert_array_equal(np.asanyarray(lr.dataobj), data[::2, ::2, ::2])
        for variant in VARIANTS:
            sr = nib.load(run / f"results/sr/demo/nearest/{variant}/sub-{subject}_T1w.nii.gz")
            assert sr.shape == hr.shape
            np.testing.assert_allclose(sr.affine, hr.affine)
            np.testing.assert_allclose(sr.header.get_zooms(), hr.header.get_zooms())
            assert np.isfinite(np.asanyarray(sr.dataobj)).all()
    trained = sorted(p.parent.name for p in (run / "results/models/demo").glob("*/model.pt"))
    assert trained == sorted(set(VARIANTS) - {"trilinear"})
    for variant in trained:
        model_dir = run / "results/models/demo" / variant
        assert (model_dir / "checkpoint.pt").is_file()
        assert len(pd.read_csv(model_dir / "train_log.csv")) == 3


def test_metrics_table_and_figure(run):
    test = _splits(run).query("split == 'test'")["subject"].tolist()
    for variant in VARIANTS:
        metrics = pd.read_csv(run / f"results/metrics/demo/nearest/{variant}.csv", dtype={"subject": str})
        assert metrics["subject"].tolist() == test
        assert {"psnr", "ssim", "nrmse", "psnr_brain", "ssim_brain", "nrmse_brain"} <= set(metrics)
    table = pd.read_csv(run / "results/tables/threeplayer/method_comparison.csv")
    assert table["method"].unique().tolist() == VARIANTS
    assert len(table) == len(VARIANTS) * 6 and (table["n"] == len(test)).all()
    trilinear = pd.read_csv(run / "results/metrics/demo/nearest/trilinear.csv")
    row = table.query("method == 'trilinear' and metric == 'psnr'").iloc[0]
    assert np.isclose(row["mean"], trilinear["psnr"].mean())
    md = (run / "results/tables/threeplayer/method_comparison.md").read_text()
    assert md.count("\n") == 2 + len(VARIANTS) and "±" in md
    from PIL import Image

    with Image.open(run / "results/figures/threeplayer/sr_comparison.png") as png:
        assert png.size[0] > 800 and png.size[1] > 600
    assert (run / "results/figures/threeplayer/sr_comparison.pdf").stat().st_size > 0


def test_nothing_to_do_then_one_figure_rebuilds_alone(run):
    assert "Nothing to be done" in snakemake(run, "-n").stdout
    figure = run / "results/figures/threeplayer/sr_comparison.png"
    figure.unlink()
    plan = snakemake(run, str(figure.relative_to(run)), "-n")
    assert plan.returncode == 0
    table = plan.stdout.split("Job stats:")[1].strip().split("\n\n")[0]
    jobs = dict(line.split() for line in table.splitlines()[2:])
    assert jobs == {"sr_comparison_figure": "1", "total": "1"}
    assert snakemake(run, str(figure.relative_to(run))).returncode == 0 and figure.is_file()
    assert "Nothing to be done" in snakemake(run, "-n").stdout


def test_report_builds_offline(run):
    report = run / "report.html"
    result = snakemake(run, "--report", str(report))
    assert result.returncode == 0, result.stderr[-2000:]
    assert report.stat().st_size > 10_000


def test_lint_has_no_findings(tmp_path):
    result = snakemake(tmp_path, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_config_key_is_named_and_nothing_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"train": {"stepz": 5}}))
    result = snakemake(tmp_path / "wd", config=("tests/tiny.yaml", str(bad)))
    assert result.returncode != 0
    assert "train.stepz" in result.stderr and "did you mean 'steps'" in result.stderr
    assert not (tmp_path / "wd" / "results").exists()


def test_missing_subject_file_stops_with_its_path(tmp_path):
    workdir = tmp_path / "wd"
    assert snakemake(workdir, "results/raw/demo/sub-01/sub-01_T1w.nii.gz").returncode == 0
    raw = workdir / "results/raw/demo/sub-01/sub-01_T1w.nii.gz"
    raw.write_bytes(b"\x1f\x8b broken")  # a truncated download, say
    target = "results/data/demo/sub-01/sub-01_T1w.nii.gz"
    result = snakemake(workdir, target)
    log = (workdir / "results/logs/prepare/demo/sub-01.log").read_text()
    assert result.returncode != 0 and str(raw.relative_to(workdir)) in log and "Fix:" in log
    assert not (workdir / target).exists()
    shutil.rmtree(workdir)


def test_feature_extractor_weights_are_downloaded_and_used(tmp_path):
    import functools
    import hashlib
    import http.server
    import threading

    import torch

    from mrisr.models.registry import build

    torch.manual_seed(7)
    state = {f"module.{k}": v for k, v in build("feature_extractor", {"name": "resnet10", "channels": 4})
             .state_dict().items()}
    served = tmp_path / "served"
    served.mkdir()
    torch.save({"state_dict": state}, served / "resnet_10.pth")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    overlay = tmp_path / "weights.yaml"
    overlay.write_text(yaml.safe_dump({
        "downloads": {"medicalnet_resnet10": {
            "url": f"http://127.0.0.1:{httpd.server_address[1]}/resnet_10.pth",
            "sha256": hashlib.sha256((served / "resnet_10.pth").read_bytes()).hexdigest()}},
        "variants": {"esrgan": {"kind": "gan", "feature_extractor": {"weights": "medicalnet_resnet10"}}},
    }))
    workdir = tmp_path / "wd"
    try:
        result = snakemake(workdir, "results/models/demo/esrgan/model.pt", config=("tests/tiny.yaml", str(overlay)))
    finally:
        httpd.shutdown()
    assert result.returncode == 0, result.stderr[-3000:]
    assert (workdir / "results/downloads/medicalnet_resnet10").is_file()
    checkpoint = torch.load(workdir / "results/models/demo/esrgan/checkpoint.pt")
    for key, value in checkpoint["feature_extractor"].items():  # frozen: still the downloaded weights
        torch.testing.assert_close(value, state[f"module.{key}"])
