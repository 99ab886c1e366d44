"""Runs the real Snakefile on a tiny config and checks every output, then the rerun and error behaviour."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import pip_from
from tests.standin_conda import write_standin_conda

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.workflow
#: the tiny run's variants: config.yaml's that run in its own setting (ECLARE runs in a field setting only)
VARIANTS = [name for name, spec in yaml.safe_load((ROOT / "config.yaml").read_text())["variants"].items()
            if not spec.get("settings")]
#: those of them that learn (the others interpolate)
LEARNED = [name for name, spec in yaml.safe_load((ROOT / "config.yaml").read_text())["variants"].items()
           if name in VARIANTS and spec["kind"] != "interpolation"]


def snakemake(workdir: Path, *args, config=("tests/tiny.yaml",), pythonpath: Path | None = None,
              environ: dict[str, str] | None = None):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", **(environ or {}))
    if pythonpath:  # e.g. a folder holding an installed plugin package
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), os.environ.get("PYTHONPATH")]))
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
    """The split the tiny config asks for: 3 demo subjects, 1 test, no validation, the run's seed."""
    from mrisr.config import schema_default
    from mrisr.plan.subjects import demo_subject_ids, make_splits

    seed = yaml.safe_load((ROOT / "config.yaml").read_text()).get("seed", schema_default("seed"))
    split = make_splits(demo_subject_ids(3), val=0, test=1, seed=seed)
    assert sorted(p.name for p in (workdir / "results/prepare/demo").iterdir()) == [f"sub-{s}" for s in split]
    return pd.DataFrame({"subject": list(split), "split": list(split.values())})


def test_every_output_with_right_grid(run):
    splits = _splits(run)
    assert sorted(splits["split"]) == ["test", "train", "train"]
    test = splits.loc[splits["split"] == "test", "subject"].tolist()
    for subject in splits["subject"]:
        hr = nib.load(run / f"results/prepare/demo/sub-{subject}/sub-{subject}_T1w.nii.gz")
        assert nib.aff2axcodes(hr.affine) == ("R", "A", "S")
        assert all(n % 2 == 0 for n in hr.shape)
        data = np.asanyarray(hr.dataobj)
        assert abs(data.mean()) < 1e-4 and abs(data.std() - 1) < 1e-3
    for subject in test:
        hr = nib.load(run / f"results/prepare/demo/sub-{subject}/sub-{subject}_T1w.nii.gz")
        data = np.asanyarray(hr.dataobj)
        lr = nib.load(run / f"results/degrade/demo/nearest/sub-{subject}_T1w.nii.gz")
        assert lr.shape == tuple(n // 2 for n in hr.shape)
        np.testing.assert_allclose(lr.affine[:3, :3], hr.affine[:3, :3] * 2)
        np.testing.assert_array_equal(np.asanyarray(lr.dataobj), data[::2, ::2, ::2])
        for variant in VARIANTS:
            sr = nib.load(run / f"results/super_resolve/demo/nearest/{variant}/sub-{subject}_T1w.nii.gz")
            assert sr.shape == hr.shape
            np.testing.assert_allclose(sr.affine, hr.affine)
            np.testing.assert_allclose(sr.header.get_zooms(), hr.header.get_zooms())
            assert np.isfinite(np.asanyarray(sr.dataobj)).all()
    trained = sorted(p.parent.name for p in (run / "results/train/demo").glob("*/model.safetensors"))
    assert trained == sorted(LEARNED)
    for variant in trained:
        model_dir = run / "results/train/demo" / variant
        assert (model_dir / "checkpoint.pt").is_file()
        assert len(pd.read_csv(model_dir / "train_log.csv")) == 3


def test_model_cards_hold_the_test_metrics_and_apply_to_a_raw_scan(run, tmp_path):
    """Each model's card names its data and holds its test-set metrics; on a raw demo scan (scanner units, not
    prepared), decimated x2 as a user's LR scan, it gives an output on that scan's HR grid."""
    from mrisr.cli import main
    from mrisr.grid import LrGrid, lr_affine
    from mrisr.model_card import load_model

    splits = _splits(run)
    train = sorted(splits.query("split == 'train'")["subject"])
    prepare = {**yaml.safe_load((ROOT / "config.yaml").read_text())["prepare"],
               **yaml.safe_load((ROOT / "tests/tiny.yaml").read_text()).get("prepare", {})}
    for variant in sorted(LEARNED):
        card = load_model(run / f"results/evaluate/demo/model_cards/{variant}.safetensors")[2]
        metrics = pd.read_csv(run / f"results/evaluate/demo/nearest/{variant}.csv", dtype={"subject": str})
        assert card["variant"] == variant and card["training"]["subjects"] == train
        assert {k: card["preprocessing"][k] for k in ("crop", "normalise", "margin")} == {
            k: prepare[k] for k in ("crop", "normalise", "margin")}
        per_subject = card["metrics"]["per_subject"]
        assert list(per_subject) == metrics["subject"].tolist()
        assert np.isclose(per_subject[metrics["subject"][0]]["psnr"], metrics["psnr"][0])
    subject = splits.query("split == 'test'")["subject"].iloc[0]
    raw = nib.load(run / f"results/fetch/demo/sub-{subject}/sub-{subject}_T1w.nii.gz")
    hr = np.asanyarray(raw.dataobj, dtype=np.float32)[: raw.shape[0] // 2 * 2, : raw.shape[1] // 2 * 2,
                                                       : raw.shape[2] // 2 * 2]
    nib.save(nib.Nifti1Image(hr[::2, ::2, ::2], lr_affine(raw.affine, 2, LrGrid.CORNER)), tmp_path / "lr.nii.gz")
    assert main(["super-resolve", "--model", str(run / "results/evaluate/demo/model_cards/esrgan.safetensors"),
                 str(tmp_path / "lr.nii.gz"), str(tmp_path / "sr.nii.gz")]) == 0
    sr = nib.load(tmp_path / "sr.nii.gz")
    assert sr.shape == hr.shape and np.allclose(sr.affine, raw.affine)
    assert b"esrgan" in sr.header["descrip"].item() and np.isfinite(np.asanyarray(sr.dataobj)).all()


def test_the_readme_commands_run_as_written_on_the_tiny_results(run, tmp_path):
    """The README's commands after the demo (rerun a figure, the report, a model card on a user's scan, a folder and
    a BIDS dataset), in the tiny run's folder, with its Snakefile and config added to Snakemake's options."""
    from bids import BIDSLayout

    from mrisr.grid import LrGrid, lr_affine
    from tests.test_docs import documented

    raw = nib.load(next((run / "results/fetch/demo").glob("sub-*/sub-*_T1w.nii.gz")))
    hr = np.asanyarray(raw.dataobj, dtype=np.float32)
    lr = nib.Nifti1Image(hr[: hr.shape[0] // 2 * 2:2, : hr.shape[1] // 2 * 2:2, : hr.shape[2] // 2 * 2:2],
                         lr_affine(raw.affine, 2, LrGrid.CORNER))  # the demo's models learn decimation
    for place in ("my_T1w.nii.gz", "scans/a_T1w.nii.gz", "scans/b_T1w.nii.gz", "bids/sub-01/anat/sub-01_T1w.nii.gz"):
        (run / place).parent.mkdir(parents=True, exist_ok=True)
        nib.save(lr, run / place)
    (run / "bids/dataset_description.json").write_text(json.dumps({"Name": "mine", "BIDSVersion": "1.10.0"}))
    options = f"-s {ROOT / 'Snakefile'} --configfile {ROOT / 'config.yaml'} {ROOT / 'tests/tiny.yaml'}"
    script = ["set -e"] + [
        f". {BIN}/activate" if c == ". .venv/bin/activate" else f"{c} {options}" if c.startswith("snakemake") else c
        for c in documented("tiny run")]
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=run, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "esrgan" in result.stdout and (run / "results/report.html").stat().st_size > 0
    sr = [nib.load(run / p) for p in ("my_T1w_sr.nii.gz", "sr/a_T1w.nii.gz", "sr/b_T1w.nii.gz")]
    assert all(img.shape == tuple(2 * n for n in lr.shape) and np.allclose(img.affine[:3, :3], raw.affine[:3, :3])
               for img in sr)
    derivatives = BIDSLayout(run / "bids", derivatives=run / "bids/derivatives/mrisr").derivatives["mrisr"]
    [image] = derivatives.get(desc="sr", suffix="T1w", extension=".nii.gz")
    np.testing.assert_array_equal(np.asanyarray(nib.load(image.path).dataobj), np.asanyarray(sr[0].dataobj))
    assert image.get_metadata()["Sources"] == ["bids:raw:sub-01/anat/sub-01_T1w.nii.gz"]


def test_mtvnet_settings_a_plugin_and_an_outside_method_in_miniature_fill_the_tables_and_figures(
        tmp_path, plugin_site, eclare_index, monkeypatch):
    """workflow/configs/mtvnet_x4.yaml on the demo data at test sizes, plus the thick-slice setting, the example
    plugin's generator (installed as a package) and ECLARE in its own environment (the stand-in, from a package
    index on 127.0.0.1): each learned variant trained in each setting (x4 blur, 1 x 1 x 4 slices), scored, in the
    settings table with MTVNet's published rows apart; ECLARE in the thick-slice setting only, and a second outside
    variant whose pins pip cannot install not computed, saying why; the plugin also in the method table and the SR
    figure, its card recording its package; the x4 (MTVNet's resize, its LR made from whole volumes) and
    thick-slice (averaged slabs) cards take a raw scan made so onto the raw scan's own grid; ECLARE's output, on the
    slab grid too, is taken as it is; the pixel variant trains without a discriminator."""
    from mrisr.cli import main
    from mrisr.degrade import degrade_file
    from mrisr.grid import LrGrid, lr_affine
    from mrisr.model_card import load_model

    small = tmp_path / "small.yaml"
    outside = {"kind": "external", "settings": ["thick_slice"], "iterations": 7,
               "command": yaml.safe_load((ROOT / "config.yaml").read_text())["variants"]["eclare"]["command"]}
    for name, pin in (("eclare", "eclare==1.0.1"), ("eclare_offline", "eclare==9.9.9")):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"dependencies": ["python=3.11", "pip", {"pip": [pin]}]}))
    small.write_text(yaml.safe_dump({
        "variants": {"rrdbnet3d": {"generator": {"channels": 4, "growth": 4, "blocks": 1}},  # kind pixel: G alone
                     "eclare": {**outside, "label": "ECLARE", "environment": str(tmp_path / "eclare.yaml")},
                     "eclare_offline": {**outside, "environment": str(tmp_path / "eclare_offline.yaml")}},
        "field": {"settings": ["mtvnet_x4_blur", "thick_slice"],  # kspace_hr: tests/test_degrade.py; mdcsrn: test_scale
                  "variants": ["trilinear", "nearest_neighbour", "rrdbnet3d", "fsrcnn", "eclare", "eclare_offline"]},
        "run_variants": ["trilinear", "fsrcnn"]}))
    plugin = tmp_path / "plugin.yaml"  # a second overlay: mtvnet_x4.yaml's variants stay, fsrcnn joins them
    plugin.write_text(yaml.safe_dump({
        "variants": {"fsrcnn": {"kind": "gan", "start": "scratch",
                                "generator": {"name": "fsrcnn3d", "features": 4, "shrunk": 2, "mapping": 1},
                                "discriminator": {"channels": [4, 8]}, "feature_extractor": {"channels": 4}}},
        "papers": {"threeplayer": {"methods": ["trilinear", "fsrcnn"], "reference": "trilinear"}}}))
    workdir = tmp_path / "wd"
    table = "results/papers/demo/field/settings.csv"
    result = snakemake(workdir, table, "results/papers/demo/field/settings.png",
                       "results/papers/demo/threeplayer/method_comparison.md",
                       "results/papers/demo/threeplayer/sr_comparison.png",
                       config=("tests/tiny.yaml", "workflow/configs/mtvnet_x4.yaml", str(small), str(plugin)),
                       pythonpath=plugin_site, environ=pip_from(eclare_index))
    assert result.returncode == 0, result.stderr[-3000:]
    frame = pd.read_csv(workdir / table)
    ours = frame[~frame.method.str.endswith("(published)")]
    assert {(s, m) for s, m in zip(ours.setting, ours.method)} == {
        (s, m) for s in ("mtvnet_x4_blur", "thick_slice") for m in ("trilinear", "nearest_neighbour", "rrdbnet3d",
                                                                    "fsrcnn")} | {
        ("thick_slice", "ECLARE"), ("thick_slice", "eclare_offline")}
    thick = ours[(ours.setting == "thick_slice") & (ours.metric == "psnr_brain")].set_index("method")["mean"]
    # the stand-in interpolates linearly on the slab grid, as trilinear does there: the same SR, taken unresampled
    assert abs(thick["ECLARE"] - thick["trilinear"]) < 1e-3
    assert np.isnan(thick["eclare_offline"])
    markdown = (workdir / table.replace(".csv", ".md")).read_text()
    assert "eclare_offline not computed: its environment could not be installed: pip could not install" in markdown
    lr_path = next((workdir / "results/degrade/demo/thick_slice").glob("sub-*_T1w.nii.gz"))
    eclare_sr = nib.load(workdir / "results/super_resolve/demo/thick_slice/eclare" / lr_path.name)
    subject = lr_path.name.split("_")[0]
    [written] = (workdir / "results/external/demo/thick_slice/eclare" / subject).glob("*.nii.gz")
    np.testing.assert_array_equal(np.asanyarray(eclare_sr.dataobj), np.asanyarray(nib.load(written).dataobj))
    np.testing.assert_allclose(eclare_sr.affine, nib.load(workdir / "results/prepare/demo" / lr_path.name.split("_")[0]
                                                          / lr_path.name).affine)
    log = workdir / "results/logs/external_run/demo/thick_slice/eclare" / f"{lr_path.name.split('_')[0]}.log"
    assert "7 patches, slice thickness 4" in log.read_text()
    assert "| fsrcnn | 1 |" in (workdir / "results/papers/demo/threeplayer/method_comparison.md").read_text()
    assert (workdir / "results/papers/demo/threeplayer/sr_comparison.png").stat().st_size > 0
    monkeypatch.syspath_prepend(str(plugin_site))  # this process too has the plugin installed
    plugin_card = load_model(workdir / "results/train/demo/fsrcnn@thick_slice/model.safetensors")[2]
    assert plugin_card["plugin"]["package"] == "mrisr-fsrcnn3d" and plugin_card["scale"] == [1, 1, 4]
    assert set(ours.metric) == {"psnr_brain", "ssim_brain", "nrmse_brain", "psnr_mtvnet", "ssim_mtvnet"}
    assert (ours.n == 1).sum() == len(ours) - 5 and (ours[ours.method == "eclare_offline"].n == 0).all()
    published = frame[frame.method.str.endswith("(published)")]
    assert set(published.setting) == {"mtvnet_x4_blur"} and published["n"].isna().all() and len(published) == 8
    assert set(published.metric) == {"psnr_mtvnet", "ssim_mtvnet"}  # their numbers beside ours computed as theirs
    for setting, factors in (("mtvnet_x4_blur", (4, 4, 4)), ("thick_slice", (1, 1, 4))):
        lr_path = next((workdir / f"results/degrade/demo/{setting}").glob("sub-*_T1w.nii.gz"))
        lr, hr = nib.load(lr_path), nib.load(workdir / "results/prepare/demo" / lr_path.name.split("_")[0] / lr_path.name)
        assert lr.shape == tuple(n // f for n, f in zip(hr.shape, factors))  # far rows that fill no LR voxel dropped
        grid = {"mtvnet_x4_blur": LrGrid.SPANNING, "thick_slice": LrGrid.SLAB}[setting]
        np.testing.assert_allclose(lr.affine, lr_affine(hr.affine, factors, grid, lr.shape))
        card = load_model(workdir / f"results/train/demo/rrdbnet3d@{setting}/model.safetensors")[2]
        assert card["scale"] == (list(factors) if len(set(factors)) > 1 else factors[0])
        assert card["degradation"]["method"] == {"mtvnet_x4_blur": "resize", "thick_slice": "slice_profile"}[setting]
        assert card["lr_grid"] == grid.value and card["variant_config"]["kind"] == "pixel"
        assert card["variant_config"]["generator"]["init"] == "kaiming_scaled"  # the overlay's, under small.yaml's sizes
        train_log = pd.read_csv(workdir / f"results/train/demo/rrdbnet3d@{setting}/train_log.csv")
        assert "loss_pixel" in train_log and "loss_d" not in train_log  # no discriminator was built or stepped
    raw = nib.as_closest_canonical(nib.load(next((workdir / "results/fetch/demo").glob("sub-*/sub-*_T1w.nii.gz"))))
    nib.save(raw, tmp_path / "raw.nii.gz")
    thick = {"method": "slice_profile"}  # each LR voxel the mean of its slab, as an acquisition makes it
    for setting, factors, degradation in (("mtvnet_x4_blur", (4, 4, 4), {"method": "resize"}),
                                          ("thick_slice", (1, 1, 4), thick)):
        degrade_file(str(tmp_path / "raw.nii.gz"), str(tmp_path / "lr.nii.gz"), degradation, list(factors), 0.0, 0)
        data = np.asanyarray(raw.dataobj)[tuple(slice(0, n - n % f) for n, f in zip(raw.shape, factors))]
        model = workdir / f"results/train/demo/rrdbnet3d@{setting}/model.safetensors"
        assert main(["super-resolve", "--model", str(model), str(tmp_path / "lr.nii.gz"),
                     str(tmp_path / "sr.nii.gz")]) == 0
        sr = nib.load(tmp_path / "sr.nii.gz")  # on the grid the LR was made from: the raw scan's own
        assert sr.shape == data.shape and np.allclose(sr.affine, raw.affine, atol=1e-4)


def test_every_gan_variant_starts_from_the_pixel_loss_generator_of_its_architecture(run):
    """One pretrain job per generator architecture and pixel loss; each variant's card records the start whose
    weights it began from, and the tables say so."""
    import torch

    from mrisr.model_card import load_model
    from mrisr.models.registry import build

    pretrained = {d.name: d for d in (run / "results/pretrain/demo").iterdir()}
    assert sorted(k.rsplit("-", 1)[0] for k in pretrained) == ["mdcsrn-mse", "rrdb-l1"]
    for key, folder in pretrained.items():
        log = pd.read_csv(folder / "train_log.csv")
        assert len(log) == TINY["pretrain"]["steps"] and log["lr"].is_monotonic_decreasing
        assert load_model(folder / "model.safetensors")[2]["variant"] == f"pretrained-{key}"
    for variant in sorted(LEARNED):
        card = load_model(run / f"results/train/demo/{variant}/model.safetensors")[2]
        start = card["training"]["start"]
        family = "mdcsrn-mse" if variant == "wgan_gp" else "rrdb-l1"
        assert start["model"].startswith(f"pretrained-{family}-") and start["steps"] == TINY["pretrain"]["steps"]
    # esrgan's steps moved its generator away from the pretrained weights, not from a random start
    start = load_model(run / "results/train/demo/esrgan/model.safetensors")[2]["training"]["start"]
    config, weights = load_model(pretrained[start["model"].removeprefix("pretrained-")] / "model.safetensors")[:2]
    torch.manual_seed(0)
    random_start = build("generator", config).state_dict()
    trained = load_model(run / "results/train/demo/esrgan/model.safetensors")[1]
    distance = lambda a, b: sum(float((a[k].float() - b[k].float()).abs().sum()) for k in a)
    assert distance(trained, weights) < distance(trained, random_start)
    table = pd.read_csv(run / "results/papers/demo/threeplayer/method_comparison.csv", keep_default_na=False)
    starts = dict(zip(table["method"], table["start"]))
    assert starts["trilinear"] == "" and "rrdb-l1-" in starts["esrgan"] and "mdcsrn-mse-" in starts["wgan_gp"]
    assert "Generators: " in (run / "results/papers/demo/threeplayer/method_comparison.md").read_text()


PAPERS = yaml.safe_load((ROOT / "config.yaml").read_text())["papers"]
TINY = yaml.safe_load((ROOT / "tests/tiny.yaml").read_text())


def test_metrics_tables_and_statistics(run):
    test = _splits(run).query("split == 'test'")["subject"].tolist()
    for variant in VARIANTS:
        metrics = pd.read_csv(run / f"results/evaluate/demo/nearest/{variant}.csv", dtype={"subject": str})
        assert metrics["subject"].tolist() == test
        assert {"psnr", "ssim", "ssim3d", "nrmse", "psnr_brain", "ssim_brain", "ssim3d_brain", "nrmse_brain", "lpips",
                "sigma_lr"} <= set(metrics)
    for paper, names in {"threeplayer": ("method_comparison", "ablation", "method_comparison_out_of_sample"),
                         "disgan": ("method_comparison", "ablation")}.items():
        for name in names:
            variants = PAPERS[paper]["ablations" if name == "ablation" else "methods"]
            table = pd.read_csv(run / f"results/papers/demo/{paper}/{name}.csv")
            assert table["method"].unique().tolist() == variants
            assert (table.query("metric != 'lpips'")["n"] == len(test)).all()
            assert {"p_t_holm", "p_wilcoxon_holm", "cohen_d", "rbc"} <= set(table)
            ref = table[table["method"] == PAPERS[paper]["reference"]]
            assert ref["reference"].isna().all() and table[table["method"] != ref["method"].iloc[0]]["reference"].notna().any()
            md = (run / f"results/papers/demo/{paper}/{name}.md").read_text()
            assert "Paired tests against" in md and "Note: LPIPS not computed" in md
    table = pd.read_csv(run / "results/papers/demo/threeplayer/method_comparison.csv")
    trilinear = pd.read_csv(run / "results/evaluate/demo/nearest/trilinear.csv")
    row = table.query("method == 'trilinear' and metric == 'psnr'").iloc[0]
    assert np.isclose(row["mean"], trilinear["psnr"].mean())
    assert np.isclose(row["mean_diff"], (trilinear["psnr"] - pd.read_csv(run / "results/evaluate/demo/nearest/threeplayer.csv")["psnr"]).mean())
    assert table.query("metric == 'lpips'")["mean"].isna().all()
    status = yaml.safe_load((run / "results/fetch/lpips/status.json").read_text())
    assert status["available"] is False and "Connection refused" in status["reason"]


def test_out_of_sample_set_is_all_test_and_uses_the_models_trained_in_sample(run):
    ood = pd.read_csv(run / "results/evaluate/demo_ood/nearest/threeplayer.csv", dtype={"subject": str})
    assert ood["subject"].tolist() == ["01"]
    assert not (run / "results/train/demo_ood").exists()
    in_sample = nib.load(run / "results/prepare/demo/sub-01/sub-01_T1w.nii.gz")
    out_sample = nib.load(run / "results/prepare/demo_ood/sub-01/sub-01_T1w.nii.gz")
    assert not np.array_equal(np.asanyarray(in_sample.dataobj), np.asanyarray(out_sample.dataobj))


def test_noise_experiment_adds_the_configured_noise_to_the_lr_input(run):
    subject = _splits(run).query("split == 'test'")["subject"].iloc[0]
    clean = np.asanyarray(nib.load(run / f"results/degrade/demo/nearest/sub-{subject}_T1w.nii.gz").dataobj)
    noisy = nib.load(run / f"results/degrade/demo/nearest-noise0.1/sub-{subject}_T1w.nii.gz")
    assert abs(float((np.asanyarray(noisy.dataobj) - clean).std()) - 0.1) < 0.01
    table = pd.read_csv(run / "results/papers/demo/disgan/noise.csv")
    assert sorted(table["sigma"].unique()) == TINY["papers"]["disgan"]["noise_sigmas"]
    assert table["method"].unique().tolist() == PAPERS["disgan"]["methods"]
    sigma_in = table.query("metric == 'sigma_lr' and method == 'trilinear'").set_index("sigma")["mean"]
    assert sigma_in[0.1] > sigma_in[0.0] + 0.05


def test_segmentation_study_trains_both_arms_alike_and_scores_the_real_test_images(run):
    seg, seeds = TINY["segmentation"], TINY["segmentation"]["seeds"]
    test = _splits(run).query("split == 'test'")["subject"].tolist()
    train = _splits(run).query("split == 'train'")["subject"].tolist()
    for arm in ("real", "real+sr"):
        for seed in seeds:
            out = run / f"results/segment/demo/{arm}/seed-{seed}"
            assert pd.read_csv(out / "train_log.csv")["step"].tolist() == list(range(1, seg["steps"] + 1))
            log = (run / f"results/logs/segment_train/demo/{arm}/seed-{seed}.log").read_text()
            assert f"{arm} arm, seed {seed}: {len(train)} training subjects" in log
            scores = pd.read_csv(out / "scores.csv", dtype={"subject": str})
            assert scores["subject"].tolist() == test and (scores["seed"] == seed).all()
            for subject in test:
                hr = nib.load(run / f"results/prepare/demo/sub-{subject}/sub-{subject}_T1w.nii.gz")
                dseg = nib.load(out / f"sub-{subject}_dseg.nii.gz")
                np.testing.assert_allclose(dseg.affine, hr.affine)
                assert dseg.shape == hr.shape and dseg.get_data_dtype() == np.uint8
    # the real+sr arm was given the SR volumes of the training subjects (and the real arm was not)
    for subject in train:
        assert (run / f"results/super_resolve/demo/nearest/esrgan/sub-{subject}_T1w.nii.gz").is_file()
    table = pd.read_csv(run / "results/papers/demo/augment/segmentation.csv")
    assert table["arm"].unique().tolist() == ["real", "real+sr"]
    assert set(table["metric"]) == {f"{m}_{c}" for m in ("dice", "hd95") for c in ("CSF", "GM", "WM")}
    assert (table["seeds"] == len(seeds)).all() and (table["n"] == len(test)).all()
    real = pd.concat(pd.read_csv(run / f"results/segment/demo/real/seed-{s}/scores.csv") for s in seeds)
    row = table.query("arm == 'real' and metric == 'dice_WM'").iloc[0]
    assert np.isclose(row["seed_mean"], real["dice_WM"].mean())
    assert f"Across {len(seeds)} seed" in (run / "results/papers/demo/augment/segmentation.md").read_text()


def test_anatomy_sets_each_method_s_segmentations_against_the_hr_s_with_both_segmenters(run):
    """Every method of the method table, segmented by the real arm's network and by Atropos: the table's volumes and
    errors are those of the label maps the jobs wrote (read back here, counted by hand), the HR's label maps lie on
    the HR grid, and the table pairs each method against trilinear per segmenter and class."""
    [test] = _splits(run).query("split == 'test'")["subject"].tolist()
    methods = yaml.safe_load((ROOT / "config.yaml").read_text())["papers"]["threeplayer"]["methods"]
    hr = nib.load(run / f"results/prepare/demo/sub-{test}/sub-{test}_T1w.nii.gz")
    voxel_ml = float(np.prod(hr.header.get_zooms())) / 1000
    for segmenter in ("network", "atropos"):
        hr_labels = nib.load(run / f"results/anatomy/demo/hr/{segmenter}/sub-{test}_dseg.nii.gz")
        np.testing.assert_allclose(hr_labels.affine, hr.affine)
        reference = np.asanyarray(hr_labels.dataobj)
        for method in methods:
            cell = run / f"results/anatomy/demo/sr/nearest/{method}"
            row = pd.read_csv(cell / "volumes.csv", dtype={"subject": str}).set_index("subject").loc[test]
            labels = np.asanyarray(nib.load(cell / segmenter / f"sub-{test}_dseg.nii.gz").dataobj)
            for index, name in enumerate(("CSF", "GM", "WM"), start=1):
                volume, truth = (labels == index).sum() * voxel_ml, (reference == index).sum() * voxel_ml
                assert np.isclose(row[f"{segmenter}_{name}_volume_ml"], volume)
                assert np.isclose(row[f"{segmenter}_{name}_error_ml"], volume - truth)
    table = pd.read_csv(run / "results/papers/demo/anatomy/volumes.csv")
    assert set(table["segmenter"]) == {"network", "atropos"} and set(table["setting"]) == {"nearest"}
    assert set(table["method"]) == set(methods) and (table["n"] == 1).all()
    tested = table.dropna(subset=["reference"])
    assert set(tested["reference"]) == {"trilinear"} and "trilinear" not in set(tested["method"])
    assert "Segmented by atropos" in (run / "results/papers/demo/anatomy/volumes.md").read_text()


def test_every_figure_is_written_with_its_pdf(run):
    from PIL import Image

    for figure in ("threeplayer/sr_comparison", "threeplayer/zoom_profile", "threeplayer/discrepancy",
                   "disgan/sr_comparison", "disgan/noise", "disgan/stripes", "augment/segmentation",
                   "usage/before_after"):
        with Image.open(run / f"results/papers/demo/{figure}.png") as png:
            assert png.size[0] > 800 and png.size[1] > 400, figure
        assert (run / f"results/papers/demo/{figure}.pdf").stat().st_size > 0
    subject = _splits(run).query("split == 'test'")["subject"].iloc[0]
    pasted = nib.load(run / f"results/super_resolve/demo/nearest/disgan/pasted/sub-{subject}_T1w.nii.gz")
    blended = nib.load(run / f"results/super_resolve/demo/nearest/disgan/sub-{subject}_T1w.nii.gz")
    np.testing.assert_allclose(pasted.affine, blended.affine)
    assert not np.allclose(np.asanyarray(pasted.dataobj), np.asanyarray(blended.dataobj), atol=1e-4)
    # the README's figure: the raw scan's LR through the model card, back on the raw scan's grid and in its units
    raw = nib.load(run / f"results/fetch/demo/sub-{subject}/sub-{subject}_T1w.nii.gz")
    scan_sr = nib.load(run / f"results/super_resolve/demo/scan/threeplayer/sub-{subject}_acq-sr_T1w.nii.gz")
    assert scan_sr.shape == tuple(n // 2 * 2 for n in raw.shape) and np.allclose(scan_sr.affine, raw.affine)
    assert b"threeplayer" in scan_sr.header["descrip"].item()


def test_the_run_writes_its_plan_as_mrisr_plan_prints_it(run):
    """results/plan.yaml is what `mrisr plan` prints for the same config, and says what the run did."""
    printed = subprocess.run([str(BIN / "mrisr"), "plan", "--configfile", str(ROOT / "tests/tiny.yaml"),
                              "--directory", str(ROOT)], capture_output=True, text=True, check=True).stdout
    written = (run / "results/plan.yaml").read_text()
    assert written == printed
    plan = yaml.safe_load(written)
    splits = _splits(run)
    assert plan["datasets"]["demo"]["test"] == list(splits.subject[splits.split == "test"])
    trained = {p.parent.name for p in (run / "results/train/demo").glob("*/model.safetensors")}
    assert set(plan["training"]["train"]) == trained and plan["jobs"]["train"] == len(trained)


def test_nothing_to_do_then_one_figure_rebuilds_alone(run):
    assert "Nothing to be done" in snakemake(run, "-n").stdout
    figure = run / "results/papers/demo/threeplayer/sr_comparison.png"
    figure.unlink()
    plan = snakemake(run, str(figure.relative_to(run)), "-n")
    assert plan.returncode == 0
    table = plan.stdout.split("Job stats:")[1].strip().split("\n\n")[0]
    jobs = dict(line.split() for line in table.splitlines()[2:])
    assert jobs == {"papers_sr_comparison": "1", "total": "1"}
    assert snakemake(run, str(figure.relative_to(run))).returncode == 0 and figure.is_file()
    assert "Nothing to be done" in snakemake(run, "-n").stdout


def _chromium(*args):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("chromium is missing: MRISR_SYSTEM_PACKAGES=1 make test installs Debian's chromium (CI sets it)")
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=10000", *args], capture_output=True, text=True, timeout=120)


def test_report_renders_in_chromium_with_every_figure_loading(run, tmp_path):
    import re

    from PIL import Image

    report = run / "report.html"
    result = snakemake(run, "--report", str(report))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ERROR" not in result.stderr, result.stderr[-2000:]  # a caption that does not render
    html = report.read_text()
    images = re.findall(r"data:image/png;[^\"']*?base64,[A-Za-z0-9+/=]+", html)
    figures = sorted(p.name for p in (run / "results/papers/demo").rglob("*.png"))
    assert sorted(re.search(r"filename=([^;]+);", uri).group(1) for uri in images) == figures
    # every embedded figure decodes and loads in the browser
    page = tmp_path / "images.html"
    page.write_text("<html><body>" + "".join(f'<img src="{uri}">' for uri in images) + "<script>onload = () => "
                    "{document.title = 'loaded ' + [...document.images].filter(i => i.complete && i.naturalWidth > 100)"
                    ".length}</script></body></html>")
    assert f"<title>loaded {len(images)}</title>" in _chromium("--dump-dom", page.as_uri()).stdout
    # the report itself renders: its navigation lists each paper, and the page is not blank
    dom = _chromium("--dump-dom", report.as_uri()).stdout
    assert all(name in dom for name in ("threeplayer", "disgan", "augment", "Workflow"))
    shot = tmp_path / "report.png"
    _chromium("--window-size=1400,1000", f"--screenshot={shot}", report.as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    values, counts = np.unique(pixels, return_counts=True)
    drawn = np.abs(pixels - values[counts.argmax()]) > 30  # text, navigation and the workflow graph
    assert pixels.std() > 10 and drawn.mean() > 0.01


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


def test_rule_files_are_snakefmt_clean():
    """`snakefmt --check` with pyproject's [tool.snakefmt] (snakefmt is a test extra; skipped only where the tests
    run without the extras)."""
    snakefmt = shutil.which("snakefmt")
    if snakefmt is None:
        pytest.skip("snakefmt is not installed")
    result = subprocess.run([snakefmt, "--check", "Snakefile", "workflow/rules"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_subject_file_stops_with_its_path(tmp_path):
    workdir = tmp_path / "wd"
    assert snakemake(workdir, "results/fetch/demo/sub-01/sub-01_T1w.nii.gz").returncode == 0
    raw = workdir / "results/fetch/demo/sub-01/sub-01_T1w.nii.gz"
    raw.write_bytes(b"\x1f\x8b broken")  # a truncated download, say
    target = "results/prepare/demo/sub-01/sub-01_T1w.nii.gz"
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
        result = snakemake(workdir, "results/train/demo/esrgan/model.safetensors", config=("tests/tiny.yaml", str(overlay)))
    finally:
        httpd.shutdown()
    assert result.returncode == 0, result.stderr[-3000:]
    assert (workdir / "results/fetch/downloads/medicalnet_resnet10").is_file()
    checkpoint = torch.load(workdir / "results/train/demo/esrgan/checkpoint.pt")
    for key, value in checkpoint["feature_extractor"].items():  # frozen: still the downloaded weights
        torch.testing.assert_close(value, state[f"module.{key}"])


def _lab_folder(folder: Path, subjects=("a1", "b2", "c3", "d4")) -> None:
    """A lab's own scans: IXI-like anisotropic voxels, masks, no label maps."""
    rng = np.random.default_rng(1)
    affine = np.diag([0.94, 0.94, 1.2, 1.0])
    for s in subjects:
        mask = np.zeros((20, 20, 16), np.uint8)
        mask[4:16, 4:16, 3:13] = 1
        data = (rng.normal(size=mask.shape) + 3 * mask).astype(np.float32)
        folder.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(data, affine), folder / f"sub-{s}_T1w.nii.gz")
        nib.save(nib.Nifti1Image(mask, affine), folder / f"sub-{s}_mask.nii.gz")


def _lab_config(tmp_path: Path, folder: Path, **prepare) -> Path:
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump({"dataset": "lab", "datasets": {"lab": {"source": "folder", "path": str(folder)}},
                                    "prepare": {"val": 0, "test": 1, **prepare}}))
    return path


def test_unlabelled_folder_leaves_the_segmentation_study_out_unless_it_is_asked_for(tmp_path):
    folder = tmp_path / "scans"
    _lab_folder(folder)
    lab = _lab_config(tmp_path, folder)
    planned = snakemake(tmp_path / "wd", "-n", config=("tests/tiny.yaml", str(lab)))
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert "segment_train" not in planned.stdout and "results/papers/lab/threeplayer/method_comparison.csv" in planned.stdout
    asked = tmp_path / "asked.yaml"
    asked.write_text(yaml.safe_dump({"segmentation": {"enabled": True}}))
    refused = snakemake(tmp_path / "wd", "-n", config=("tests/tiny.yaml", str(lab), str(asked)))
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "dataset 'lab' has no label maps" in said and "Fix:" in said


def test_folder_subject_without_its_mask_stops_before_any_job(tmp_path):
    folder = tmp_path / "scans"
    _lab_folder(folder)
    (folder / "sub-b2_mask.nii.gz").unlink()
    result = snakemake(tmp_path / "wd", "-n", config=("tests/tiny.yaml", str(_lab_config(tmp_path, folder))))
    said = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{folder}/sub-b2_mask.nii.gz: brain mask of subject b2" in said and "Fix:" in said
    assert not (tmp_path / "wd" / "results").exists()


def test_folder_of_anisotropic_scans_is_resampled_and_prepared(tmp_path):
    folder = tmp_path / "scans"
    _lab_folder(folder)
    workdir = tmp_path / "wd"
    targets = [f"results/prepare/lab/sub-{s}/sub-{s}_{k}.nii.gz" for s in ("a1", "d4") for k in ("T1w", "mask")]
    refused = snakemake(workdir, *targets, config=("tests/tiny.yaml", str(_lab_config(tmp_path, folder))))
    assert refused.returncode != 0
    log = (workdir / "results/logs/prepare/lab/sub-a1.log").read_text()
    assert "anisotropic" in log and "prepare.resample" in log
    lab = _lab_config(tmp_path, folder, resample=1.0)
    result = snakemake(workdir, *targets, config=("tests/tiny.yaml", str(lab)))
    assert result.returncode == 0, result.stderr[-3000:]
    t1w = nib.load(workdir / targets[0])
    np.testing.assert_allclose(t1w.header.get_zooms(), [1, 1, 1], atol=1e-5)
    assert b"resampled from 0.94 x 0.94 x 1.2 mm" in t1w.header["descrip"].item()
    assert not (workdir / "results/prepare/lab/sub-a1/sub-a1_dseg.nii.gz").exists()


def test_a_bids_dataset_goes_through_the_workflow(tmp_path):
    """Two subjects with two sessions or two runs and one plain: the filters choose each one's T1w, the
    derivatives folder gives sub-02's brain mask, the others get their head mask; prepared, degraded,
    interpolated and scored like any dataset."""
    from mrisr.preprocessing import head_mask
    from tests.conftest import BIDS_T1W, head, write_bids_dataset

    shape, rng = (24, 26, 22), np.random.default_rng(1)
    scans = {p: head(rng, shape) for p in (*BIDS_T1W, "sub-03/anat/sub-03_T1w.nii.gz")}
    brain = np.zeros(shape, np.uint8)
    brain[6:18, 7:19, 5:17] = 1
    root = write_bids_dataset(tmp_path / "bids", scans,
                              derivatives={("masks", "sub-02/anat/sub-02_desc-brain_mask.nii.gz"): brain})
    lab = tmp_path / "bids.yaml"
    lab.write_text(yaml.safe_dump({"dataset": "lab", "datasets": {"lab": {
        "source": "bids", "path": str(root), "filters": {"session": ["1", None], "run": [1, None]},
        "derivatives": "derivatives/masks"}}}))
    workdir = tmp_path / "wd"
    prepared = [f"results/prepare/lab/sub-{s}/sub-{s}_{k}.nii.gz" for s in ("01", "02", "03") for k in ("T1w", "mask")]
    result = snakemake(workdir, "results/evaluate/lab/nearest/trilinear.csv", *prepared,
                       config=("tests/tiny.yaml", str(lab)))
    assert result.returncode == 0, result.stderr[-3000:]

    def correlation(subject, source):
        hr = nib.load(workdir / f"results/prepare/lab/sub-{subject}/sub-{subject}_T1w.nii.gz")
        start = np.round(hr.affine[:3, 3] / 2).astype(int)  # the crop's corner on the source grid (2 mm, origin 0)
        crop = scans[source][tuple(slice(a, a + n) for a, n in zip(start, hr.shape))].astype(float)
        return np.corrcoef(crop.ravel(), np.asanyarray(hr.dataobj).ravel())[0, 1]

    assert correlation("01", BIDS_T1W[0]) > 0.9999 and correlation("01", BIDS_T1W[1]) < 0.99
    assert correlation("02", BIDS_T1W[2]) > 0.9999 and correlation("02", BIDS_T1W[3]) < 0.99
    masks = {s: np.asanyarray(nib.load(workdir / f"results/prepare/lab/sub-{s}/sub-{s}_mask.nii.gz").dataobj)
             for s in ("01", "02")}
    assert masks["02"].sum() == brain.sum() and masks["01"].sum() == head_mask(scans[BIDS_T1W[0]].astype(np.float32)).sum()
    scores = pd.read_csv(workdir / "results/evaluate/lab/nearest/trilinear.csv", dtype={"subject": str})
    assert len(scores) == 1 and scores["subject"][0] in {"01", "02", "03"} and np.isfinite(scores["psnr"]).all()
    kept = [p.relative_to(workdir / "results/fetch/lab") for p in (workdir / "results/fetch/lab").rglob("*")
            if p.is_file()]  # read in place: only the plan's index of the dataset is kept
    assert kept and all(p.parts[0] == "bids_index" and not p.name.endswith((".nii", ".nii.gz")) for p in kept)


def test_paths_and_labels_with_shell_characters_reach_the_commands_as_one_argument(tmp_path):
    """A folder path with a space and ``$(...)``, labels with spaces and parentheses: each is one argument of
    the command a rule runs, and nothing in them is executed."""
    folder = tmp_path / "my scans $(touch PWNED)"
    _lab_folder(folder)
    overlay = tmp_path / "labels.yaml"
    overlay.write_text(yaml.safe_dump({"variants": {"threeplayer": {"label": "3-player (ours)"},
                                                    "esrgan": {"label": "ESRGAN's (x2)"}}}))
    config = ("tests/tiny.yaml", str(_lab_config(tmp_path, folder, resample=1.0)), str(overlay))
    workdir = tmp_path / "wd"
    targets = [f"results/prepare/lab/sub-{s}/sub-{s}_T1w.nii.gz" for s in ("a1", "d4")]
    prepared = snakemake(workdir, *targets, config=config)
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    assert not list(tmp_path.rglob("PWNED")) and not (Path.cwd() / "PWNED").exists()
    planned = snakemake(workdir, "-n", "-p", "results/papers/lab/threeplayer/method_comparison.csv", config=config)
    assert planned.returncode == 0, planned.stderr[-3000:]
    command = next(shlex.split(line.partition("Shell command: ")[2]) for line in planned.stdout.splitlines()
                   if "Shell command: mrisr papers method-table" in line)
    labels = [record["label"] for record in json.loads(command[command.index("--inputs") + 1])]
    assert "3-player (ours)" in labels and "ESRGAN's (x2)" in labels
    assert command[command.index("--reference") + 1] == "3-player (ours)"
    s3 = tmp_path / "s3.yaml"
    s3.write_text(yaml.safe_dump({"datasets": {"hcp": {
        "source": "hcp", "subjects": ["100307"], "bucket": "lab bucket;x", "prefix": "HCP 1200 $(touch PWNED)",
        "endpoint_url": "http://127.0.0.1:9/a b"}}}))
    fetch = snakemake(workdir, "-n", "-p", "results/fetch/hcp/sub-100307/sub-100307_T1w.nii.gz",
                      config=(*config, str(s3)))
    assert fetch.returncode == 0, fetch.stderr[-3000:]
    command = next(shlex.split(line.partition("Shell command: ")[2]) for line in fetch.stdout.splitlines()
                   if "Shell command: mrisr fetch hcp" in line)
    assert [command[command.index(flag) + 1] for flag in ("--bucket", "--prefix", "--endpoint-url")] == [
        "lab bucket;x", "HCP 1200 $(touch PWNED)", "http://127.0.0.1:9/a b"]


def test_use_conda_runs_rules_in_the_env_with_mrisr_from_this_checkout(tmp_path):
    """--use-conda through a stand-in conda (tests/standin_conda.py; no conda channel is reachable here, so the
    pinned packages come from this test environment, not a download): Snakemake creates one env from
    envs/mrisr.yaml under .snakemake/conda, its post-deploy script installs this checkout's mrisr into it, and the
    rules run there, with no other `mrisr` on PATH."""
    bin_dir = write_standin_conda(tmp_path / "conda")
    calls = tmp_path / "conda_calls.jsonl"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", STANDIN_CONDA_LOG=str(calls))
    workdir, target = tmp_path / "wd", "results/prepare/demo/sub-01/sub-01_T1w.nii.gz"
    result = subprocess.run(
        [str(BIN / "snakemake"), "--use-conda", "--cores", "2", "-s", str(ROOT / "Snakefile"), "--directory",
         str(workdir), "--configfile", str(ROOT / "config.yaml"), str(ROOT / "tests/tiny.yaml"), "--", target],
        capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "Running post-deploy script" in result.stderr
    created = [json.loads(line) for line in calls.read_text().splitlines() if line.startswith('["env", "create"')]
    assert len(created) == 1, created
    env_file, prefix = (Path(created[0][created[0].index(flag) + 1]) for flag in ("--file", "--prefix"))
    assert env_file.parent == prefix.parent == workdir / ".snakemake/conda"
    assert yaml.safe_load(env_file.read_text()) == yaml.safe_load((ROOT / "envs/mrisr.yaml").read_text())
    where = subprocess.run([prefix / "bin/python", "-c", "import mrisr; print(mrisr.__file__)"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where) == ROOT / "src/mrisr/__init__.py"
    assert shutil.which("mrisr", path=env["PATH"]) is None  # so the rules' `mrisr` was the env's
    assert (prefix / "bin/mrisr").is_file() and nib.load(workdir / target).shape


def _job_stats(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[1].strip().split("\n\n")[0]
    return {name: int(n) for name, n in (line.split() for line in table.splitlines()[2:])}


def _planned_jobs(overlays, tmp_path) -> dict[str, int]:
    """`mrisr plan`'s jobs per rule for the same overlays, less those waiting for an outside environment (a dry run
    lists them once its checkpoint has run)."""
    out = tmp_path / "plan.json"
    configfiles = ["--configfile", *[str(ROOT / c) for c in overlays]] if overlays else []
    done = subprocess.run([str(BIN / "mrisr"), "plan", *configfiles, "--directory", str(ROOT), "--format", "json",
                           "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    plan = json.loads(out.read_text())
    jobs, waiting = plan["jobs"], plan["jobs_after_environments"]
    assert jobs.pop("total") == sum(jobs.values())
    return {rule: n - waiting.get(rule, 0) for rule, n in jobs.items() if n > waiting.get(rule, 0)}


@pytest.mark.parametrize("overlays", [(), ("tests/tiny.yaml",)])
def test_mrisr_plan_counts_the_jobs_of_snakemakes_dry_run(tmp_path, overlays):
    result = snakemake(tmp_path / "wd", "-n", config=overlays)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    stats = _job_stats(result.stdout)
    assert stats.pop("total") == sum(stats.values())
    assert _planned_jobs(overlays, tmp_path) == stats


@pytest.mark.parametrize("data", [("workflow/configs/hcp.yaml",),
                                  ("workflow/configs/hcp.yaml", "workflow/configs/ixi.yaml")])
def test_the_mtvnet_overlay_plans_its_settings_on_hcp_and_ixi(tmp_path, data):
    """mtvnet_x4.yaml after the data overlays: a dry run plans each learned variant in each of its settings, the
    settings table with its published rows, and the authors' main table beside it."""
    result = snakemake(tmp_path, "-n", config=(*data, "workflow/configs/mtvnet_x4.yaml"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = _job_stats(result.stdout)
    assert _planned_jobs((*data, "workflow/configs/mtvnet_x4.yaml"), tmp_path) == {
        k: v for k, v in jobs.items() if k != "total"}
    dataset = "ixi" if len(data) == 2 else "hcp"
    trained = set(re.findall(rf"results/train/{dataset}/([\w@-]+)/model.safetensors", result.stdout))
    assert trained == {f"{v}{s}" for v in ("rrdbnet3d", "mdcsrn") for s in ("", "@mtvnet_x4_blur", "@mtvnet_kspace")} | {
        "esrgan"}
    assert jobs["papers_settings_table"] == jobs["papers_settings_figure"] == 1
    assert f"results/papers/{dataset}/field/settings.md" in result.stdout


@pytest.mark.parametrize("overlays", [("workflow/configs/authors.yaml", "workflow/configs/hcp.yaml"),
                                      ("workflow/configs/authors.yaml", "workflow/configs/hcp.yaml",
                                       "workflow/configs/ixi.yaml")])
def test_paper_scale_overlays_plan_the_whole_paper_dag_with_gpus(tmp_path, overlays):
    result = snakemake(tmp_path, "-n", "--profile", str(ROOT / "workflow/profiles/slurm"), config=overlays)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = _job_stats(result.stdout)
    assert _planned_jobs(overlays, tmp_path) == {k: v for k, v in jobs.items() if k != "total"}  # what mrisr plan says
    gan = [v for v, spec in yaml.safe_load((ROOT / "config.yaml").read_text())["variants"].items()
           if spec["kind"] == "gan"]
    assert jobs["train"] == len(gan) + 2  # + authors.yaml's wgan_gp_rrdb and mrsrgan
    assert "pretrain" not in jobs  # the authors train every generator from scratch
    assert jobs["papers_method_table"] == 5 and jobs["papers_noise_table"] == 1 and jobs["papers_sr_comparison"] == 2
    for rule in ("papers_discrepancy", "papers_zoom_profile", "papers_noise_figure", "papers_stripes", "fetch_lpips"):
        assert jobs[rule] == 1, rule
    trained_on, tested_on = ("ixi", "hcp") if len(overlays) == 3 else ("hcp", "ixi")
    if trained_on == "hcp":  # labelled: the segmentation study runs, 5 seeds per arm, on GPUs
        assert jobs["segment_train"] == jobs["segment_evaluate"] == 10 and jobs["papers_segmentation_table"] == 1
    else:  # IXI has no label maps: ixi.yaml switches the study off
        assert "segment_train" not in jobs
    assert f"results/papers/{trained_on}/threeplayer/method_comparison_out_of_sample.csv" in result.stdout
    assert f"results/train/{trained_on}/disgan/model.safetensors" in result.stdout
    assert f"results/evaluate/{tested_on}/nearest/disgan.csv" in result.stdout
    blocks = result.stdout.split("\nrule ")
    # HCP's parts are its subject list's split column: trained on, its train rows; tested on, every row
    listed = pd.read_csv(ROOT / "workflow/configs/hcp_subjects.tsv", sep="\t", comment="#", dtype=str)
    trained = {s for b in blocks if b.startswith("train:")
               for s in re.findall(r"results/prepare/hcp/sub-(\d+)/", b.split("output:")[0])}
    tested = set(re.findall(r"results/super_resolve/hcp/nearest/disgan/sub-(\d+)_T1w", result.stdout))
    if trained_on == "hcp":
        assert trained == set(listed.subject[listed.split == "train"]) and len(trained) == 27
        assert tested == set(listed.subject[listed.split == "test"]) and len(tested) >= 20
    else:
        assert tested == set(listed.subject)
    for block in blocks:
        rule = block.split(":", 1)[0]
        # the workflow profile's sizes, found beside the Snakefile without being named
        if rule == "train":  # the DDP scripts' variants on 2 GPUs, the one-GPU scripts' (batch 4) on 1
            variant = re.search(r"results/train/\w+/(\w+)/model\.safetensors", block).group(1)
            gpus = 1 if variant in ("mrsrgan", "wgan_gp_rrdb") else 2
            assert f"gpu={gpus}, cpus_per_gpu=8," in block and "runtime=1440" in block, variant
        if rule in ("super_resolve", "segment_train", "segment_evaluate"):
            assert "gpu=1, cpus_per_gpu=" in block
        if rule in ("ixi_download", "hcp_subject", "lpips_backbone"):
            assert "gpu=" not in block

