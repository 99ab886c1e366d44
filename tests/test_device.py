"""The speed switches (mrisr.device.Acceleration): what they set, and that on the CPU they compute the same.

``torch.compile`` runs here with the ``aot_eager`` backend (Dynamo's graph capture and AOTAutograd's joint graph,
without Inductor's code generation, which takes ~40 s per network on these CPUs): what the switch wires in place
(which networks, their state dicts, checkpoints, the staged inference) is what is tested.
"""

import dataclasses
import functools
import json

import numpy as np
import pytest
import torch

from mrisr.device import Acceleration, CompileMode, Tf32, ieee_fp32
from mrisr.models.registry import build
from mrisr.inference import compile_stages, super_resolve
from mrisr.train.gan import GanTrainer, train
from mrisr.trainer import try_resume
from tests.conftest import filled_variant, inference_settings, read_model_parts
from tests.test_train import SETTINGS, VARIANT

WGAN_GP = filled_variant({
    "kind": "gan",
    "generator": {"name": "mdcsrn", "growth": 4, "blocks": 1, "units": 2},
    "discriminator": {"name": "patch", "channels": [4, 8], "norm": "batch"},
    "losses": {"pixel_loss": "mse", "adversarial": 0.001, "feature": 0, "gan": "wgan_gp", "gp_weight": 10.0},
    "optimiser": {"lr": 1e-3},
})


@pytest.fixture
def volumes(rng):
    return [rng.normal(size=(20, 18, 22)).astype(np.float32) for _ in range(2)]


@pytest.fixture
def aot_eager(monkeypatch):
    """``torch.compile`` with the cheap ``aot_eager`` backend (the mode is kept: Inductor's, ignored by it)."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def flags():
    return (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)


@pytest.mark.parametrize("tf32, expected", [("convolutions", (True, False)), ("all", (True, True)),
                                            ("none", (False, False))])
def test_backends_set_the_flags_for_the_block_and_restore_them(tf32, expected):
    before = flags()
    with pytest.raises(RuntimeError, match="inside"):
        with Acceleration(cudnn_benchmark=not before[0], tf32=tf32, compile="none").backends():
            assert flags() == (not before[0], *expected)
            # PyTorch's newer flags read the same (Inductor reads both kinds)
            assert torch.backends.cuda.matmul.fp32_precision == ("tf32" if expected[1] else "ieee")
            raise RuntimeError("inside")
    assert flags() == before


def test_ieee_fp32_turns_tf32_off_keeps_the_autotuner_and_restores():
    with Acceleration(cudnn_benchmark=True, tf32="all", compile="none").backends():
        with ieee_fp32():
            assert flags() == (True, False, False)
        assert flags() == (True, True, True)


def test_tf32_and_the_autotuner_compute_the_same_on_the_cpu(tmp_path, volumes):
    """The CPU has neither: every value trains to the same weights, bit for bit."""
    weights = []
    for tf32, benchmark in [("none", False), ("all", True), ("convolutions", True)]:
        settings = dataclasses.replace(SETTINGS, steps=2, tf32=tf32, cudnn_benchmark=benchmark)
        out = train(volumes, VARIANT, settings, tmp_path / tf32, progress=False)
        weights.append(read_model_parts(out["model"])["state_dict"])
    for other in weights[1:]:
        for key, value in weights[0].items():
            torch.testing.assert_close(other[key], value, rtol=0, atol=0)


def test_compiled_training_matches_eager_and_writes_the_eager_files(tmp_path, volumes, aot_eager):
    settings = dataclasses.replace(SETTINGS, steps=2)
    eager = train(volumes, VARIANT, settings, tmp_path / "eager", progress=False)
    compiled = dataclasses.replace(settings, compile=CompileMode.DEFAULT.value)
    trainer = GanTrainer(VARIANT, compiled)
    assert all(net._compiled_call_impl is not None for net in trainer.players().values())
    out = train(volumes, VARIANT, compiled, tmp_path / "compiled", progress=False)
    a, b = read_model_parts(eager["model"])["state_dict"], read_model_parts(out["model"])["state_dict"]
    assert list(a) == list(b)  # no "_orig_mod." prefix: a model card loads either way
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6)
    checkpoint = torch.load(tmp_path / "compiled" / "checkpoint.pt")
    assert set(checkpoint["generator"]) == set(a)


def test_a_checkpoint_resumes_across_speed_switches_not_across_tf32(tmp_path, volumes):
    train(volumes, VARIANT, dataclasses.replace(SETTINGS, steps=2), tmp_path, progress=False)
    checkpoint = tmp_path / "checkpoint.pt"
    faster = dataclasses.replace(SETTINGS, steps=2, compile="max-autotune", cudnn_benchmark=True)
    assert try_resume(GanTrainer(VARIANT, dataclasses.replace(faster, compile="none")), checkpoint)
    assert not try_resume(GanTrainer(VARIANT, dataclasses.replace(SETTINGS, steps=2, tf32="none")), checkpoint)


def test_a_wgan_gp_critic_stays_eager_and_its_penalty_trains(tmp_path, volumes, aot_eager):
    settings = dataclasses.replace(SETTINGS, steps=2, compile=CompileMode.DEFAULT.value)
    trainer = GanTrainer(WGAN_GP, settings)
    assert trainer.generator._compiled_call_impl is not None
    assert trainer.discriminator._compiled_call_impl is None
    row = trainer.train_step(volumes)
    assert np.isfinite(row["gradient_penalty"]) and row["gradient_penalty"] > 0


def test_compiled_stages_super_resolve_as_eager(aot_eager, rng):
    generator = build("generator", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2}).eval()
    lr = rng.normal(size=(10, 12, 9)).astype(np.float32)
    eager = super_resolve(generator, lr, 2, inference_settings(tile=6, halo=2, reconstruct_tile=4), progress=False)
    compile_stages(generator, Acceleration(cudnn_benchmark=False, tf32="all", compile="reduce-overhead"))
    torch._dynamo.utils.counters.clear()
    np.testing.assert_allclose(super_resolve(generator, lr, 2, inference_settings(tile=6, halo=2, reconstruct_tile=4), progress=False),
                               eager, rtol=1e-5, atol=1e-5)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 2  # both stages ran compiled


def test_every_switch_value_is_in_the_schema():
    from mrisr.config import schema_property

    assert schema_property("train.tf32")["enum"] == [t.value for t in Tf32]
    for key in ("train.compile", "inference.compile"):
        assert schema_property(key)["enum"] == [m.value for m in CompileMode]


def test_the_auto_layout_is_probed_once_per_machine_and_kept(tmp_path, monkeypatch):
    """memory_format auto: on a CPU the layout the probe times faster (here made so), kept in the user's cache and
    read from it the next time without probing; a given layout is taken as given; CUDA takes channels-last."""
    from mrisr import device
    from mrisr.device import MemoryFormat, chosen_layout

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    probes = []

    def probe(network, shape):
        probes.append(shape)
        return {MemoryFormat.CONTIGUOUS: 0.2, MemoryFormat.CHANNELS_LAST: 0.1 if shape == (8, 8, 8) else 0.3}

    monkeypatch.setattr(device, "probe_layouts", probe)
    cpu, net = torch.device("cpu"), torch.nn.Conv3d(1, 1, 3)
    assert chosen_layout("auto", cpu, net, "net", (8, 8, 8)) is MemoryFormat.CHANNELS_LAST
    assert chosen_layout("auto", cpu, net, "net", (32, 32, 8)) is MemoryFormat.CONTIGUOUS
    assert chosen_layout("auto", cpu, net, "net", (8, 8, 8)) is MemoryFormat.CHANNELS_LAST
    assert probes == [(8, 8, 8), (16, 16, 8)]  # each axis at most PROBE_EDGE
    kept = json.loads((tmp_path / "mrisr" / "memory_format.json").read_text())
    assert sorted(kept.values()) == ["channels_last", "contiguous"]
    assert chosen_layout("contiguous", cpu, net, "net", (8, 8, 8)) is MemoryFormat.CONTIGUOUS and len(probes) == 2
    assert chosen_layout("auto", torch.device("cuda"), net, "net", (8, 8, 8)) is MemoryFormat.CHANNELS_LAST


def test_the_layout_probe_leaves_the_network_as_it_was():
    """The probe runs a copy: a generator with BatchNorm keeps its running statistics, its weights get no
    gradient, and the global random stream is not drawn from (the trainers build their networks after the seed)."""
    from mrisr.device import chosen_layout

    generator = build("generator", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "batch_norm": True,
                                    "scale": 2})
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    expected = torch.manual_seed(5) and torch.rand(1)
    torch.manual_seed(5)
    chosen_layout("auto", torch.device("cpu"), generator, "bn", (8, 8, 8))
    assert torch.equal(torch.rand(1), expected)
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())
    assert all(p.grad is None for p in generator.parameters())

