"""The SR-augmentation study: scores against hand computations, the arms' equal budget, the SR input really used."""

import dataclasses
import json
import os
import signal

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage
from scipy import stats as sps
from scipy.spatial.distance import cdist

from mrisr import cli
from mrisr.errors import InputError
from mrisr.papers import augment as table
from mrisr.segment.evaluate import dice_per_class, hd95_per_class, score
from mrisr.segmenter import build_network, load_segmenter, segment
from mrisr.segment.sampling import TrainingSet, load_training_set, sample_batch
from mrisr.segment.train import SegTrainer, train_segmentation
from mrisr.trainer import Interrupted
from tests.conftest import segmentation_settings
from tests.test_stats import _holm

CLASSES = ("background", "CSF", "GM", "WM")
NETWORK = {"name": "unet", "channels": [4, 8], "res_units": 0, "dropout": 0.0}
SETTINGS = segmentation_settings(steps=4, batch_size=2, patch_size=8, lr=1e-2, seed=3, classes=CLASSES, checkpoint_every=2)
AFFINE = np.diag([1.5, 1.5, 1.5, 1.0])


def _subject(rng, shape=(14, 12, 16)):
    labels = np.zeros(shape, np.int64)
    labels[2:-2, 2:-2, 2:-2] = 3
    labels[4:-4, 4:-4, 4:-4] = 2
    labels[6:-6, 5:-5, 7:-7] = 1
    image = labels * 1.0 + rng.normal(0, 0.3, shape)
    return image.astype(np.float32), labels


@pytest.fixture
def training_set(rng):
    subjects = [_subject(rng) for _ in range(3)]
    images, labels = [s[0] for s in subjects], [s[1] for s in subjects]
    sr = [im + rng.normal(0, 0.5, im.shape).astype(np.float32) for im in images]
    return TrainingSet(images, labels), TrainingSet(images, labels, sr)


def _dice_by_hand(pred, truth, k):
    a, b = pred == k, truth == k
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_dice_per_class_equals_hand_computation(rng):
    truth = rng.integers(0, 4, (10, 9, 8))
    pred = np.where(rng.random(truth.shape) < 0.3, rng.integers(0, 4, truth.shape), truth)
    np.testing.assert_allclose(dice_per_class(pred, truth, 4), [_dice_by_hand(pred, truth, k) for k in (1, 2, 3)],
                               rtol=1e-6)
    # a class absent from prediction and truth has no Dice (NaN), not a perfect 1
    no_csf = np.where(truth == 1, 2, truth)
    assert np.isnan(dice_per_class(no_csf, no_csf, 4)[0])


def _surface(mask):
    return np.argwhere(mask & ~ndimage.binary_erosion(mask))


def test_hd95_equals_percentile_of_surface_distances_in_mm():
    truth = np.zeros((20, 20, 20), np.int64)
    truth[5:15, 5:15, 5:15] = 1
    pred = np.zeros_like(truth)
    pred[7:17, 5:15, 4:13] = 1
    spacing = np.array([0.7, 1.0, 2.0])
    a, b = _surface(pred == 1) * spacing, _surface(truth == 1) * spacing
    d = cdist(a, b)
    expected = max(np.percentile(d.min(axis=1), 95), np.percentile(d.min(axis=0), 95))
    assert np.isclose(hd95_per_class(pred, truth, 2, spacing)[0], expected, rtol=1e-5)
    row = score(pred, truth, ["background", "brain"], spacing, hd95=True)
    assert set(row) == {"dice_brain", "hd95_brain"} and np.isclose(row["dice_brain"], _dice_by_hand(pred, truth, 1))


def test_both_arms_draw_the_same_windows_and_labels_and_only_real_sr_uses_sr(training_set):
    real, mixed = training_set
    used_sr = 0
    for step in range(30):
        ri, rl, rs = sample_batch(real, 8, 4, seed=5, step=step, sr_fraction=0.5)
        mi, ml, ms = sample_batch(mixed, 8, 4, seed=5, step=step, sr_fraction=0.5)
        torch.testing.assert_close(rl, ml, rtol=0, atol=0)
        assert not rs.any()
        torch.testing.assert_close(mi[~ms], ri[~ms], rtol=0, atol=0)
        assert not torch.equal(mi[ms], ri[ms]) or not ms.any()
        used_sr += int(ms.sum())
    assert 40 < used_sr < 80  # 120 patches at sr_fraction 0.5


def _write(path, data):
    nib.save(nib.Nifti1Image(np.asarray(data), AFFINE), path)
    return str(path)


@pytest.fixture
def files(tmp_path, rng):
    out = {"image": [], "label": [], "sr": []}
    for i in range(2):
        image, labels = _subject(rng)
        out["image"].append(_write(tmp_path / f"sub-{i}_T1w.nii.gz", image))
        out["label"].append(_write(tmp_path / f"sub-{i}_dseg.nii.gz", labels.astype(np.uint8)))
        out["sr"].append(_write(tmp_path / f"sub-{i}_sr.nii.gz", image + rng.normal(0, 0.5, image.shape)))
    return out


def _train_cli(files, out_dir, sr=True):
    settings = json.dumps(dataclasses.asdict(SETTINGS))
    argv = ["segment", "train", "--threads", "2", "--image", *files["image"], "--label", *files["label"], "--network",
            json.dumps(NETWORK), "--settings", settings, "--out-dir", str(out_dir)]
    assert cli.main(argv + (["--sr", *files["sr"]] if sr else [])) == 0
    return torch.load(out_dir / "model.pt")["state_dict"]


def test_changing_an_sr_file_changes_the_real_sr_arm_and_only_it(tmp_path, files, rng):
    before = load_training_set(files["image"], files["label"], files["sr"], 4)
    mixed_a, real_a = _train_cli(files, tmp_path / "a"), _train_cli(files, tmp_path / "ra", sr=False)
    _write(files["sr"][0], rng.normal(0, 1, nib.load(files["sr"][0]).shape))
    after = load_training_set(files["image"], files["label"], files["sr"], 4)
    changed = False  # within the steps trained, some patch comes from the changed file
    for step in range(SETTINGS.steps):
        xb, _, sb = sample_batch(before, 8, 2, SETTINGS.seed, step, 0.5)
        xa, _, sa = sample_batch(after, 8, 2, SETTINGS.seed, step, 0.5)
        torch.testing.assert_close(sa, sb)
        changed |= not torch.equal(xa, xb)
    assert changed
    mixed_b, real_b = _train_cli(files, tmp_path / "b"), _train_cli(files, tmp_path / "rb", sr=False)
    assert any(not torch.equal(mixed_a[k], mixed_b[k]) for k in mixed_a)
    assert all(torch.equal(real_a[k], real_b[k]) for k in real_a)


def test_arms_share_steps_seeds_and_initial_weights(tmp_path, training_set):
    real, mixed = training_set
    start_real, start_mixed = SegTrainer(NETWORK, SETTINGS, "real"), SegTrainer(NETWORK, SETTINGS, "real+sr")
    for key, value in start_real.network.state_dict().items():
        torch.testing.assert_close(value, start_mixed.network.state_dict()[key], rtol=0, atol=0)
    assert start_real.fingerprint != start_mixed.fingerprint  # a checkpoint never crosses arms
    logs = {arm: pd.read_csv(train_segmentation(data, NETWORK, SETTINGS, tmp_path / arm, progress=False)["log"])
            for arm, data in (("real", real), ("real+sr", mixed))}
    assert logs["real"]["step"].tolist() == logs["real+sr"]["step"].tolist() == [1, 2, 3, 4]
    assert logs["real"]["sr_patches"].sum() == 0 and logs["real+sr"]["sr_patches"].sum() > 0
    assert torch.load(tmp_path / "real" / "model.pt")["seed"] == torch.load(tmp_path / "real+sr" / "model.pt")["seed"]


def test_resumed_after_a_signal_ends_with_identical_weights(tmp_path, training_set, monkeypatch):
    _, mixed = training_set
    full = train_segmentation(mixed, NETWORK, SETTINGS, tmp_path / "full", progress=False)
    original = SegTrainer.train_step

    def stop_at_three(self, data):
        row = original(self, data)
        if self.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return row

    monkeypatch.setattr(SegTrainer, "train_step", stop_at_three)
    with pytest.raises(Interrupted):
        train_segmentation(mixed, NETWORK, SETTINGS, tmp_path / "cut", progress=False)
    monkeypatch.setattr(SegTrainer, "train_step", original)
    resumed = train_segmentation(mixed, NETWORK, SETTINGS, tmp_path / "cut", progress=False)
    wa, wb = torch.load(full["model"])["state_dict"], torch.load(resumed["model"])["state_dict"]
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0)


def test_whole_volume_segmentation_and_cli_scores(tmp_path, files):
    _train_cli(files, tmp_path / "m")
    network, classes, seed = load_segmenter(tmp_path / "m" / "model.pt")
    assert classes == list(CLASSES) and seed == SETTINGS.seed
    image = np.asanyarray(nib.load(files["image"][0]).dataobj, dtype=np.float32)
    labels = segment(network, image, 8, 0.5)
    assert labels.shape == image.shape and labels.dtype == np.uint8 and labels.max() < 4
    out = tmp_path / "eval"
    argv = ["segment", "evaluate", "--threads", "2", "--overlap", "0.5", "--model", str(tmp_path / "m" / "model.pt"), "--subjects", "0", "1", "--image",
            *files["image"], "--label", *files["label"], "--roi", "8", "--hd95", "--out-dir", str(out), "--out",
            str(out / "scores.csv")]
    assert cli.main(argv) == 0
    scores = pd.read_csv(out / "scores.csv", dtype={"subject": str})
    assert scores["subject"].tolist() == ["0", "1"] and (scores["seed"] == SETTINGS.seed).all()
    written = nib.load(out / "sub-0_dseg.nii.gz")
    np.testing.assert_allclose(written.affine, AFFINE)
    assert written.get_data_dtype() == np.uint8
    truth = np.asanyarray(nib.load(files["label"][0]).dataobj)
    pred = np.asanyarray(written.dataobj)
    assert np.isclose(scores.loc[0, "dice_GM"], _dice_by_hand(pred, truth, 2), equal_nan=True)


def test_label_outside_the_classes_is_refused_naming_the_file(tmp_path, files):
    bad = np.asanyarray(nib.load(files["label"][1]).dataobj).copy()
    bad[0, 0, 0] = 7
    _write(files["label"][1], bad)
    with pytest.raises(InputError, match="sub-1_dseg.nii.gz.*outside 0..3"):
        load_training_set(files["image"], files["label"], None, 4)


def test_sr_volume_on_another_grid_is_refused(tmp_path, files, rng):
    _write(files["sr"][0], rng.normal(size=(7, 6, 8)))
    with pytest.raises(InputError, match="sub-0_sr.nii.gz.*--reference"):
        load_training_set(files["image"], files["label"], files["sr"], 4)


def test_dynunet_builds_with_one_logit_per_class():
    net = build_network({**NETWORK, "name": "dynunet", "channels": [4, 8, 16]}, 4)
    assert net(torch.zeros(1, 1, 16, 16, 16)).shape == (1, 4, 16, 16, 16)


def _scores(rng, arm_shift, seeds=(0, 1, 2), n=7):
    rows = []
    base = rng.uniform(0.7, 0.9, (n, 3))
    for seed in seeds:
        noisy = base + arm_shift + rng.normal(0, 0.01, base.shape)
        for i in range(n):
            rows.append({"subject": f"s{i}", "seed": seed, "dice_CSF": noisy[i, 0], "dice_GM": noisy[i, 1],
                         "dice_WM": noisy[i, 2], "hd95_GM": 3 - noisy[i, 1]})
    return pd.DataFrame(rows)


def test_arm_table_averages_seeds_per_subject_and_holm_corrects_across_classes(rng):
    real = _scores(np.random.default_rng(1), 0.0)
    mixed = _scores(np.random.default_rng(1), 0.02)
    result = table.arm_table({"real": real, "real+sr": mixed}).set_index(["arm", "metric"])
    per_subject = {arm: f.groupby("subject")[["dice_CSF", "dice_GM", "dice_WM", "hd95_GM"]].mean()
                   for arm, f in (("real", real), ("real+sr", mixed))}
    p_dice = []
    for metric in ("dice_CSF", "dice_GM", "dice_WM"):
        row = result.loc[("real+sr", metric)]
        assert np.isclose(row["mean"], per_subject["real+sr"][metric].mean())
        assert np.isclose(row["std"], per_subject["real+sr"][metric].std(ddof=1)) and row["n"] == 7
        t = sps.ttest_rel(per_subject["real+sr"][metric], per_subject["real"][metric])
        assert np.isclose(row["t"], t.statistic) and np.isclose(row["p_t"], t.pvalue)
        p_dice.append(t.pvalue)
        per_seed = mixed.groupby("seed")[metric].mean()
        assert row["seeds"] == 3 and np.isclose(row["seed_std"], per_seed.std(ddof=1))
    np.testing.assert_allclose(
        [result.loc[("real+sr", m), "p_t_holm"] for m in ("dice_CSF", "dice_GM", "dice_WM")], _holm(np.array(p_dice)))
    # HD95 is its own family: a single test, left uncorrected
    assert np.isclose(result.loc[("real+sr", "hd95_GM"), "p_t_holm"], result.loc[("real+sr", "hd95_GM"), "p_t"])
    md = table.to_markdown(result.reset_index())
    assert "Dice GM" in md and "HD95 GM (mm)" in md and "Across 3 seeds" in md and "across classes" in md


def test_arms_with_different_seeds_are_refused(rng):
    with pytest.raises(ValueError, match="different seeds"):
        table.arm_table({"real": _scores(rng, 0, seeds=(0, 1)), "real+sr": _scores(rng, 0, seeds=(0, 2))})
