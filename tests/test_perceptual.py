"""LPIPS on slices, with AlexNet weights the test makes and serves on 127.0.0.1 (never torchvision's download)."""

import functools
import hashlib
import http.server
import json
import pathlib
import threading

import lpips
import numpy as np
import pandas as pd
import pytest
import torch
import torchvision

from mrisr.cli import main
from mrisr.fetch.lpips import fetch_backbone
from mrisr.io import save_volume
from mrisr.perceptual import ALEXNET_FILE, SliceLpips, backbone_status


@pytest.fixture(scope="module")
def weights_server(tmp_path_factory):
    """A random-weights AlexNet file, served over HTTP from a folder of its own."""
    folder = tmp_path_factory.mktemp("served")
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(), folder / ALEXNET_FILE)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    data = (folder / ALEXNET_FILE).read_bytes()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/{ALEXNET_FILE}", hashlib.sha256(data).hexdigest(), folder
    httpd.shutdown()


def _by_hand(weights_file, gt, pred, mask, step):
    """LPIPS per slice, one at a time, with the AlexNet weights loaded by hand into lpips' backbone."""
    net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    alexnet = torchvision.models.alexnet()
    alexnet.load_state_dict(torch.load(weights_file))
    features = alexnet.features
    for slice_module in (net.net.slice1, net.net.slice2, net.net.slice3, net.net.slice4, net.net.slice5):
        for name, layer in slice_module.named_children():
            layer.load_state_dict(features[int(name)].state_dict())
    lo, hi = gt.min(), gt.max()
    scores = []
    for axis in range(3):
        for i in range(gt.shape[axis]):
            if not np.take(mask, i, axis).any():
                continue
            scores.append((axis, i))
    values = []
    for axis in range(3):
        indices = [i for a, i in scores if a == axis][::step]
        for i in indices:
            a, b = (torch.tensor(np.take(v, i, axis)).float() for v in (gt, pred))
            a, b = ((2 * (x - lo) / (hi - lo) - 1).clamp(-1, 1)[None, None].repeat(1, 3, 1, 1) for x in (a, b))
            with torch.no_grad():
                values.append(float(net(a, b)))
    return float(np.mean(values))


def test_fetched_weights_give_the_lpips_computed_by_hand(weights_server, tmp_path, rng):
    url, sha, served = weights_server
    status = fetch_backbone(url, sha, None, tmp_path / "lpips")
    assert status["available"] and backbone_status(tmp_path / "lpips") == status
    gt = rng.normal(size=(36, 40, 34)).astype(np.float32)
    pred = gt + 0.3 * rng.normal(size=gt.shape).astype(np.float32)
    mask = np.zeros(gt.shape, bool)
    mask[4:30, 6:33, 5:29] = True
    metric = SliceLpips(tmp_path / "lpips", sha)
    ours = metric(gt, pred, mask, step=3)
    assert ours > 0 and metric(gt, gt, mask, step=3) == pytest.approx(0, abs=1e-6)
    assert ours == pytest.approx(_by_hand(served / ALEXNET_FILE, gt, pred, mask, 3), rel=1e-4)


def test_offline_lpips_is_reported_as_not_computed_and_why(tmp_path, rng):
    status = fetch_backbone("http://127.0.0.1:9/" + ALEXNET_FILE, "0" * 64, None, tmp_path / "lpips")
    assert not status["available"] and "Connection refused" in status["reason"] and "delete" in status["reason"]
    assert not list((tmp_path / "lpips").rglob("*.pth"))
    gt = rng.normal(size=(36, 36, 36)).astype(np.float32)
    mask = np.ones(gt.shape, np.uint8)
    for name, data in {"gt": gt, "pred": gt + 0.1, "mask": mask}.items():
        save_volume(data, np.eye(4), tmp_path / f"{name}.nii.gz")
    out = tmp_path / "metrics.csv"
    assert main(["evaluate", "--subjects", "01", "--gt", str(tmp_path / "gt.nii.gz"), "--pred",
                 str(tmp_path / "pred.nii.gz"), "--mask", str(tmp_path / "mask.nii.gz"), "--lpips-dir",
                 str(tmp_path / "lpips"), "--lpips-step", "1", "--out", str(out), "--threads", "1"]) == 0
    row = pd.read_csv(out).iloc[0]
    assert np.isnan(row["lpips"]) and "not computed" in row["lpips_note"] and "Connection refused" in row["lpips_note"]
    assert main(["papers", "method-table", "--inputs", json.dumps([{"label": "a", "path": str(out)}]), "--out-csv", str(tmp_path / "t.csv"), "--out-md",
                 str(tmp_path / "t.md")]) == 0
    text = (tmp_path / "t.md").read_text()
    assert "| not computed |" in text and "Note: LPIPS not computed" in text
    assert json.loads((tmp_path / "lpips" / "status.json").read_text())["available"] is False


class _RunsCode:
    """Unpickling this touches ``marker``: what a planted backbone could do with a full-pickle load."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _evaluate_with(tmp_path, rng, folder, sha256):
    gt = rng.normal(size=(36, 36, 36)).astype(np.float32)
    for name, data in {"gt": gt, "pred": gt + 0.1, "mask": np.ones(gt.shape, np.uint8)}.items():
        save_volume(data, np.eye(4), tmp_path / f"{name}.nii.gz")
    return main(["evaluate", "--subjects", "01", "--gt", str(tmp_path / "gt.nii.gz"), "--pred",
                 str(tmp_path / "pred.nii.gz"), "--mask", str(tmp_path / "mask.nii.gz"), "--lpips-dir", str(folder),
                 "--lpips-step", "4", "--lpips-sha256", sha256, "--out", str(tmp_path / "m.csv"), "--threads", "1"])


def test_a_planted_backbone_never_runs_code(weights_server, tmp_path, rng, capsys):
    url, sha, _ = weights_server
    folder = tmp_path / "lpips"
    fetch_backbone(url, sha, None, folder)
    planted = folder / "hub" / "checkpoints" / ALEXNET_FILE
    marker = tmp_path / "code-ran"
    torch.save({"features.0.weight": _RunsCode(marker)}, planted)
    assert _evaluate_with(tmp_path, rng, folder, sha) == 2  # the config's hash: refused before reading
    assert f"{planted}: has sha256" in capsys.readouterr().err
    planted_sha = hashlib.sha256(planted.read_bytes()).hexdigest()
    assert _evaluate_with(tmp_path, rng, folder, planted_sha) == 2  # even a config that names it: tensors only
    assert f"{planted}: cannot be read as a torch file" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "m.csv").exists()
