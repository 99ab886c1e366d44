"""Where and how the networks run: one choice for training, segmentation and inference alike.

The GPU when there is one, else the CPU, with the same code; bf16 autocast on CUDA by default (``auto``), fp32 on
the CPU, where autocast to bf16 is slower than fp32 on most cores.
"""

from __future__ import annotations

import enum

import torch


class Precision(str, enum.Enum):
    AUTO = "auto"  # bf16 autocast on CUDA, fp32 elsewhere
    FP32 = "fp32"
    BF16 = "bf16"


class MemoryFormat(str, enum.Enum):
    CHANNELS_LAST = "channels_last"  # channels-last-3d: cuDNN's and oneDNN's fast layout (14% per CPU step)
    CONTIGUOUS = "contiguous"  # PyTorch's default, the authors'

    @property
    def torch(self) -> torch.memory_format:
        return torch.channels_last_3d if self is MemoryFormat.CHANNELS_LAST else torch.contiguous_format


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
