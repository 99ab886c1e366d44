"""What a training step's data costs: drawing a batch of HR patches and degrading it, per degradation, on the CPU
and, where there is one, on the GPU (where training degrades it).

Usage: python benchmarks/data_step.py [--config config.yaml] [--patch-size 64] [--batch-size 4] [--repeat 5]
                                     [--threads 1 2] [--volume 260 311 260]
Every entry of the config's ``degradations`` (and ``kspace``, the field's other x4) at its scale, on two random
volumes of ``--volume`` voxels (HCP's T1w). Per device: the median milliseconds of ``--repeat`` batches after one
untimed batch (MONAI's import, kernels' first launch): the HR patches drawn as training draws them (on the CPU),
moved to the device, degraded there. Prints a table and appends it to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from mrisr.degrade import degrade
from mrisr.patches import sample_patches, step_generator
from mrisr.scale import as_scale, label
from record import append_entry
from train_step import failure

ROOT = Path(__file__).resolve().parents[1]


def batch_ms(volumes: list[np.ndarray], degradation: dict, scale, patch: int, batch: int, device: torch.device,
             repeat: int) -> float:
    seconds = []
    for step in range(repeat + 1):
        started = time.perf_counter()
        hr = sample_patches(volumes, patch, batch, step_generator(0, step), align=as_scale(scale)).to(device)
        degrade(hr, degradation, scale)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return 1000 * float(np.median(seconds[1:]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default=str(ROOT / "config.yaml"))
    p.add_argument("--patch-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU threads, one column each")
    p.add_argument("--volume", type=int, nargs=3, default=[260, 311, 260])
    a = p.parse_args()
    cfg = yaml.safe_load(Path(a.config).read_text())
    entries = {**cfg["degradations"], "kspace": {"method": "kspace", "scale": 4}}
    rng = np.random.default_rng(0)
    volumes = [rng.normal(size=a.volume).astype(np.float32) for _ in range(2)]
    devices = [("cpu", t) for t in a.threads] + ([("cuda", 1)] if torch.cuda.is_available() else [])
    columns = [f"CPU {t} thread{'s' * (t > 1)} ms" if kind == "cpu" else "GPU ms" for kind, t in devices]
    lines = [f"| degradation | scale | {' | '.join(columns)} |", "|---|---|" + "---|" * len(columns)]
    for name, entry in entries.items():
        scale = entry.get("scale", cfg.get("scale", 2))
        cells = []
        for kind, threads in devices:
            torch.set_num_threads(threads)
            try:
                ms = batch_ms(volumes, entry, scale, a.patch_size, a.batch_size, torch.device(kind), a.repeat)
            except Exception as exc:  # e.g. MONAI (the blur's filter) missing from a GPU machine's image
                cells.append(failure(exc))
            else:
                cells.append(f"{ms:.1f}")
        lines.append(f"| {name} ({entry['method']}) | {label(scale)} | {' | '.join(cells)} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    append_entry(f"threads {', '.join(map(str, a.threads))}",
                 f"A batch of {a.batch_size} HR patches of {a.patch_size}³ drawn from two random "
                 f"{' x '.join(map(str, a.volume))} volumes and degraded; median of {a.repeat} after one untimed.",
                 text)


if __name__ == "__main__":
    main()
