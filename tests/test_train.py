import copy
import dataclasses
import os
import signal

import numpy as np
import pandas as pd
import pytest
import torch

from mrisr.errors import ConfigError, MrisrError
from mrisr import losses
from mrisr.train import schedules
from mrisr.train.gan import GanTrainer, train
from mrisr.trainer import Interrupted, try_resume
from tests.conftest import filled_variant, read_model_parts, train_settings

VARIANT = filled_variant({
    "kind": "gan",
    "generator": {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1},
    "discriminator": {"name": "patch", "channels": [4, 8], "norm": "instance"},
    "feature_extractor": {"name": "resnet10", "channels": 4},
    "optimiser": {"lr": 1e-3},
})
SETTINGS = train_settings(steps=6, batch_size=2, patch_size=16, checkpoint_every=2, degradation={"method": "nearest", "blur_fwhm": 2.0})


@pytest.fixture
def volumes(rng):
    return [rng.normal(size=(20, 18, 22)).astype(np.float32) for _ in range(2)]


def _bce_logits(x, target):
    p = 1 / (1 + np.exp(-x))
    return -(target * np.log(p) + (1 - target) * np.log(1 - p)).mean()


def test_relativistic_losses_by_hand(rng):
    real = rng.normal(size=(3, 1, 2, 2, 2))
    fake = rng.normal(size=(3, 1, 2, 2, 2))
    real_rel = real - fake.mean(axis=0, keepdims=True)
    fake_rel = fake - real.mean(axis=0, keepdims=True)
    expected_d = 0.5 * (_bce_logits(real_rel, 1) + _bce_logits(fake_rel, 0))
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    assert np.isclose(losses.discriminator_loss(r, f).item(), expected_d)
    assert np.isclose(losses.generator_adversarial_loss(r, f).item(), _bce_logits(fake_rel, 1))


def test_linear_schedule_falls_from_start_to_end():
    values = [schedules.linear(s, 5, 1.0, 0.0) for s in range(5)]
    np.testing.assert_allclose(values, [1.0, 0.75, 0.5, 0.25, 0.0])


def test_log_has_a_row_per_step_with_every_column(tmp_path, volumes):
    out = train(volumes, VARIANT, SETTINGS, tmp_path, progress=False)
    log = pd.read_csv(out["log"])
    assert list(log["step"]) == [1, 2, 3, 4, 5, 6]
    for column in ("loss_g", "loss_pixel", "loss_adversarial", "loss_feature", "loss_d", "d_real_minus_fake",
                   "d_fake_minus_real", "lr", "seconds", "voxels_per_s"):
        assert column in log and log[column].notna().all()
    assert (tmp_path / "checkpoint.pt").is_file()


def test_same_seed_same_weights_and_frozen_extractor_stays(tmp_path, volumes):
    a = train(volumes, VARIANT, SETTINGS, tmp_path / "a", progress=False)
    b = train(volumes, VARIANT, SETTINGS, tmp_path / "b", progress=False)
    wa, wb = read_model_parts(a["model"])["state_dict"], read_model_parts(b["model"])["state_dict"]
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0)
    trainer = GanTrainer(VARIANT, SETTINGS)
    before = {k: v.clone() for k, v in trainer.feature_extractor.state_dict().items()}
    trainer.train_step(volumes)
    for key, value in trainer.feature_extractor.state_dict().items():
        torch.testing.assert_close(value, before[key])


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGUSR1", "SIGINT"])
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, volumes, monkeypatch, stop):
    full = train(volumes, VARIANT, SETTINGS, tmp_path / "full", progress=False)
    original = GanTrainer.train_step

    def stop_at_three(self, vols):
        row = original(self, vols)
        if self.step == 3:
            os.kill(os.getpid(), getattr(signal, stop))
        return row

    monkeypatch.setattr(GanTrainer, "train_step", stop_at_three)
    with pytest.raises(Interrupted, match="rerun"):
        train(volumes, VARIANT, SETTINGS, tmp_path / "cut", progress=False)
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    monkeypatch.setattr(GanTrainer, "train_step", original)
    resumed = train(volumes, VARIANT, SETTINGS, tmp_path / "cut", progress=False)
    wa, wb = read_model_parts(full["model"])["state_dict"], read_model_parts(resumed["model"])["state_dict"]
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0)
    pd.testing.assert_frame_equal(pd.read_csv(full["log"]).drop(columns=["seconds", "voxels_per_s"]),
                                  pd.read_csv(resumed["log"]).drop(columns=["seconds", "voxels_per_s"]))


def test_checkpoint_of_another_config_is_not_resumed(tmp_path, volumes):
    train(volumes, VARIANT, SETTINGS, tmp_path, progress=False)
    other = dict(VARIANT, optimiser={"lr": 5e-4, "betas": [0.9, 0.999]})
    trainer = GanTrainer(other, SETTINGS)
    assert not try_resume(trainer, tmp_path / "checkpoint.pt")


def test_standard_and_wasserstein_losses_by_hand(rng):
    real = rng.normal(size=(3, 1, 2, 2, 2))
    fake = rng.normal(size=(3, 1, 2, 2, 2))
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    expected = 0.5 * (_bce_logits(real, 1) + _bce_logits(fake, 0))
    assert np.isclose(losses.discriminator_loss(r, f, "standard").item(), expected)
    assert np.isclose(losses.generator_adversarial_loss(r, f, "standard").item(), _bce_logits(fake, 1))
    assert np.isclose(losses.discriminator_loss(r, f, "wgan_gp").item(), fake.mean() - real.mean())
    assert np.isclose(losses.generator_adversarial_loss(r, f, "wgan_gp").item(), -fake.mean())


def test_gradient_penalty_of_a_linear_and_a_quadratic_critic(rng):
    w = torch.from_numpy(rng.normal(size=(1, 2, 3, 3, 3)))
    real, fake = torch.randn(4, 2, 3, 3, 3, dtype=torch.float64), torch.randn(4, 2, 3, 3, 3, dtype=torch.float64)
    alpha = torch.rand(4, dtype=torch.float64)
    linear = losses.gradient_penalty(lambda x: (x * w).flatten(1).sum(1), real, fake, alpha)
    assert np.isclose(linear.item(), (w.norm().item() - 1) ** 2)
    # D(x) = ½‖x‖²: the gradient at x̂ is x̂ itself
    quadratic = losses.gradient_penalty(lambda x: 0.5 * (x**2).flatten(1).sum(1), real, fake, alpha)
    a = alpha.reshape(-1, 1, 1, 1, 1)
    mixed = (a * real + (1 - a) * fake).flatten(1).norm(dim=1)
    assert np.isclose(quadratic.item(), ((mixed - 1) ** 2).mean().item())


def test_warm_up_trains_only_the_generator(volumes):
    settings = train_settings(steps=3, batch_size=1, patch_size=16, checkpoint_every=5,
                             degradation={"method": "nearest", "blur_fwhm": 2.0})
    trainer = GanTrainer(filled_variant(dict(VARIANT, warmup_fraction=2 / 3)), settings)
    d_before = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    g_before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    rows = [trainer.train_step(volumes) for _ in range(2)]
    assert all(r["warm_up"] and np.isnan(r["loss_d"]) and np.isnan(r["loss_adversarial"]) for r in rows)
    assert rows[0]["loss_g"] == rows[0]["loss_pixel"]
    for k, v in trainer.discriminator.state_dict().items():
        torch.testing.assert_close(v, d_before[k])
    assert any(not torch.equal(v, g_before[k]) for k, v in trainer.generator.state_dict().items())
    row = trainer.train_step(volumes)
    assert not row["warm_up"] and np.isfinite(row["loss_d"])


def test_wgan_gp_variant_logs_its_penalty_and_builds_no_extractor(volumes):
    variant = filled_variant({
        "kind": "gan",
        "generator": {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1},
        "discriminator": {"name": "patch", "channels": [4, 8], "norm": "batch"},
        "losses": {"gan": "wgan_gp", "pixel_loss": "mse", "adversarial": 1e-3, "feature": 0},
    })
    trainer = GanTrainer(variant, SETTINGS)
    assert trainer.feature_extractor is None and "feature_extractor" not in trainer.parameter_counts()
    row = trainer.train_step(volumes)
    assert row["gradient_penalty"] >= 0 and row["loss_feature"] == 0


def test_third_player_learns_and_instance_noise_falls(volumes):
    variant = filled_variant({
        "kind": "gan",
        "generator": {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1},
        "discriminator": {"name": "wavelet_unet", "channels": 2, "depth": 4, "init": "default"},
        "feature_extractor": {"name": "resnet10", "channels": 4, "trainable": True},
        "instance_noise": {"start": 1.0, "end": 0.0},
    })
    trainer = GanTrainer(variant, SETTINGS)
    before = {k: v.clone() for k, v in trainer.feature_extractor.named_parameters()}
    rows = [trainer.train_step(volumes) for _ in range(3)]
    assert any(not torch.equal(v, before[k]) for k, v in trainer.feature_extractor.named_parameters())
    np.testing.assert_allclose([r["instance_noise"] for r in rows], [1.0, 0.8, 0.6])


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, volumes, monkeypatch):
    original = GanTrainer.train_step

    def diverge_at_three(self, vols):
        row = original(self, vols)
        if self.step == 3:
            row["loss_d"] = float("nan")
        return row

    monkeypatch.setattr(GanTrainer, "train_step", diverge_at_three)
    with pytest.raises(MrisrError, match="not finite") as err:
        train(volumes, VARIANT, SETTINGS, tmp_path, progress=False)
    assert "step 3" in str(err.value) and str(tmp_path / "checkpoint.pt") in str(err.value)
    assert torch.load(tmp_path / "checkpoint.pt")["step"] == 2
    assert not (tmp_path / "model.safetensors").exists() and not (tmp_path / "train_log.csv").exists()


def test_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, volumes):
    full = train(volumes, VARIANT, SETTINGS, tmp_path / "full", progress=False)
    cut = tmp_path / "cut"
    train(volumes, VARIANT, dataclasses.replace(SETTINGS, steps=4), cut, progress=False)
    # a 4-step run leaves checkpoint.pt at step 4 and checkpoint.pt.prev at step 2: damage the newest
    assert torch.load(cut / "checkpoint.pt.prev")["step"] == 2
    (cut / "checkpoint.pt").write_bytes(b"\x00garbage")
    trainer = GanTrainer(VARIANT, SETTINGS)
    assert not try_resume(trainer, cut / "checkpoint.pt")  # the 4-step run is another configuration
    trainer = GanTrainer(VARIANT, dataclasses.replace(SETTINGS, steps=4))
    assert try_resume(trainer, cut / "checkpoint.pt") and trainer.step == 2
    assert full["model"].is_file()


class _Counter:
    """The smallest resumable trainer: its whole state is its step."""

    fingerprint = "counter"

    def __init__(self, step: int):
        self.step = step

    def state(self) -> dict:
        return {}


@pytest.mark.parametrize("cut_at", range(3))
def test_a_kill_at_any_point_of_a_checkpoint_write_leaves_a_readable_checkpoint(tmp_path, monkeypatch, cut_at):
    """Each link or rename of a save is a point where SLURM may kill the job: the newest checkpoint never vanishes."""
    from mrisr.trainer import previous, save_checkpoint

    path = tmp_path / "checkpoint.pt"
    save_checkpoint(_Counter(1), path)
    save_checkpoint(_Counter(2), path)
    calls = []

    def killed(name, real):
        def call(*args):
            calls.append(name)
            if len(calls) > cut_at:
                raise KeyboardInterrupt("killed")
            return real(*args)
        return call

    monkeypatch.setattr(os, "link", killed("link", os.link))
    monkeypatch.setattr(os, "replace", killed("replace", os.replace))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(_Counter(3), path)
    monkeypatch.undo()
    assert calls == ["link", "replace", "replace"][:cut_at + 1]
    assert torch.load(path)["step"] == 2
    assert torch.load(previous(path))["step"] == (2 if cut_at == 2 else 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "checkpoint.pt.prev"]


def test_bf16_autocast_trains_close_to_fp32(volumes):
    fp32 = GanTrainer(VARIANT, dataclasses.replace(SETTINGS, precision="fp32"))
    bf16 = GanTrainer(VARIANT, dataclasses.replace(SETTINGS, precision="bf16"))
    assert not fp32.bf16 and bf16.bf16
    a, b = fp32.train_step(volumes), bf16.train_step(volumes)
    assert np.isfinite(b["loss_g"]) and np.isfinite(b["loss_d"])
    assert a["loss_pixel"] != b["loss_pixel"] and np.isclose(a["loss_pixel"], b["loss_pixel"], rtol=0.05)


def test_sigkill_at_a_random_step_then_rerun_gives_the_uninterrupted_weights(tmp_path, volumes):
    import json
    import random
    import socket
    import subprocess
    import sys
    import time

    from mrisr.io import save_volume

    paths = [save_volume(v, np.eye(4), tmp_path / f"sub-0{i}_T1w.nii.gz") for i, v in enumerate(volumes)]
    settings = dataclasses.replace(SETTINGS, steps=16, checkpoint_every=1)  # a margin for a fast machine
    full = train(volumes, VARIANT, settings, tmp_path / "full", progress=False)
    cmd = [sys.executable, "-m", "mrisr", "train", "--hr", *map(str, paths), "--variant", json.dumps(VARIANT),
           "--settings", json.dumps(dataclasses.asdict(settings)), "--out-dir", str(tmp_path / "cut"), "--threads", "2",
           "--provenance", json.dumps({"variant": "v", "dataset": "d", "subjects": ["0", "1"],
                                       "preprocessing": {"crop": "none", "margin": 0, "normalise": "volume"}})]
    checkpoint = tmp_path / "cut" / "checkpoint.pt"
    with open(tmp_path / "cut.log", "wb") as log:
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.time() + 120
        while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(random.Random(3).uniform(0.0, 0.5))
        process.kill()
        process.wait()
    assert checkpoint.is_file(), (tmp_path / "cut.log").read_text()
    killed_at = torch.load(checkpoint)["step"]
    assert 1 <= killed_at < settings.steps and not (tmp_path / "cut" / "model.safetensors").exists()
    # what a kill mid-write leaves: a temporary file named after its (now dead) writer
    (tmp_path / "cut" / f".checkpoint.pt.{process.pid}@{socket.gethostname()}~k1ll3d.pt").write_bytes(b"half")
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert not [p.name for p in (tmp_path / "cut").iterdir() if p.name.startswith(".")]
    wa = read_model_parts(full["model"])["state_dict"]
    wb = read_model_parts(tmp_path / "cut" / "model.safetensors")["state_dict"]
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=0, atol=0)


def test_generator_loss_weights_its_terms_as_configured(volumes):
    trainer = GanTrainer(VARIANT, SETTINGS)
    hr = torch.from_numpy(volumes[0][None, None, :16, :16, :16].copy())
    sr = hr + 0.1
    fe = trainer.feature_extractor
    expected = (fe(sr) - fe(hr)).abs().mean()
    assert np.isclose(trainer._feature_loss(sr, hr).item(), expected.item())
    row = trainer.train_step(volumes)
    w = VARIANT["losses"]
    assert (w["pixel"], w["adversarial"], w["feature"]) == (1.0, 0.005, 0.01)
    total = w["pixel"] * row["loss_pixel"] + w["adversarial"] * row["loss_adversarial"] + w["feature"] * row["loss_feature"]
    assert np.isclose(row["loss_g"], total, rtol=1e-6)


@pytest.mark.parametrize("variant, forwards_per_step", [
    (VARIANT, 2),
    (dict(VARIANT, discriminator={"name": "patch", "channels": [4, 8], "norm": "batch"}), 4),
    (dict(VARIANT, discriminator={"name": "patch", "channels": [4, 8], "norm": "spectral"}), 4),
    (dict(VARIANT, losses={"gan": "wgan_gp", "pixel_loss": "mse", "adversarial": 0.001, "feature": 0}), 3),
    (dict(VARIANT, discriminator={"name": "wavelet_unet", "channels": 2, "depth": 3}), 4),
], ids=["instance", "batch", "spectral", "wgan_gp", "wavelet_unet"])
def test_shared_discriminator_pass_computes_what_separate_passes_compute(volumes, variant, forwards_per_step):
    """The default reuses the G step's D logits for the D step where that is exact (D's forward changes no state);
    with BatchNorm or spectral norm it runs D again, as the authors' order does: same numbers and D state either way."""
    variant = filled_variant(variant)
    runs = {}
    for shared in (True, False):
        trainer = GanTrainer(variant, dataclasses.replace(SETTINGS, shared_discriminator_pass=shared))
        calls = []
        trainer.discriminator.register_forward_hook(lambda *_: calls.append(1))
        rows = [trainer.train_step(volumes) for _ in range(3)]
        runs[shared] = (pd.DataFrame(rows).drop(columns=["seconds", "voxels_per_s"]), trainer, len(calls) / 3)
    assert runs[True][2] == forwards_per_step  # the wgan_gp critic's third pass is its gradient penalty's
    pd.testing.assert_frame_equal(runs[True][0], runs[False][0], rtol=1e-4)
    for name in ("generator", "discriminator"):
        ours, theirs = (getattr(runs[k][1], name).state_dict() for k in (True, False))  # running stats, SN vectors
        for key in ours:
            torch.testing.assert_close(ours[key], theirs[key], rtol=1e-4, atol=1e-5)


def test_instance_noise_per_epoch_is_the_authors_formula():
    """Their σ = max(1 − epoch/max_epochs, 0), held for an epoch; here 20 epochs of 7 steps each."""
    steps, epochs = 140, 20
    ours = [schedules.instance_noise(s, steps, 1.0, 0.0, epochs) for s in range(steps)]
    theirs = [max(1 - (s // 7) * (1 / epochs), 0) for s in range(steps)]
    np.testing.assert_allclose(ours, theirs)
    assert min(ours) == pytest.approx(0.05)
    assert [schedules.instance_noise(s, 5, 1.0, 0.0, None) for s in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]


@pytest.mark.parametrize("frozen_mode", ["eval", "train"])
def test_frozen_feature_extractor_mode(volumes, frozen_mode):
    """The authors only turn the frozen extractor's gradients off: its BatchNorm normalises by batch statistics."""
    variant = filled_variant(dict(VARIANT, feature_extractor={"name": "resnet10", "channels": 4,
                                                              "frozen_mode": frozen_mode}))
    trainer = GanTrainer(variant, SETTINGS)
    fe = trainer.feature_extractor
    assert fe.training == (frozen_mode == "train")
    assert not any(p.requires_grad for p in fe.parameters())
    hr = torch.from_numpy(np.stack([v[None, :16, :16, :16] for v in volumes]))
    sr = hr * 0.9 + 0.1
    reference = copy.deepcopy(fe)
    # an independent forward: BatchNorm by hand, from the batch's statistics or from the running ones
    def forward(x):
        def bn(m, y):
            if frozen_mode == "train":
                mean, var = y.mean((0, 2, 3, 4)), y.var((0, 2, 3, 4), unbiased=False)
            else:
                mean, var = m.running_mean, m.running_var
            shape = (1, -1, 1, 1, 1)
            return (y - mean.view(shape)) / torch.sqrt(var.view(shape) + m.eps) * m.weight.view(shape) + m.bias.view(shape)

        hooks = [m.register_forward_hook(lambda m, i, o: bn(m, i[0]))
                 for m in reference.modules() if isinstance(m, torch.nn.BatchNorm3d)]
        out = reference(x)
        for h in hooks:
            h.remove()
        return out

    expected = (forward(sr) - forward(hr)).abs().mean()
    torch.testing.assert_close(trainer._feature_loss(sr, hr), expected, rtol=1e-5, atol=1e-6)


def test_feature_extractor_sees_sr_before_hr(volumes):
    """The authors call FE(sr) then FE(hr); in train mode the order sets BatchNorm's running statistics."""
    variant = filled_variant(dict(VARIANT, feature_extractor={"name": "resnet10", "channels": 4, "trainable": True}))
    trainer = GanTrainer(variant, SETTINGS)
    hr = torch.from_numpy(np.stack([v[None, :16, :16, :16] for v in volumes]))
    sr = hr * 0.5
    reference, swapped = copy.deepcopy(trainer.feature_extractor), copy.deepcopy(trainer.feature_extractor)
    reference(sr), reference(hr)
    swapped(hr), swapped(sr)
    trainer._feature_loss(sr, hr)
    ours = trainer.feature_extractor.state_dict()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(ours[key], value)
    assert not torch.allclose(ours["bn1.running_mean"], swapped.bn1.running_mean)  # the order shows


WGAN_GP_RRDB = {  # their WGAN-GP baseline (MRSRGAN mains/MRSRGAN_WGAN_GP.py), at test size
    "kind": "gan", "update_order": "discriminator_first",
    "generator": {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 2, "batch_norm": True, "init": "xavier"},
    "discriminator": {"name": "patch", "channels": [4, 8], "norm": "batch", "init": "xavier"},
    "losses": {"gan": "wgan_gp", "pixel_loss": "mse", "adversarial": 0.001, "feature": 0, "gp_alpha": "normal"},
    "optimiser": {"lr": 2e-4},
}


def _their_wgan_gp_step(g, d, opt_g, opt_d, volumes, settings, step: int):
    """One step of the authors' WGAN-GP loop (MRSRGAN_WGAN_GP.py) on our step's patches: D on the SR, then on the HR,
    and its gradient penalty (α ~ N(0, 1)); then G against the updated D, on the same SR. Returns (D loss, G loss)."""
    from mrisr.degrade import degrade
    from mrisr.patches import sample_patches, step_generator

    rng = step_generator(settings.seed, step)
    hr = sample_patches(volumes, settings.patch_size, settings.batch_size, rng, align=(2, 2, 2))
    lr = degrade(hr, {"method": "nearest"}, 2)
    torch.randn(hr.shape, generator=rng)  # the instance noise's draw (σ = 0)
    alpha = torch.randn(settings.batch_size, generator=rng).reshape(-1, 1, 1, 1, 1)
    gen = g(lr)
    logits_fake, logits_real = d(gen).mean(), d(hr).mean()
    mixed = (alpha * hr + (1 - alpha) * gen).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(mixed).sum(), mixed, create_graph=True)
    d_loss = logits_fake - logits_real + 10 * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    opt_d.zero_grad()
    d_loss.backward(retain_graph=True)
    opt_d.step()
    g.zero_grad()
    g_loss = torch.nn.functional.mse_loss(gen, hr) + 1e-3 * -d(gen).mean()
    g_loss.backward()
    opt_g.step()
    return d_loss, g_loss


def test_discriminator_first_is_the_authors_wgan_gp_step(volumes):
    """The authors' WGAN-GP baseline (MRSRGAN): D steps on G's output, then G steps against the updated D on the
    same output; their RRDB-BN generator and BatchNorm critic with xavier / N(0, 0.02) init; α ~ N(0, 1)."""
    trainer = GanTrainer(filled_variant(WGAN_GP_RRDB), SETTINGS)
    g, d = copy.deepcopy(trainer.generator), copy.deepcopy(trainer.discriminator)
    assert all(m.weight.std() < 0.1 for m in d.modules() if isinstance(m, torch.nn.BatchNorm3d))  # γ ~ N(0, 0.02)
    opt_g, opt_d = (torch.optim.Adam(n.parameters(), lr=2e-4, betas=(0.9, 0.999)) for n in (g, d))
    d_loss, g_loss = _their_wgan_gp_step(g, d, opt_g, opt_d, volumes, SETTINGS, step=0)

    row = trainer.train_step(volumes)
    assert row["loss_d"] == pytest.approx(d_loss.item(), rel=1e-4)
    assert row["loss_g"] == pytest.approx(g_loss.item(), rel=1e-4)
    for key, value in g.state_dict().items():
        torch.testing.assert_close(trainer.generator.state_dict()[key], value, rtol=1e-4, atol=1e-6, msg=key)
    # D's weights; not its BatchNorm running statistics, which count D's forwards (ours also logs D(real) in the
    # G step) and which nothing reads: D is never run in eval mode, and the model file holds G alone
    for key, value in d.named_parameters():
        torch.testing.assert_close(dict(trainer.discriminator.named_parameters())[key], value, rtol=1e-4, atol=1e-6,
                                   msg=key)


def test_warm_up_and_discriminator_every_follow_the_step_count():
    """MIDL 2022: one pixel-only epoch of 20, then D on the batches i % 5 == 0 of each later epoch."""
    steps, per_epoch = 200, 10
    warmup = schedules.warmup_steps(0.05, steps)
    assert warmup == per_epoch
    ours = [schedules.updates_discriminator(s, warmup, 5) for s in range(steps)]
    theirs = [s // per_epoch > 0 and (s % per_epoch) % 5 == 0 for s in range(steps)]
    assert ours == theirs
    assert all(schedules.updates_discriminator(s, 0, 1) for s in range(5))


def test_midl2022_step_is_the_authors_esrgan_step(volumes):
    """The MIDL 2022 SR model (MRSRGAN train_MRSRGAN_res10.py): pixel-only G steps in the first epoch, then
    L_G = 1·L1(FE(sr), FE(hr)) + 5e-3·RaGAN + 1e-2·L1(sr, hr) with a frozen extractor in train mode, and D
    updated on every 5th step only; their loop written out against ours, 8 steps, weights compared."""
    from mrisr.degrade import degrade
    from mrisr.patches import sample_patches, step_generator

    settings = train_settings(steps=8, batch_size=2, patch_size=16, checkpoint_every=8,
                              degradation={"method": "nearest", "blur_fwhm": 2.0})
    variant = filled_variant(dict(
        VARIANT, warmup_fraction=0.25, discriminator_every=5,
        feature_extractor={"name": "resnet10", "channels": 4, "trainable": False, "frozen_mode": "train"},
        losses={"pixel": 0.01, "adversarial": 0.005, "feature": 1.0, "gan": "relativistic"},
        optimiser={"lr": 2e-4}))
    trainer = GanTrainer(variant, settings)
    g, d, fe = (copy.deepcopy(n) for n in (trainer.generator, trainer.discriminator, trainer.feature_extractor))
    opt_g, opt_d = (torch.optim.Adam(n.parameters(), lr=2e-4, betas=(0.9, 0.999)) for n in (g, d))
    bce, l1 = torch.nn.functional.binary_cross_entropy_with_logits, torch.nn.functional.l1_loss
    theirs = []
    for step in range(settings.steps):
        hr = sample_patches(volumes, 16, 2, step_generator(settings.seed, step), align=(2, 2, 2))
        gen = g(degrade(hr, {"method": "nearest"}, 2))
        opt_g.zero_grad()
        loss_pixel = l1(gen, hr)
        if step < 2:  # epoch 0 of their loop (here 2 steps an epoch)
            loss_pixel.backward()
            opt_g.step()
            theirs.append((loss_pixel.item(), float("nan")))
            continue
        pred_real, pred_fake = d(hr).detach(), d(gen)
        loss_gan = bce(pred_fake - pred_real.mean(0, keepdim=True), torch.ones_like(pred_fake))
        loss_content = l1(fe(gen), fe(hr).detach())
        loss_g = loss_content + 5e-3 * loss_gan + 1e-2 * loss_pixel
        loss_g.backward()
        opt_g.step()
        opt_d.zero_grad()
        pred_real, pred_fake = d(hr), d(gen.detach())
        loss_d = (bce(pred_real - pred_fake.mean(0, keepdim=True), torch.ones_like(pred_real))
                  + bce(pred_fake - pred_real.mean(0, keepdim=True), torch.zeros_like(pred_fake))) / 2
        update_d = (step - 2) % 5 == 0  # their i % 5 == 0 within epoch 1
        if update_d:
            loss_d.backward()
            opt_d.step()
        theirs.append((loss_g.item(), loss_d.item() if update_d else float("nan")))

    rows = [trainer.train_step(volumes) for _ in range(settings.steps)]
    assert [r["warm_up"] for r in rows] == [True] * 2 + [False] * 6
    assert [r["discriminator_step"] for r in rows] == [False, False, True, False, False, False, False, True]
    np.testing.assert_allclose([(r["loss_g"], r["loss_d"]) for r in rows], theirs, rtol=1e-4)
    for name, net in (("generator", g), ("discriminator", d), ("feature_extractor", fe)):
        ours = getattr(trainer, name).state_dict()
        for key, value in net.state_dict().items():  # the extractor's BatchNorm running statistics too
            torch.testing.assert_close(ours[key], value, rtol=1e-4, atol=1e-6, msg=f"{name}.{key}")


@pytest.mark.parametrize("authors", [True, False], ids=["their switches", "ours"])
def test_wgan_gp_generator_in_eval_mode_after_each_epochs_first_batch_and_four_critic_passes(volumes, authors):
    """Their loop, as MRSRGAN_WGAN_GP.py writes it: `Gnet.train()` once per epoch (line 71), then per batch the D
    step (D on the SR, on HR, and its gradient penalty), the G step against the updated D (D on the SR only: 4 D
    forwards a step) and a validation that calls `Gnet.eval()` (line 126) and never undoes it, so G trains in eval
    mode from each epoch's second batch. 2 epochs of 2 steps, written out here; ours with generator_eval_epochs 2 and
    generator_step_real_pass when_needed computes it, with our defaults it does not (G's BatchNorm)."""
    settings = dataclasses.replace(SETTINGS, steps=4, checkpoint_every=4, memory_format="contiguous")
    switches = {"generator_eval_epochs": 2, "generator_step_real_pass": "when_needed"} if authors else {}
    trainer = GanTrainer(filled_variant({**WGAN_GP_RRDB, **switches}), settings)
    g, d = copy.deepcopy(trainer.generator), copy.deepcopy(trainer.discriminator)
    opt_g, opt_d = (torch.optim.Adam(n.parameters(), lr=2e-4, betas=(0.9, 0.999)) for n in (g, d))
    theirs, step = [], 0
    for epoch in range(2):
        g.train()  # line 71
        for batch in range(2):
            d_loss, g_loss = _their_wgan_gp_step(g, d, opt_g, opt_d, volumes, settings, step)
            g.eval()  # line 126: the validation's, never undone
            theirs.append((d_loss.item(), g_loss.item()))
            step += 1

    modes, passes = [], []
    trainer.generator.register_forward_pre_hook(lambda m, _: modes.append(m.training))
    trainer.discriminator.register_forward_hook(lambda *_: passes.append(1))
    rows = [trainer.train_step(volumes) for _ in range(4)]
    ours = [(r["loss_d"], r["loss_g"]) for r in rows]
    if authors:
        assert modes == [True, False, True, False] and len(passes) == 4 * 4
        np.testing.assert_allclose(ours, theirs, rtol=1e-4)
        for key, value in g.state_dict().items():  # G's running statistics too: in eval mode they stay put
            torch.testing.assert_close(trainer.generator.state_dict()[key], value, rtol=1e-4, atol=1e-6, msg=key)
        # D's weights; its running statistics come from the same 4 forwards, but theirs run D on the SR before the HR
        # in the D step (ours: HR first), and nothing reads them (D never runs in eval mode). A conv bias right before
        # BatchNorm has no gradient in exact arithmetic: Adam makes its rounding noise steps of up to lr each
        before_bn = {f"net.{i - 1}.bias" for i, m in enumerate(d.net) if isinstance(m, torch.nn.BatchNorm3d)}
        for key, value in d.named_parameters():
            tolerance = dict(atol=4 * 2e-4, rtol=0) if key in before_bn else dict(rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(dict(trainer.discriminator.named_parameters())[key], value, msg=key, **tolerance)
    else:
        assert modes == [True] * 4 and len(passes) == 5 * 4
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-4)  # the first step is the same
        running = [k for k in g.state_dict() if k.endswith("running_mean")]  # from the second, G's BatchNorm mode
        assert running and not all(torch.allclose(trainer.generator.state_dict()[k], g.state_dict()[k]) for k in running)


@pytest.mark.parametrize("memory_format", ["contiguous", "channels_last"])
def test_memory_format_is_a_switch_on_every_device(volumes, memory_format):
    """The authors train in PyTorch's default layout; channels-last is ours. Either way one step computes the same
    up to rounding (here: both against a plain-layout replica of the step)."""
    settings = dataclasses.replace(SETTINGS, memory_format=memory_format)
    trainer = GanTrainer(filled_variant(VARIANT), settings)
    expected = torch.channels_last_3d if memory_format == "channels_last" else torch.contiguous_format
    convs = [m.weight for net in trainer.players().values() for m in net.modules() if isinstance(m, torch.nn.Conv3d)]
    assert convs and all(w.is_contiguous(memory_format=expected) for w in convs)
    assert all(t.is_contiguous(memory_format=expected) for t in trainer.share(torch.zeros(2, 1, 8, 8, 8)))
    replica = GanTrainer(filled_variant(VARIANT), dataclasses.replace(SETTINGS, memory_format="contiguous"))
    for net in replica.players().values():
        net.to(memory_format=torch.contiguous_format)
    rows = [trainer.train_step(volumes), replica.train_step(volumes)]
    assert rows[0]["loss_g"] == pytest.approx(rows[1]["loss_g"], rel=1e-4)


def _their_crops(volumes: list[np.ndarray], size: int, stride: int) -> list[np.ndarray]:
    """Their crops, from crop_nifti_9t.py's description: each volume's odd edges trimmed by one, then zero-padded on
    both sides by (ceil((n - 64)/16)·16 − (n − 64))/2, then every 64³ window at stride 16 (i innermost, k outermost)."""
    crops = []
    for volume in volumes:
        even = volume[: volume.shape[0] // 2 * 2, : volume.shape[1] // 2 * 2, : volume.shape[2] // 2 * 2]
        pad = [int((np.ceil((n - size) / stride) * stride - (n - size)) / 2) for n in even.shape]
        padded = np.pad(even, [(p, p) for p in pad])
        for k in np.arange(0, padded.shape[2] - size + stride, stride):
            for j in np.arange(0, padded.shape[1] - size + stride, stride):
                for i in np.arange(0, padded.shape[0] - size + stride, stride):
                    crops.append(padded[i:i + size, j:j + size, k:k + size])
    return crops


def test_grid_patches_on_one_process_are_each_crop_once_an_epoch_in_a_new_order(rng):
    """One process (MRSRGAN's DataLoader(shuffle=True, drop_last=True)): an epoch holds each of their crops once
    (here 8³ at stride 4), but for the last incomplete batch; the next epoch holds them again, in another order."""
    from mrisr.patches import GridSampler

    volumes = [rng.normal(size=(13, 10, 11)).astype(np.float32), rng.normal(size=(9, 8, 16)).astype(np.float32)]
    size, stride, batch = 8, 4, 3
    crops = _their_crops(volumes, size, stride)
    sampler = GridSampler([v.shape for v in volumes], size, stride, batch, seed=3, processes=1, fraction=1.0)
    per_epoch = len(crops) // batch  # their DataLoader's drop_last
    assert sampler.per_epoch == per_epoch
    theirs = {c.tobytes(): c for c in crops}
    epochs = [torch.cat([sampler.patches(volumes, e * per_epoch + step) for step in range(per_epoch)])[:, 0].numpy()
              for e in range(2)]
    for drawn in epochs:
        assert drawn.shape == (per_epoch * batch, size, size, size)
        assert len({d.tobytes() for d in drawn}) == len(drawn) and all(d.tobytes() in theirs for d in drawn)
    assert [d.tobytes() for d in epochs[0]] != [d.tobytes() for d in epochs[1]]
    assert GridSampler([v.shape for v in volumes], size, stride, batch, seed=4, processes=1,
                       fraction=1.0).windows_of(0) != sampler.windows_of(0)


@pytest.mark.parametrize("fraction", [1.0, 0.25])
def test_grid_windows_per_process_are_their_ddp_samplers(fraction):
    """Two processes, as their Lightning DDP scripts read the crops: each process a random_split of its own (all of
    them: threeplayerGANSR's [1.0, 0.0]; DISGAN's first quarter), then PyTorch's DistributedSampler(shuffle=True)
    with set_epoch, and a DataLoader of the per-process batch with drop_last. Built here from torch.utils.data
    itself, with our seeds; the global batch is the two processes' batches in rank order, epoch after epoch."""
    from torch.utils.data import DataLoader, DistributedSampler, random_split

    from mrisr.patches import GridSampler, split_generator

    shapes, size, stride, batch, seed, world = [(20, 17, 18), (18, 18, 16)], 8, 4, 4, 11, 2
    sampler = GridSampler(shapes, size, stride, batch, seed, processes=world, fraction=fraction)
    n = len(sampler.windows)
    loaders = []
    for rank in range(world):
        kept = int(n * fraction)
        share = random_split(range(n), [kept, n - kept], generator=split_generator(seed, rank))[0]
        distributed = DistributedSampler(share, num_replicas=world, rank=rank, shuffle=True, seed=seed)
        loaders.append((distributed, DataLoader(share, batch_size=batch // world, sampler=distributed,
                                                drop_last=True)))
    for epoch in range(2):
        for distributed, _ in loaders:
            distributed.set_epoch(epoch)
        theirs = list(zip(*(loader for _, loader in loaders)))
        assert len(theirs) == sampler.per_epoch
        for step, parts in enumerate(theirs):
            expected = [sampler.windows[int(i)] for part in parts for i in part]
            assert sampler.windows_of(epoch * sampler.per_epoch + step) == expected


def test_the_authors_epochs_on_hcp_have_the_steps_their_scripts_take():
    """27 HCP subjects of 260 x 311 x 260, 64³ windows at stride 16 (89,964 windows): the 3-player GAN's DDP (2
    processes x 4) 11,245 steps an epoch, DISGAN's quarter 2,811 (56,220 in 20 epochs), the MIDL 2022 and WGAN-GP
    scripts (1 GPU, batch 4) 22,491 (449,820): ceil(kept / processes) // per-process batch, by hand."""
    from mrisr.patches import grid_corners, grid_steps

    shapes = [(260, 311, 260)] * 27
    windows = 27 * len(grid_corners((260, 311, 260), 64, 16))
    assert windows == 89_964
    for batch, processes, fraction, per_epoch in ((8, 2, 1.0, 11_245), (8, 2, 0.25, 2_811), (4, 1, 1.0, 22_491)):
        assert per_epoch == -(-(windows * 4 // round(4 / fraction)) // processes) // (batch // processes)
        assert grid_steps(shapes, 64, 16, batch, processes, fraction, epochs=20) == 20 * per_epoch


def test_two_processes_see_three_quarters_of_the_windows_an_epoch():
    """Their DDP: each process's own split, so an epoch's two halves overlap: about 75% of the windows seen, 25% of
    them twice; DISGAN's quarters: 1 - (7/8)^2 = 23% an epoch, 1 - (3/4)^2 = 44% over the run."""
    from mrisr.patches import GridSampler

    shapes = [(40, 40, 40)] * 4
    for fraction, per_epoch_seen, run_seen in ((1.0, 0.75, 1.0), (0.25, 1 - (7 / 8) ** 2, 1 - (3 / 4) ** 2)):
        sampler = GridSampler(shapes, 8, 4, 8, seed=0, processes=2, fraction=fraction)
        n, epochs = len(sampler.windows), 20
        seen = [{int(i) for rank in sampler.ranks_of(e) for i in rank} for e in range(epochs)]
        assert np.mean([len(s) / n for s in seen]) == pytest.approx(per_epoch_seen, abs=0.02)
        assert len(set().union(*seen)) / n == pytest.approx(run_seen, abs=0.03)


def test_a_run_given_in_epochs_counts_its_steps_from_the_volumes():
    """train.epochs: the steps are the epochs of the grid over these volumes at this batch (one process here):
    windows // batch per epoch, their DataLoader's drop_last; too few windows for one batch is a config error."""
    from mrisr.patches import grid_corners
    from mrisr.train.gan import counted_steps

    shapes = [(20, 17, 18), (18, 18, 16)]
    settings = train_settings(steps=7, batch_size=3, patch_size=8, checkpoint_every=2, patch_sampling="grid",
                              patch_stride=4, epochs=3, degradation={"method": "nearest"})
    windows = sum(len(grid_corners(s, 8, 4)) for s in shapes)
    assert counted_steps(settings, shapes).steps == 3 * (windows // 3)
    assert counted_steps(dataclasses.replace(settings, epochs=None), shapes).steps == 7
    with pytest.raises(ConfigError, match="train.patch_size"):
        counted_steps(dataclasses.replace(settings, batch_size=windows + 1), shapes)


PIXEL = filled_variant({
    "kind": "pixel",
    "generator": {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "upsampler": "nearest_conv"},
    "losses": {"pixel_loss": "l1"},
    "optimiser": {"lr": 1e-3, "clip_grad_norm": 0.01, "milestones": [2, 4], "gamma": 0.5},
})


@pytest.mark.parametrize("generator", [PIXEL["generator"], {"name": "mdcsrn", "growth": 2, "blocks": 2, "units": 2,
                                                             "batch_norm": True, "reconstruction": "sub_pixel"}])
def test_a_pixel_variant_trains_its_generator_alone_with_clipping_and_its_milestones(tmp_path, volumes, monkeypatch,
                                                                                     generator):
    """Kind pixel (MTVNet's RRDBNet3D and mDCSRN runs): no discriminator or feature extractor is ever built; the
    learning rate halves at each milestone (torch's MultiStepLR, read back from the log); every step's gradient
    norm, computed here from the gradients the step leaves, is at most clip_grad_norm; the model file holds the
    generator alone (mDCSRN's batch-norm statistics included)."""
    from mrisr import generator_trainer
    from mrisr.generator_trainer import PixelTrainer
    from mrisr.models import registry
    from mrisr.train import gan
    from mrisr.train.gan import train_pixel

    built, original = [], registry.build
    for module in (registry, generator_trainer, gan):  # every name the trainers build networks by
        monkeypatch.setattr(module, "build", lambda role, cfg: built.append(role) or original(role, cfg))
    norms = []
    step = PixelTrainer.train_step

    def watched(self, volumes):
        row = step(self, volumes)
        norms.append(float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in self.generator.parameters()]))))
        return row

    monkeypatch.setattr(PixelTrainer, "train_step", watched)
    out = train_pixel(volumes, {**PIXEL, "generator": generator}, SETTINGS, tmp_path, progress=False)
    assert built == ["generator"]
    log = pd.read_csv(out["log"])
    np.testing.assert_allclose(log["lr"], [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4])
    assert "loss_d" not in log and log["loss_pixel"].notna().all()
    assert len(norms) == 6 and max(norms) <= 0.01 * (1 + 1e-4)
    assert set(read_model_parts(out["model"])["state_dict"]) == set(
        original("generator", {**generator, "scale": 2}).state_dict())


def test_a_pixel_variant_without_clipping_leaves_the_gradient_as_it_is(volumes, monkeypatch):
    """The control: the same step without clip_grad_norm gives gradients far over 0.01, so the bound above is the
    clipping's."""
    from mrisr.generator_trainer import PixelOptimiser, PixelTrainer

    trainer = PixelTrainer(PIXEL["generator"], "l1", SETTINGS, PixelOptimiser(lr=1e-3, betas=(0.9, 0.999)), "f")
    trainer.train_step(volumes)
    assert float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in trainer.generator.parameters()]))) > 0.05


def test_pixel_only_optimiser_keys_are_refused_on_a_gan_variant():
    with pytest.raises(ConfigError, match="'variants.v.optimiser.milestones': applies to kind pixel only, not gan"):
        filled_variant({**{k: v for k, v in VARIANT.items() if k != "optimiser"}, "optimiser": {"milestones": [5]}})


def test_a_whole_volume_degradation_trains_on_pairs_cropped_from_each_volumes_lr(volumes):
    """MTVNet's resize (its LR grid depends on the volume's size): the LR patches are crops of the LR of each whole
    volume (degraded here independently) at the HR window's corner / scale, as their data loader crops pairs; the HR
    patches are random sampling's windows of the same step."""
    from mrisr.degrade import degrade_volume
    from mrisr.generator_trainer import PixelOptimiser, PixelTrainer
    from mrisr.patches import patch_windows, step_generator

    volumes = [v[:20, :18, :21] for v in volumes]  # an odd edge: its last row fills no LR voxel and is left out
    entry = {"method": "resize", "blur_sigma": 1.0}
    settings = dataclasses.replace(SETTINGS, degradation=entry)
    trainer = PixelTrainer(PIXEL["generator"], "l1", settings, PixelOptimiser(lr=1e-3, betas=(0.9, 0.999)), "f")
    whole = [degrade_volume(v[:, :, :20], entry, 2) for v in volumes]
    for step in range(3):
        trainer.step = step
        _, hr, lr = trainer.batch(volumes)
        windows = patch_windows([(20, 18, 20)] * 2, 16, 2, step_generator(SETTINGS.seed, step), align=(2, 2, 2))
        for k, (index, window) in enumerate(windows):
            np.testing.assert_array_equal(hr[k, 0].numpy(), volumes[index][window])
            np.testing.assert_allclose(lr[k, 0].numpy(), whole[index][tuple(slice(w.start // 2, w.stop // 2)
                                                                             for w in window)], atol=1e-6)
    with pytest.raises(ConfigError, match="patch_sampling"):
        PixelTrainer(PIXEL["generator"], "l1", dataclasses.replace(settings, patch_sampling="grid"),
                     PixelOptimiser(lr=1e-3, betas=(0.9, 0.999)), "f").batch(volumes)
