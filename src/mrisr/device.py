"""Where and how the networks run: one choice for training, segmentation and inference alike.

The GPU when there is one, else the CPU, with the same code; bf16 autocast on CUDA by default (``auto``), fp32 on
the CPU, where autocast to bf16 is slower than fp32 on most cores. :class:`Acceleration` holds the switches that
change how fast the same networks run (cuDNN's autotuner, TF32, ``torch.compile``), not what they compute.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from mrisr import json_files
from mrisr.errors import MrisrError

Compiled = TypeVar("Compiled", torch.nn.Module, Callable)
log = logging.getLogger(__name__)


class Precision(str, enum.Enum):
    AUTO = "auto"  # bf16 autocast on CUDA, fp32 elsewhere
    FP32 = "fp32"
    BF16 = "bf16"


class MemoryFormat(str, enum.Enum):
    AUTO = "auto"  # channels-last on CUDA; on a CPU the faster of the two there (chosen_layout)
    CHANNELS_LAST = "channels_last"  # channels-last-3d: cuDNN's and oneDNN's layout
    CONTIGUOUS = "contiguous"  # PyTorch's default, the authors'

    @property
    def torch(self) -> torch.memory_format:
        return torch.channels_last_3d if self is MemoryFormat.CHANNELS_LAST else torch.contiguous_format


#: the layout probe: the generator's forward and backward on one LR patch of at most this edge, timed this many times
PROBE_EDGE, PROBE_REPEATS = 16, 2


def chosen_layout(memory_format: str | MemoryFormat, device: torch.device, network: torch.nn.Module,
                  described: str, patch: tuple[int, ...]) -> MemoryFormat:
    """The layout training runs in. ``auto``: channels-last on CUDA (cuDNN's fast layout); on a CPU whichever of
    the two runs ``network`` (a copy: BatchNorm statistics stay) forward and backward on one LR ``patch`` (at most
    :data:`PROBE_EDGE` voxels along each axis) faster here: oneDNN's channels-last kernels are faster on some x86
    CPUs and slower on others (benchmarks/README.md). Probed once per CPU, thread count, network (``described``: its
    config) and PyTorch version and kept in the user's cache, so that every run on this machine takes the same
    layout and rounds the same."""
    chosen = MemoryFormat(memory_format)
    if chosen is not MemoryFormat.AUTO:
        return chosen
    if device.type == "cuda":
        return MemoryFormat.CHANNELS_LAST
    shape = tuple(min(n, PROBE_EDGE) for n in patch)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mrisr" / "memory_format.json"
    key = f"{_cpu_name()} | torch {torch.__version__} | {torch.get_num_threads()} threads | {shape} | {described}"
    try:
        known = json_files.read(cache)
    except MrisrError:  # absent, unreadable or damaged: probed again
        known = {}
    if not isinstance(known, dict):
        known = {}
    if known.get(key) in (MemoryFormat.CONTIGUOUS.value, MemoryFormat.CHANNELS_LAST.value):
        return MemoryFormat(known[key])
    seconds = probe_layouts(copy.deepcopy(network), shape)
    found = min(seconds, key=lambda layout: (seconds[layout], layout is not MemoryFormat.CONTIGUOUS))
    log.info("training layout: %s (probe: %s)", found.value,
             ", ".join(f"{layout.value} {s:.3g} s" for layout, s in seconds.items()))
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cache.parent, delete=False, suffix=".part") as tmp:
            json.dump({**known, key: found.value}, tmp, indent=1)
        os.replace(tmp.name, cache)
    except OSError as exc:  # a read-only home: the probe runs again next time
        log.warning("could not keep the layout probe's result in %s (%s)", cache, exc)
    return found


def probe_layouts(network: torch.nn.Module, shape: tuple[int, ...]) -> dict[MemoryFormat, float]:
    """Median seconds of ``network``'s forward and backward on one random input of ``shape`` in each layout, the
    layouts alternating after one untimed round."""
    x = torch.randn(1, 1, *shape, generator=torch.Generator().manual_seed(0))
    layouts = (MemoryFormat.CONTIGUOUS, MemoryFormat.CHANNELS_LAST)
    seconds: dict[MemoryFormat, list[float]] = {layout: [] for layout in layouts}
    for repeat in range(PROBE_REPEATS + 1):
        for layout in layouts:
            network.to(memory_format=layout.torch)
            data = x.to(memory_format=layout.torch)
            started = time.perf_counter()
            network(data).float().square().mean().backward()
            if repeat:
                seconds[layout].append(time.perf_counter() - started)
            network.zero_grad(set_to_none=True)
    return {layout: float(np.median(times)) for layout, times in seconds.items()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def uses_bf16(precision: str | Precision, device: torch.device) -> bool:
    precision = Precision(precision)
    return precision is Precision.BF16 or (precision is Precision.AUTO and device.type == "cuda")


def autocast(device: torch.device, bf16: bool) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def set_threads(threads: int) -> None:
    """CPU threads of this process: the job's share of the node (Snakemake's ``threads``), not every core."""
    torch.set_num_threads(threads)


class Tf32(str, enum.Enum):
    """Which CUDA fp32 operations run in TensorFloat-32 (products of 10-bit mantissas, fp32 sums): several times
    faster on Ampere and later cards, not bit-identical to IEEE fp32. Under bf16 autocast it reaches only what
    stays in fp32. The CPU has no TF32: there every value computes the same."""

    CONVOLUTIONS = "convolutions"  # PyTorch's default: cuDNN convolutions in TF32, matrix multiplies in IEEE fp32
    ALL = "all"  # matrix multiplies (the discriminators' linear heads, attention) too
    NONE = "none"  # IEEE fp32 throughout

    @property
    def allowed(self) -> tuple[bool, bool]:
        """Whether cuDNN's convolutions and CUDA's matrix multiplies may use TF32."""
        return self is not Tf32.NONE, self is Tf32.ALL


class CompileMode(str, enum.Enum):
    """``torch.compile``'s mode for the networks (``none``: eager). Compiling takes tens of seconds per network and
    input shape (42 s for the tiny test generator's forward and backward on a 2-core CPU): it pays off over long
    runs of one shape, as training's fixed patches are."""

    NONE = "none"
    DEFAULT = "default"  # Inductor's fused kernels
    REDUCE_OVERHEAD = "reduce-overhead"  # + CUDA graphs: one launch per graph instead of one per kernel
    MAX_AUTOTUNE = "max-autotune"  # + Triton autotuning of matrix multiplies and convolutions, + CUDA graphs
    MAX_AUTOTUNE_NO_CUDAGRAPHS = "max-autotune-no-cudagraphs"


@dataclass(frozen=True, kw_only=True)
class Acceleration:
    """How fast the same networks run; the values come from the config (schema: ``train.cudnn_benchmark``,
    ``train.tf32``, ``train.compile``, ``inference.compile``)."""

    cudnn_benchmark: bool  # cuDNN times its algorithms for each new input shape and keeps the fastest
    tf32: str  # Tf32
    compile: str  # CompileMode

    @contextlib.contextmanager
    def backends(self) -> Iterator[None]:
        """cuDNN's autotuner and TF32 as set, for the block only (they are process-wide flags). Set through
        ``allow_tf32``: PyTorch's newer ``fp32_precision`` flags make a later read of these (Inductor's convolution
        templates read ``cudnn.allow_tf32``) raise, while ``fp32_precision`` reads follow ``allow_tf32``."""
        cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
        before = cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32
        try:
            cudnn.benchmark = self.cudnn_benchmark
            cudnn.allow_tf32, matmul.allow_tf32 = Tf32(self.tf32).allowed
            yield
        finally:
            cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = before

    def compiled(self, network: Compiled) -> Compiled:
        """``network`` through ``torch.compile`` in this mode: a module in place (its ``state_dict`` keeps its
        names, so model files and checkpoints are the eager ones), a function (a generator's stage) wrapped."""
        mode = CompileMode(self.compile)
        if mode is CompileMode.NONE:
            return network
        if isinstance(network, torch.nn.Module):
            network.compile(mode=mode.value)
            return network
        return torch.compile(network, mode=mode.value)


@contextlib.contextmanager
def ieee_fp32() -> Iterator[None]:
    """No TF32 in the block (cuDNN's autotuner as it is): for what must compute as the CPU does, such as training's
    LR patches, which must be the degrade stage's LR (a blur's convolutions in TF32 round to about 1e-3)."""
    keep = Acceleration(cudnn_benchmark=torch.backends.cudnn.benchmark, tf32=Tf32.NONE.value,
                        compile=CompileMode.NONE.value)
    with keep.backends():
        yield
