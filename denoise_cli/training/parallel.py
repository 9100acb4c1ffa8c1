"""Training under torchrun: DistributedDataParallel over the processes (gloo on CPUs, nccl on CUDA GPUs).

Every process draws the same global batch from the same seed and trains on its own slice, so N processes with
``--batch B`` take the steps one process takes with N·B. Rank 0 alone writes (checkpoints, logs, reports, the model),
and at every step the ranks take rank 0's clock, so the learning rate, the phases and the end of the budget are the
same everywhere. Run folders must be on storage every rank sees (resume and the fit → distill hand-off read them).
Without torchrun (WORLD_SIZE unset or 1) nothing here does anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from ..inference.devices import pick_device
from ..inference.distributed import torchrun_launch


@dataclass(frozen=True)
class Group:
    """The processes training together, seen from one of them."""

    rank: int
    world: int
    device: torch.device  # this rank's device; the collectives' tensors live there (nccl needs CUDA tensors)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def from_rank0(self, *values: float) -> list[float]:
        """Rank 0's values, on every rank."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.broadcast(t, 0)
        return t.tolist()

    def share_modules(self, modules: dict[str, nn.Module]) -> None:
        """Give every rank rank 0's weights (e.g. the best-scoring ones, which rank 0 alone kept)."""
        for m in modules.values():
            for t in m.state_dict().values():
                dist.broadcast(t.data, 0)

    def barrier(self) -> None:
        dist.barrier()


_GROUP: Group | None = None


def start(device: str = "auto") -> torch.device:
    """Join the torchrun launch, if any (once per process), and return this process's device: its own GPU
    (LOCAL_RANK) on CUDA machines, else ``device`` as pick_device reads it."""
    global _GROUP
    launch = torchrun_launch()
    if launch is None:
        return pick_device(device)
    if _GROUP is not None:
        return _GROUP.device
    chosen = pick_device(device)
    if chosen.type == "cuda":
        chosen = torch.device("cuda", launch.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(chosen)
    # rank 0 alone denoises the photos after fit while the others wait: allow it hours, not the default minutes
    dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo", rank=launch.rank, world_size=launch.world,
                            timeout=timedelta(hours=12))
    _GROUP = Group(launch.rank, launch.world, chosen)
    return chosen


def group() -> Group | None:
    """The training group this process belongs to (None when it trains alone)."""
    return _GROUP


def is_main() -> bool:
    """Whether this process writes: rank 0, or the only process."""
    return _GROUP is None or _GROUP.main


def barrier() -> None:
    """Wait until every rank is here (nothing when training alone)."""
    if _GROUP is not None:
        _GROUP.barrier()


def rank() -> int:
    return 0 if _GROUP is None else _GROUP.rank


def world() -> int:
    return 1 if _GROUP is None else _GROUP.world


def wrap(module: nn.Module) -> nn.Module:
    """The module for training forwards: DistributedDataParallel across the group (parameters a phase leaves unused
    are allowed), the module itself when training alone."""
    if _GROUP is None:
        return module
    ids = [_GROUP.device.index] if _GROUP.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)


def my_share(batch: torch.Tensor) -> torch.Tensor:
    """This rank's slice of a global batch (the whole batch when training alone)."""
    if _GROUP is None:
        return batch
    n = batch.shape[0] // _GROUP.world
    return batch[_GROUP.rank * n : (_GROUP.rank + 1) * n]


def finish() -> None:
    """Leave the group (at the end of a command)."""
    global _GROUP
    if _GROUP is not None:
        dist.destroy_process_group()
        _GROUP = None
