"""Training throughput of GAN variants: seconds per step of named configurations of the workflow's step, against a
plain fp32 eager step, all in one process.

Usage: python benchmarks/train_step.py [--config config.yaml] [--variants NAME ...] [--steps 5] [--patch-size N]
                                      [--batch-size N] [--paper-sizes] [--configs NAME ...]
                                      [--generator-configs NAME ...]
``--paper-sizes`` drops the networks' size keys so that the schema's defaults, the authors' sizes, apply.
``--configs`` (default: plain ours fp32) names entries of CONFIGS: each is the workflow's step (the plan's
settings) with a few settings changed; ``plain`` is the baseline every ratio is against: the same networks and
losses in fp32, PyTorch's default memory layout and flags, D run again for its own update (the authors' order).
The trainers of a variant run on the same random volumes (the cost of a step does not depend on the values),
alternately, after one untimed first step each (whose seconds are reported: allocation, cuDNN's autotuning,
torch.compile). A configuration that fails is reported with its error; the others go on. Prints a table and
appends it, with machine, date, command and versions, to benchmarks/README.md.
Then, per variant and ``--generator-configs`` configuration, the generator's forward+backward alone (the bulk
of a step): its FLOPs (PyTorch's FlopCounterMode, on the eager network), seconds, and the achieved rate as a
fraction of a reference: on CUDA the card's dense bf16 peak (``--peak-tflops`` or a known card), on CPU this
machine's measured fp32 matrix-multiply rate.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from mrisr import config as mrisr_config
from mrisr.plan.stages import Train
from mrisr.plan.study import Study
from mrisr.settings import TrainSettings
from mrisr.train.gan import GanTrainer
from record import append_entry

ROOT = Path(__file__).resolve().parents[1]


SIZE_KEYS = {"channels", "growth", "blocks", "units", "depth"}
DENSE_BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # vendor figures, without sparsity
#: name -> (what it is, the settings it changes in the workflow's step)
CONFIGS = {
    "plain": ("fp32, contiguous layout, D run again for its update, PyTorch's default flags: the baseline",
              dict(precision="fp32", memory_format="contiguous", shared_discriminator_pass=False,
                   tf32="convolutions", cudnn_benchmark=False, compile="none")),
    "ours": ("the workflow's step as configured", {}),
    "contiguous": ("ours in PyTorch's default layout", dict(memory_format="contiguous")),
    "channels_last": ("ours in the channels-last-3d layout", dict(memory_format="channels_last")),
    "fp32": ("ours in fp32 (TF32 convolutions: PyTorch's default)", dict(precision="fp32", tf32="convolutions")),
    "fp32_ieee": ("ours in IEEE fp32 (no TF32)", dict(precision="fp32", tf32="none")),
    "fp32_tf32": ("ours in fp32, TF32 matrix multiplies too", dict(precision="fp32", tf32="all")),
    "autotuned": ("ours + cuDNN's autotuner", dict(cudnn_benchmark=True)),
    "compiled": ("ours + autotuner + torch.compile (default mode)", dict(cudnn_benchmark=True, compile="default")),
    "graphs": ("ours + autotuner + torch.compile reduce-overhead (CUDA graphs)",
               dict(cudnn_benchmark=True, compile="reduce-overhead")),
}


def paper_sized(variant: dict) -> dict:
    return {key: ({k: v for k, v in value.items() if k not in SIZE_KEYS}
                  if key in ("generator", "discriminator", "feature_extractor") else value)
            for key, value in variant.items()}


def workflow_settings(cfg: dict, **values) -> TrainSettings:
    """The settings the train rule passes (the plan's), then ``values``."""
    first_gan = next(n for n, v in cfg["variants"].items() if v["kind"] == "gan")  # the settings are every GAN's
    wildcards = SimpleNamespace(variant=first_gan, dataset=cfg["dataset"])
    return TrainSettings(**(Train(Study(cfg, paths={})).settings(wildcards) | values))


def configured(variant: dict, ours: TrainSettings, config: str) -> GanTrainer:
    """A trainer of ``variant`` with the workflow's settings as ``config`` changes them."""
    return GanTrainer(variant, dataclasses.replace(ours, **CONFIGS[config][1]))


def failure(exc: Exception) -> str:
    return f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"


def timed_step(trainer: GanTrainer, volumes: list[np.ndarray]) -> float:
    with trainer.backends():
        _sync(trainer.device)
        started = time.perf_counter()
        trainer.train_step(volumes)
        _sync(trainer.device)
    return time.perf_counter() - started


def measure(trainers: dict, volumes: list[np.ndarray], steps: int) -> dict[str, dict]:
    """Per trainer: the first step's seconds and the mean seconds per step after it, the trainers' steps
    interleaved so that machine noise hits all alike; or why it failed."""
    results: dict[str, dict] = {}
    for name, trainer in trainers.items():
        try:
            results[name] = {"first": timed_step(trainer, volumes), "spent": 0.0}
        except Exception as exc:  # a configuration the card or PyTorch cannot run is a result too
            results[name] = {"failed": failure(exc)}
    running = [name for name in trainers if "failed" not in results[name]]
    for _ in range(steps):
        for name in list(running):
            try:
                results[name]["spent"] += timed_step(trainers[name], volumes)
            except Exception as exc:
                results[name] = {"failed": failure(exc)}
                running.remove(name)
    for name in running:
        results[name]["step"] = results[name].pop("spent") / steps
    return results


def generator_flops(trainer: GanTrainer) -> float:
    """FLOPs of one generator forward+backward on a training-sized LR batch (eager: the counter sees every op)."""
    with FlopCounterMode(display=False) as counter:
        _generator_pass(trainer, _lr_batch(trainer))
    trainer.generator.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def generator_seconds(trainer: GanTrainer, steps: int) -> float:
    """Median seconds of one generator forward+backward, after one untimed pass."""
    lr, seconds = _lr_batch(trainer), []
    with trainer.backends():
        for _ in range(steps + 1):
            _sync(trainer.device)
            started = time.perf_counter()
            _generator_pass(trainer, lr)
            _sync(trainer.device)
            seconds.append(time.perf_counter() - started)
    trainer.generator.zero_grad(set_to_none=True)
    return float(np.median(seconds[1:]))


def generator_profile(trainer: GanTrainer, passes: int = 3, rows: int = 15) -> str:
    """Where the generator's forward+backward spends its time: PyTorch's profiler over ``passes`` passes, after one
    untimed, its top ``rows`` operators by device time (CPU time on the CPU)."""
    from torch.profiler import ProfilerActivity, profile

    lr, cuda = _lr_batch(trainer), trainer.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with trainer.backends():
        _generator_pass(trainer, lr)
        with profile(activities=activities) as prof:
            for _ in range(passes):
                _generator_pass(trainer, lr)
            _sync(trainer.device)
    trainer.generator.zero_grad(set_to_none=True)
    return prof.key_averages().table(sort_by="cuda_time_total" if cuda else "cpu_time_total", row_limit=rows)


def _lr_batch(trainer: GanTrainer) -> torch.Tensor:
    s = trainer.settings
    return torch.randn(s.batch_size, 1, *(s.patch_size // s.scale,) * 3, device=trainer.device).to(
        memory_format=trainer.memory_format)


def _generator_pass(trainer: GanTrainer, lr: torch.Tensor) -> None:
    with trainer.autocast():
        sr = trainer.generator(lr)
    sr.float().square().mean().backward()


def reference_tflops(peak: float | None) -> tuple[float, str]:
    """The rate the generator's is compared with, and what it is."""
    if peak:
        return peak, "given peak"
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        for card, tflops in DENSE_BF16_PEAK_TFLOPS.items():
            if card in name:
                return tflops, f"{card} dense bf16 peak"
        raise SystemExit(f"no known bf16 peak for {name}: pass --peak-tflops")
    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    a @ b
    started = time.perf_counter()
    for _ in range(3):
        a @ b
    return 3 * 2 * 4096**3 / (time.perf_counter() - started) / 1e12, "measured fp32 matmul 4096²"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def load_config(path: str, paper_sizes: bool) -> dict:
    raw = yaml.safe_load(Path(path).read_text())
    if paper_sizes:
        raw["variants"] = {name: paper_sized(v) for name, v in raw["variants"].items()}
    return mrisr_config.validate(raw, ROOT / "workflow" / "schemas" / "config.schema.yaml")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default=str(ROOT / "config.yaml"))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--patch-size", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--paper-sizes", action="store_true")
    p.add_argument("--configs", nargs="+", choices=CONFIGS, default=["plain", "ours", "fp32"])
    p.add_argument("--generator-configs", nargs="*", choices=CONFIGS, default=["ours"])
    p.add_argument("--profile", choices=CONFIGS, help="also profile the generator's pass in this configuration")
    p.add_argument("--variants", nargs="+", help="default: every GAN variant of the config")
    p.add_argument("--peak-tflops", type=float, help="the device's dense peak, for the generator's fraction")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    cfg = load_config(a.config, a.paper_sizes)
    ours = workflow_settings(cfg, steps=10**6, checkpoint_every=10**6,
                             batch_size=a.batch_size or cfg["train"]["batch_size"],
                             patch_size=a.patch_size or cfg["train"]["patch_size"])
    configs = list(dict.fromkeys(["plain", *a.configs]))
    volumes = [np.random.default_rng(0).normal(size=(ours.patch_size + 16,) * 3).astype(np.float32)]
    lines = ["| variant | configuration | first step s | s/step | speed-up over plain | HR voxels/s |",
             "|---|---|---|---|---|---|"]
    names = a.variants or [n for n, v in cfg["variants"].items() if v["kind"] == "gan"]
    passes, counts, profiles = [], {}, []
    for name in names:
        variant = cfg["variants"][name]
        trainers = {c: configured(variant, ours, c) for c in configs}
        counts[name] = trainers["plain"].parameter_counts()
        results = measure(trainers, volumes, a.steps)
        for config, r in results.items():
            if "failed" in r:
                lines.append(f"| {name} | {config} | | {r['failed']} | | |")
            else:
                voxels = ours.batch_size * ours.patch_size**3 / r["step"]
                ratio = results["plain"].get("step", float("nan")) / r["step"]
                lines.append(f"| {name} | {config} | {r['first']:.2f} | {r['step']:.3f} | {ratio:.2f}x | "
                             f"{voxels:,.0f} |")
            print(lines[-1], flush=True)
        flops = generator_flops(trainers["plain"])
        for config in a.generator_configs:
            trainer = trainers.get(config) or configured(variant, ours, config)
            try:
                passes.append((name, config, flops, generator_seconds(trainer, a.steps)))
            except Exception as exc:
                passes.append((name, config, flops, failure(exc)))
        if a.profile:
            trainer = trainers.get(a.profile) or configured(variant, ours, a.profile)
            profiles.append(f"Profile of {name}'s generator forward+backward ({a.profile}, 3 passes):\n\n```\n"
                            f"{generator_profile(trainer).strip()}\n```")
        del trainers
    peak, peak_name = reference_tflops(a.peak_tflops)
    lines += ["", "Configurations: " + "; ".join(f"{c}: {CONFIGS[c][0]}" for c in configs) + ".", "",
              "Parameters (G / D / FE): " + "; ".join(f"{n} {' / '.join(f'{k:,}' for k in c.values())}"
                                                      for n, c in counts.items()) + ".", ""]
    if passes:
        lines += [f"Generator forward+backward alone (median of {a.steps}, after one untimed pass); reference: "
                  f"{peak_name}, {peak:.3g} TFLOP/s.", "",
                  "| variant | configuration | TFLOP per pass | s | TFLOP/s | fraction of reference |",
                  "|---|---|---|---|---|---|"]
        for name, config, flops, seconds in passes:
            if isinstance(seconds, str):
                lines.append(f"| {name} | {config} | {flops / 1e12:.3g} | {seconds} | | |")
            else:
                rate = flops / seconds / 1e12
                lines.append(f"| {name} | {config} | {flops / 1e12:.3g} | {seconds:.3g} | {rate:.3g} | "
                             f"{rate / peak:.1%} |")
    text = "\n\n".join(["\n".join(lines), *profiles])
    print(text, flush=True)
    append_entry(f"{a.threads} threads",
                 f"{'Authors' if a.paper_sizes else 'Config'} network sizes, patch {ours.patch_size}³, "
                 f"batch {ours.batch_size}, mean of {a.steps} steps each after one untimed first step; ours: "
                 f"precision {ours.precision}, tf32 {ours.tf32}, cudnn_benchmark {ours.cudnn_benchmark}, "
                 f"compile {ours.compile}.", text)


if __name__ == "__main__":
    main()
