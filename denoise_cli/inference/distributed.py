"""`denoise` under torchrun: which share of the batch this process takes, its GPU, and one summary for all ranks.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK in each process; outside it (or with one process) nothing here does
anything. The ranks meet once, after their shares are done, through torch.distributed (gloo, which carries Python
objects on any device) to hand their results to rank 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Launch:
    """Where this process stands in a torchrun launch."""

    rank: int
    world: int
    local_rank: int

    @property
    def shard(self) -> tuple[int, int]:
        """This rank's share of the batch as (K, N), K counted from 1 (batch.shard)."""
        return self.rank + 1, self.world


def torchrun_launch() -> Launch | None:
    """The launch torchrun describes in the environment, or None when this is a single process."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return None
    return Launch(rank, world, local) if world > 1 else None


def bind_local_gpu(launch: Launch) -> None:
    """Make "cuda" mean this rank's own GPU (LOCAL_RANK), so that the ranks of one machine share its GPUs."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(launch.local_rank % torch.cuda.device_count())


def gather_to_rank0(launch: Launch, value: object) -> list[object] | None:
    """Every rank's ``value`` in rank order at rank 0 (None on the others); the process group lives for this call."""
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=launch.rank, world_size=launch.world)
    try:
        gathered: list[object] | None = [None] * launch.world if launch.rank == 0 else None
        dist.gather_object(value, gathered, dst=0)
        return gathered
    finally:
        dist.destroy_process_group()
