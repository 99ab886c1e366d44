import json
import math

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from mrisr.degrade import degrade
from mrisr.errors import ConfigError, InputError
from mrisr.model_card import load_model
from mrisr.models.registry import build
from mrisr.patches import sample_patches, step_generator
from mrisr.plan.study import generator_key
from mrisr.pretrain import pretrain_generator, pretrainer
from mrisr.settings import PretrainSettings
from mrisr.train.gan import GanTrainer, load_start, train_variant
from mrisr.trainer import save_checkpoint, try_resume
from tests.conftest import filled_variant, train_settings

VARIANT = filled_variant({
    "kind": "gan",
    "start": "pretrained",
    "generator": {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1},
    "discriminator": {"name": "patch", "channels": [4, 8], "norm": "instance"},
    "feature_extractor": {"name": "resnet10", "channels": 4},
})
GENERATOR = VARIANT["generator"]
SETTINGS = dict(steps=4, batch_size=2, patch_size=16, checkpoint_every=2, seed=3, precision="fp32",
                memory_format="channels_last", patch_sampling="random", patch_stride=16, window_fraction=1.0,
                degradation={"method": "nearest", "blur_fwhm": 2.0}, scale=2, lr=1e-3, betas=(0.9, 0.99),
                cudnn_benchmark=False, tf32="convolutions", compile="none")
GAN_SETTINGS = {k: SETTINGS[k] for k in ("steps", "batch_size", "patch_size", "checkpoint_every", "seed", "precision",
                                          "memory_format", "patch_sampling", "patch_stride", "window_fraction",
                                          "degradation", "scale", "cudnn_benchmark", "tf32", "compile")} | {
    "shared_discriminator_pass": True, "relativistic_mean": "global", "epochs": None}
PREPROCESSING = {"crop": "brain", "margin": 4, "normalise": "volume", "normalise_first": False}


@pytest.fixture
def volumes(rng):
    return [rng.normal(size=(20, 18, 22)).astype(np.float32) for _ in range(2)]


@pytest.fixture
def hr_files(tmp_path, volumes):
    paths = []
    for i, volume in enumerate(volumes):
        paths.append(str(tmp_path / f"sub-0{i}_T1w.nii.gz"))
        nib.save(nib.Nifti1Image(volume, np.diag([1.5, 1.5, 1.5, 1.0])), paths[-1])
    return paths


def _pretrain(hr_files, out_dir, pixel_loss="l1", **settings):
    provenance = {"variant": f"pretrained-{generator_key(GENERATOR, pixel_loss)}", "dataset": "demo",
                  "subjects": ["00", "01"], "preprocessing": PREPROCESSING}
    return pretrain_generator(hr_files, GENERATOR, pixel_loss, dict(SETTINGS, **settings), provenance, str(out_dir),
                              threads=2, processes=1)


def test_generator_key_names_the_architecture_and_tells_configs_apart():
    key = generator_key(GENERATOR, "l1")
    assert key.startswith("rrdb-l1-") and key == generator_key(dict(GENERATOR), "l1")
    assert generator_key(GENERATOR, "mse") != key
    assert generator_key(dict(GENERATOR, channels=8), "l1") != key


@pytest.mark.parametrize("pixel_loss, loss", [("l1", F.l1_loss), ("mse", F.mse_loss)])
def test_pixel_steps_are_adam_on_the_pixel_loss_with_a_cosine_rate(volumes, pixel_loss, loss):
    """Written out: the same patches and LR as a GAN step, plain Adam on the pixel loss, lr·(1 + cos(πt/T))/2."""
    settings = PretrainSettings(**SETTINGS)
    trainer = pretrainer(GENERATOR, pixel_loss, settings)
    torch.manual_seed(settings.seed)
    reference = build("generator", dict(GENERATOR, scale=2)).to(memory_format=torch.channels_last_3d)
    opt = torch.optim.Adam(reference.parameters(), lr=settings.lr, betas=settings.betas)
    for step in range(settings.steps):
        row = trainer.train_step(volumes)
        rate = settings.lr * (1 + math.cos(math.pi * step / settings.steps)) / 2
        for group in opt.param_groups:
            group["lr"] = rate
        rng = step_generator(settings.seed, step)
        hr = sample_patches(volumes, settings.patch_size, settings.batch_size, rng, align=(2, 2, 2))
        lr = degrade(hr, {"method": "nearest"}, 2).to(memory_format=torch.channels_last_3d)
        value = loss(reference(lr), hr)
        opt.zero_grad()
        value.backward()
        opt.step()
        assert row["lr"] == pytest.approx(rate) and row["loss_pixel"] == pytest.approx(value.item(), rel=1e-5)
    for key, weight in reference.state_dict().items():
        torch.testing.assert_close(trainer.generator.state_dict()[key], weight, rtol=1e-5, atol=1e-6)


def test_resumed_pretraining_continues_the_cosine_where_it_stopped(tmp_path, volumes):
    settings = PretrainSettings(**SETTINGS)
    whole = pretrainer(GENERATOR, "l1", settings)
    for _ in range(settings.steps):
        whole.train_step(volumes)
    first = pretrainer(GENERATOR, "l1", settings)
    for _ in range(2):
        first.train_step(volumes)
    save_checkpoint(first, tmp_path / "checkpoint.pt")
    resumed = pretrainer(GENERATOR, "l1", settings)
    assert try_resume(resumed, tmp_path / "checkpoint.pt") and resumed.step == 2
    rows = [resumed.train_step(volumes) for _ in range(2)]
    assert rows[0]["lr"] == pytest.approx(settings.lr * (1 + math.cos(math.pi * 2 / 4)) / 2)
    for key, weight in whole.generator.state_dict().items():
        torch.testing.assert_close(resumed.generator.state_dict()[key], weight, rtol=0, atol=0)
    other = pretrainer(GENERATOR, "mse", settings)
    assert not try_resume(other, tmp_path / "checkpoint.pt")  # another pixel loss: another run


def test_pretrained_model_is_a_model_card_and_the_gan_starts_from_it(tmp_path, hr_files):
    out = _pretrain(hr_files, tmp_path / "pretrain")
    config, state_dict, card = load_model(out["model"])
    assert config == dict(GENERATOR, scale=2) and card["training"]["start"] == "scratch"
    assert card["variant"] == f"pretrained-{generator_key(GENERATOR, 'l1')}" and card["lr_voxel_mm"] == 3.0
    log = pd.read_csv(out["log"])
    assert list(log["step"]) == [1, 2, 3, 4] and log["loss_pixel"].notna().all()

    start, recorded = load_start(out["model"], dict(GENERATOR, scale=2))
    trainer = GanTrainer(VARIANT, train_settings(**GAN_SETTINGS), start=start)
    for key, weight in state_dict.items():
        torch.testing.assert_close(trainer.generator.state_dict()[key], weight, rtol=0, atol=0)
    scratch = GanTrainer(dict(VARIANT, start="scratch"), train_settings(**GAN_SETTINGS))
    assert scratch.fingerprint != trainer.fingerprint  # a checkpoint of the scratch run is never resumed

    provenance = {"variant": "esrgan", "dataset": "demo", "subjects": ["00", "01"], "preprocessing": PREPROCESSING}
    model = train_variant(hr_files, VARIANT, GAN_SETTINGS, provenance, str(tmp_path / "gan"), threads=2, processes=1,
                          start=str(out["model"]))["model"]
    assert load_model(model)[2]["training"]["start"] == recorded
    assert recorded["steps"] == 4 and recorded["model"] == card["variant"]


def test_a_start_of_another_generator_or_none_is_refused(tmp_path, hr_files):
    out = _pretrain(hr_files, tmp_path / "pretrain", steps=2)
    wider = dict(GENERATOR, channels=8, scale=2)
    with pytest.raises(InputError, match=f"{out['model']}.*another generator.*rerun the pretrain stage"):
        load_start(out["model"], wider)
    provenance = {"variant": "esrgan", "dataset": "demo", "subjects": ["00"], "preprocessing": PREPROCESSING}
    with pytest.raises(ConfigError, match="variants.esrgan.start.*--start"):
        train_variant(hr_files, VARIANT, GAN_SETTINGS, provenance, str(tmp_path / "gan"), threads=2, processes=1)
    assert json.loads(json.dumps(load_model(out["model"])[2]))  # the card is plain data


def test_one_training_per_folder_and_a_killed_one_leaves_no_lock(hr_files, tmp_path, capsys):
    """A second job training into a folder while another does is refused through the command; once the first is
    killed (SIGKILL: no clean-up runs), the folder trains."""
    import json
    import subprocess
    import sys

    from mrisr.cli import main

    out = tmp_path / "model"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from mrisr.trainer import training_lock\n"
                               f"with training_lock(Path({str(out)!r})):\n print('held', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    provenance = {"variant": "pretrained-x", "dataset": "demo", "subjects": ["00", "01"],
                  "preprocessing": PREPROCESSING}
    command = ["pretrain", "--hr", *hr_files, "--generator", json.dumps(GENERATOR), "--pixel-loss", "l1",
               "--settings", json.dumps(SETTINGS), "--provenance", json.dumps(provenance), "--out-dir", str(out),
               "--threads", "1"]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"{out}: is being trained into by another running job" in err and "Fix: wait" in err
    assert not (out / "model.safetensors").exists() and not (out / "checkpoint.pt").exists()
    holder.kill()
    holder.wait()
    assert main(command) == 0 and (out / "model.safetensors").is_file()
