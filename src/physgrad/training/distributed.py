"""torch.distributed plumbing: one process per device, launched by ``torchrun``.

Data parallelism for physical gradients needs nothing special: every rank computes the
physical gradients of its own shard (the inverse solves are per sample), the proxy loss is an
ordinary loss, and DistributedDataParallel averages parameter gradients across ranks.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group that ``torchrun`` describes in the environment.

    Does nothing (returns False) when ``WORLD_SIZE`` is unset or 1, or when a group already
    exists. The backend defaults to NCCL when CUDA is available, otherwise gloo.
    """
    if dist.is_initialized():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return True


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def default_device() -> torch.device:
    """This rank's GPU under torchrun with CUDA (``LOCAL_RANK``), else the CPU."""
    if torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device("cpu")


def mean_across_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average a dict of scalars over all ranks (identity for a single process)."""
    _, world = rank_and_world()
    if world == 1:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return {k: float(v) / world for k, v in zip(keys, t.tolist(), strict=True)}


def default_threads() -> int:
    """Torch threads for one training process when the user did not choose.

    Small networks gain little from intra-op threads and lose a lot when cores are
    oversubscribed (on a loaded 2-core machine two threads made a heat step 30× slower than
    one). So: 1 thread on machines with at most 4 usable cores or when the load average already
    fills the machine; otherwise the usable cores shared by the processes of this node
    (``LOCAL_WORLD_SIZE`` under ``torchrun``).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:  # not available on every platform
        busy = 0.0
    if cores <= 4 or busy >= cores - 1:
        return 1
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def leave() -> None:
    """Wait for every rank, then leave the process group (no-op without one).

    Rank 0 finishes later than the others (held-out evaluation, checkpoint, summary); a rank
    that exits while the group is alive can abort in gloo's background threads at interpreter
    exit, so every rank leaves together and explicitly.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
