"""Data parallelism across processes started by ``torchrun`` (NCCL on GPUs, gloo on CPUs).

Every process draws the same global batch (the per-step generator makes that free) and trains on its slice;
gradients are averaged explicitly after each backward rather than through ``DistributedDataParallel``
hooks, because a GAN step calls its networks several times per backward, switches D's gradients off for
the G step and differentiates twice for the gradient penalty, none of which DDP's reducer supports.
Batch means inside the relativistic loss are taken over the global batch, so N processes compute the
same update as one process on the whole batch (batch-norm statistics excepted: they stay per process).
"""

from __future__ import annotations

import os
from typing import Iterable

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn


def init_from_env() -> None:
    """Join the process group that torchrun describes in the environment (no-op for one process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")


def rank_and_size() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def global_batch_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over the batch axis of the whole global batch, differentiable through the gather."""
    if rank_and_size()[1] > 1:
        x = torch.cat(dist_fn.all_gather(x), dim=0)
    return x.mean(dim=0, keepdim=True)


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    size = rank_and_size()[1]
    if size == 1:
        return
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= size


def broadcast_parameters(modules: Iterable[torch.nn.Module]) -> None:
    """Start every process from rank 0's weights and buffers."""
    if rank_and_size()[1] == 1:
        return
    for module in modules:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def mean_over_processes(values: dict[str, float]) -> dict[str, float]:
    """Average logged scalars over processes so that every process (and the log) sees the same numbers."""
    if rank_and_size()[1] == 1:
        return values
    keys = list(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(tensor)
    return dict(zip(keys, (tensor / rank_and_size()[1]).tolist()))


def any_process(flag: bool) -> bool:
    if rank_and_size()[1] == 1:
        return flag
    tensor = torch.tensor([int(flag)])
    dist.all_reduce(tensor)
    return bool(tensor.item())
