"""Two CPU processes on gloo train to the same weights as one process on the same global batch."""

import contextlib
import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from mrisr import distributed
from mrisr.errors import MrisrError
from mrisr import losses
from mrisr.train.gan import train, train_variant
from tests.conftest import filled_variant, read_model_parts, train_settings

VARIANT = filled_variant({
    "kind": "gan",
    "generator": {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1},
    "discriminator": {"name": "patch", "channels": [4, 8], "norm": "instance"},
    "feature_extractor": {"name": "resnet10", "channels": 4},
    "instance_noise": {"start": 0.5, "end": 0.0},
    "optimiser": {"lr": 1e-3},
})
SETTINGS = train_settings(steps=3, batch_size=4, patch_size=16, checkpoint_every=10, memory_format="channels_last",
                          degradation={"method": "nearest", "blur_fwhm": 2.0})  # one layout at 1 and 2 threads


def _volumes():
    rng = np.random.default_rng(0)
    return [rng.normal(size=(20, 18, 22)).astype(np.float32) for _ in range(2)]


def _train(out: str, variant: dict, settings=SETTINGS):
    """One process's share of a data-parallel training (module level: the processes import it)."""
    torch.set_num_threads(1)
    return train(_volumes(), variant, settings, out, progress=False)


def _weights(path):
    return read_model_parts(path)["state_dict"]


def test_two_processes_match_one_process_on_the_global_batch(tmp_path):
    for variant, name in ((VARIANT, "relativistic"),
                          (dict(VARIANT, losses=dict(VARIANT["losses"], gan="wgan_gp")), "wgan_gp")):
        single = train(_volumes(), variant, SETTINGS, tmp_path / f"{name}-one", progress=False)
        launched = distributed.launch(2, _train, out=str(tmp_path / f"{name}-two"), variant=variant)
        assert launched["model"] == tmp_path / f"{name}-two" / "model.safetensors"  # process 0's result comes back
        one, two = _weights(single["model"]), _weights(tmp_path / f"{name}-two" / "model.safetensors")
        for key in one:
            torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5)
    # the check has teeth: one process on half the batch ends elsewhere
    half = train(_volumes(), VARIANT, dataclasses.replace(SETTINGS, batch_size=2), tmp_path / "half", progress=False)
    one, other = _weights(tmp_path / "relativistic-one" / "model.safetensors"), _weights(half["model"])
    assert max((one[k] - other[k]).abs().max().item() for k in one) > 1e-3


def _halves_mean(x: torch.Tensor) -> torch.Tensor:
    """The batch mean within each half of the batch: what each of two processes computes on its own share."""
    return torch.cat([half.mean(dim=0, keepdim=True).expand_as(half) for half in x.chunk(2)])


def test_per_process_relativistic_means_are_each_process_s_own(tmp_path, monkeypatch):
    """``train.relativistic_mean: process`` (the authors' DDP): two processes train as one process whose
    relativistic means are taken within each half of the batch."""
    settings = dataclasses.replace(SETTINGS, relativistic_mean="process")
    distributed.launch(2, _train, out=str(tmp_path / "two"), variant=VARIANT, settings=settings)
    global_mean = train(_volumes(), VARIANT, SETTINGS, tmp_path / "global", progress=False)
    monkeypatch.setattr(losses, "batch_mean", _halves_mean)
    halves = train(_volumes(), VARIANT, settings, tmp_path / "halves", progress=False)
    two, one = _weights(tmp_path / "two" / "model.safetensors"), _weights(halves["model"])
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5)
    other = _weights(global_mean["model"])
    assert max((one[k] - other[k]).abs().max().item() for k in one) > 1e-5  # the means matter


def _listening(addresses_of=("/proc/net/tcp", "/proc/net/tcp6")) -> list[str]:
    """Local addresses (hex, as /proc/net writes them) of the TCP sockets this process listens on."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table in addresses_of:
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append(fields[1].rsplit(":", 1)[0])
    return found


def _sockets_after_a_collective() -> list[str]:
    dist.all_reduce(torch.ones(1))
    return _listening()


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1


def test_processes_listen_on_loopback_only(monkeypatch):
    for variable in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):
        monkeypatch.delenv(variable, raising=False)
    assert set(distributed.launch(2, _sockets_after_a_collective)) <= LOOPBACK
    # the check sees what torchrun --standalone's rendezvous store does: listen on every interface
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    assert set(_listening()) - LOOPBACK
    del store


def test_an_error_in_one_process_stops_all_and_is_said(tmp_path, capfd):
    bad = dict(VARIANT, start="pretrained")
    with pytest.raises(MrisrError, match=r"process \d of 2 stopped"):
        distributed.launch(2, train_variant, hr=[str(tmp_path / "missing.nii.gz")], variant=bad, settings={},
                           provenance={}, out_dir=str(tmp_path / "out"), threads=1, processes=1)
    assert "missing.nii.gz: image file does not exist" in capfd.readouterr().err
