"""The process layout of a run: torchrun's environment, the device and the precision.

``WORLD_SIZE > 1`` (set by ``torchrun``) starts a process group (NCCL on CUDA, gloo on CPU);
otherwise the run is one process and nothing here touches ``torch.distributed``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dist:
    """This process's place in the run."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """The process group from torchrun's environment (WORLD_SIZE > 1), or a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return Dist(rank=dist.get_rank(), local_rank=local_rank, world=dist.get_world_size())


def destroy(dist: Dist) -> None:
    """End the process group of a multi-process run (nothing for one process)."""
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.destroy_process_group()


def resolve_device(name: str, local_rank: int = 0) -> Any:
    """``auto``: this rank's GPU when CUDA is present, else the CPU."""
    import torch

    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_precision(precision: str, device_type: str) -> str:
    """``auto``: bf16 on CUDA, fp32 elsewhere."""
    if precision == "auto":
        return "bf16" if device_type == "cuda" else "fp32"
    return precision


def all_reduce_counts(values: list[int], dist: Dist, device: Any) -> list[int]:
    """``values`` summed over ranks (as they are for one process)."""
    if dist.world == 1:
        return values
    import torch
    import torch.distributed as tdist

    counts = torch.tensor(values, device=device)
    tdist.all_reduce(counts)
    return [int(c) for c in counts]


def sum_over_ranks(value: Any) -> float:
    """Each rank's step loss is its tokens' loss sum over the global token count: add them."""
    import torch.distributed as tdist

    value = value.clone()
    tdist.all_reduce(value)
    return float(value)


def time_is_up(t_start: float, minutes: float, dist: Dist, device: Any) -> bool:
    """Whether ``minutes`` have passed; ranks agree (any rank's clock decides for all)."""
    up = time.perf_counter() - t_start > 60 * minutes
    if dist.world == 1:
        return up
    import torch
    import torch.distributed as tdist

    flag = torch.tensor([1 if up else 0], device=device)
    tdist.all_reduce(flag, op=tdist.ReduceOp.MAX)
    return bool(flag.item())
