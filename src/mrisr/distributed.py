"""Data parallelism across processes on one node (NCCL on GPUs, gloo on CPUs), started by :func:`launch`.

Every process draws the same global batch (the per-step generator makes that free) and trains on its slice;
gradients are averaged explicitly after each backward rather than through ``DistributedDataParallel``
hooks, because a GAN step calls its networks several times per backward, switches D's gradients off for
the G step and differentiates twice for the gradient penalty, none of which DDP's reducer supports.
Batch means inside the relativistic loss are taken over the global batch, so N processes compute the
same update as one process on the whole batch (batch-norm statistics excepted: they stay per process).
"""

from __future__ import annotations

import functools
import inspect
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
import torch.multiprocessing as mp

from mrisr.errors import MrisrError

#: The network interface gloo and NCCL connect over: the processes share one node, so loopback (a user's own
#: GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME wins).
LOOPBACK = "lo"


def launch(processes: int, function: Callable, /, **kwargs):
    """``function(**kwargs)`` in ``processes`` data-parallel processes on this node (process ``i`` on GPU ``i``
    where there are GPUs); returns process 0's result.

    The processes meet through a file store in a private temporary folder and talk over loopback: unlike
    ``torchrun --standalone``, whose rendezvous store listens on every interface, nothing is reachable from the
    network. An :class:`~mrisr.errors.MrisrError` in a process is printed by it and stops the others.
    """
    if processes == 1:
        return function(**kwargs)
    for variable in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):
        os.environ.setdefault(variable, LOOPBACK)
    with tempfile.TemporaryDirectory(prefix="mrisr-processes-") as folder:
        try:
            mp.spawn(_process, args=(processes, folder, function, kwargs), nprocs=processes)
        except mp.ProcessExitedException as exc:
            raise MrisrError(f"data-parallel process {exc.error_index} of {processes} stopped (exit code "
                             f"{exc.exit_code}); its error is printed above") from exc
        return pickle.loads((Path(folder) / "result.pickle").read_bytes())


def data_parallel(stage: Callable) -> Callable:
    """``stage`` (a training stage's function) with a keyword ``processes``: the data-parallel processes on this node
    that run it (:func:`launch`), each calling it with ``processes`` 1."""
    signature = inspect.signature(stage)

    @functools.wraps(stage)
    def run(*args, processes: int, **kwargs):
        if processes == 1:
            return stage(*args, **kwargs)
        return launch(processes, run, processes=1, **signature.bind(*args, **kwargs).arguments)

    processes = inspect.Parameter("processes", inspect.Parameter.KEYWORD_ONLY, annotation="int")
    run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), processes])
    return run


def _process(rank: int, processes: int, folder: str, function: Callable, kwargs: dict) -> None:
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if cuda else "gloo", store=dist.FileStore(os.path.join(folder, "store"), processes),
                            rank=rank, world_size=processes)
    try:
        result = function(**kwargs)
    except MrisrError as exc:
        print(f"mrisr (process {rank}): error: {exc}", file=sys.stderr)
        sys.exit(2)
    finally:
        dist.destroy_process_group()
    if rank == 0:
        (Path(folder) / "result.pickle").write_bytes(pickle.dumps(result))


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


def from_first_process(value):
    """Process 0's ``value`` in every process: a choice that the others must not make on their own (a timing)."""
    if rank_and_size()[1] == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


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
