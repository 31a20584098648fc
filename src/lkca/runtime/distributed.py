"""Processes under torchrun: joining and leaving the process group, and the global batch.

Every rank draws the same global batch and trains on its slice of it, so a run's result does not
depend on the number of processes (docs/multi-gpu.md, docs/design.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from lkca.errors import UserError


@dataclass(frozen=True)
class Dist:
    """This process's place among ``world_size`` processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    owns_group: bool = False  # this run started the process group, so it ends it

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0

    def shard(self, global_batch: int) -> slice:
        """This rank's slice of a global batch of ``global_batch`` samples."""
        local = global_batch // self.world_size
        return slice(self.rank * local, (self.rank + 1) * local)


def world_size() -> int:
    """The number of processes torchrun started (``WORLD_SIZE``; 1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_global_batch(batch_size: int, world: int | None = None) -> None:
    """UserError unless the global batch splits evenly over the processes."""
    world = world_size() if world is None else world
    if batch_size % world:
        raise UserError(f"batch_size {batch_size} is not divisible by the {world} processes "
                        "(WORLD_SIZE); choose a global batch that is a multiple of the world size")


def join_process_group(device: torch.device) -> Dist:
    """Join the torchrun process group when WORLD_SIZE > 1 (NCCL on GPU, gloo on CPU).

    A group the caller already initialised is used as it is (and left to the caller to end).
    """
    if world_size() <= 1:
        return Dist()
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), owns)


def leave_process_group(env: Dist, finished: bool = False) -> None:
    """End the process group if :func:`join_process_group` started it: torch warns (and NCCL can
    hang at exit) when a process ends with a live group.

    ``finished`` (the run ended without an error on this rank): the ranks first meet at a barrier,
    so that none tears down its connections (rank 0 also hosts the rendezvous store) while
    another is still in its last collective. On the gloo backend the barrier is
    ``monitored_barrier`` with a deadline (a rank that never comes is reported, not waited for
    forever); after an error there is no barrier, as the other ranks may never arrive.
    """
    if not (env.owns_group and dist.is_initialized()):
        return
    try:
        if finished and env.world_size > 1:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=timedelta(minutes=5))
            else:
                dist.barrier()
    finally:
        dist.destroy_process_group()


def data_parallel(model: nn.Module, env: Dist, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several processes, else itself."""
    if env.world_size <= 1:
        return model
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)


def all_reduce_sum(tensor: torch.Tensor, env: Dist) -> torch.Tensor:
    """``tensor`` summed over the processes (in place; itself with one process)."""
    if env.world_size > 1:
        dist.all_reduce(tensor)
    return tensor
