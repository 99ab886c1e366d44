"""Two CPU processes on gloo train to the same weights as one process on the same global batch."""

import dataclasses
import os
import socket

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mrisr.train import losses
from mrisr.train.gan import train
from tests.conftest import filled_variant, train_settings

VARIANT = filled_variant({
    "kind": "gan",
    "generator": {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1},
    "discriminator": {"name": "patch", "channels": [4, 8], "norm": "instance"},
    "feature_extractor": {"name": "resnet10", "channels": 4},
    "instance_noise": {"start": 0.5, "end": 0.0},
    "optimiser": {"lr": 1e-3},
})
SETTINGS = train_settings(steps=3, batch_size=4, patch_size=16, checkpoint_every=10, degradation={"method": "nearest"})


def _volumes():
    rng = np.random.default_rng(0)
    return [rng.normal(size=(20, 18, 22)).astype(np.float32) for _ in range(2)]


def _worker(rank: int, world: int, port: int, out: str, variant: dict, settings=SETTINGS) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        train(_volumes(), variant, settings, out, progress=False)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weights(path):
    return torch.load(path)["state_dict"]


def test_two_processes_match_one_process_on_the_global_batch(tmp_path):
    for variant, name in ((VARIANT, "relativistic"),
                          (dict(VARIANT, losses=dict(VARIANT["losses"], gan="wgan_gp")), "wgan_gp")):
        single = train(_volumes(), variant, SETTINGS, tmp_path / f"{name}-one", progress=False)
        mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / f"{name}-two"), variant), nprocs=2, join=True)
        one, two = _weights(single["model"]), _weights(tmp_path / f"{name}-two" / "model.pt")
        for key in one:
            torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5)
    # the check has teeth: one process on half the batch ends elsewhere
    half = train(_volumes(), VARIANT, dataclasses.replace(SETTINGS, batch_size=2), tmp_path / "half", progress=False)
    one, other = _weights(tmp_path / "relativistic-one" / "model.pt"), _weights(half["model"])
    assert max((one[k] - other[k]).abs().max().item() for k in one) > 1e-3


def _halves_mean(x: torch.Tensor) -> torch.Tensor:
    """The batch mean within each half of the batch: what each of two processes computes on its own share."""
    return torch.cat([half.mean(dim=0, keepdim=True).expand_as(half) for half in x.chunk(2)])


def test_per_process_relativistic_means_are_each_process_s_own(tmp_path, monkeypatch):
    """``train.relativistic_mean: process`` (the authors' DDP): two processes train as one process whose
    relativistic means are taken within each half of the batch."""
    settings = dataclasses.replace(SETTINGS, relativistic_mean="process")
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "two"), VARIANT, settings), nprocs=2, join=True)
    global_mean = train(_volumes(), VARIANT, SETTINGS, tmp_path / "global", progress=False)
    monkeypatch.setattr(losses, "batch_mean", _halves_mean)
    halves = train(_volumes(), VARIANT, settings, tmp_path / "halves", progress=False)
    two, one = _weights(tmp_path / "two" / "model.pt"), _weights(halves["model"])
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5)
    other = _weights(global_mean["model"])
    assert max((one[k] - other[k]).abs().max().item() for k in one) > 1e-5  # the means matter
