"""Data parallelism across processes launched by ``torchrun``; a no-op in a single process.

``torchrun --nproc_per_node N script.py`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``
and ``MASTER_PORT``.  :meth:`DistributedContext.from_environment` joins that process group (gloo on CPU,
NCCL on CUDA) and otherwise returns a single-process context whose operations do nothing.

Each process computes the loss on an equal share of every minibatch; averaging the gradients then gives
exactly the full-batch gradient, because every loss term is a mean over samples (or, for the parameter
penalties, the same on every process).  Gradients are averaged explicitly after ``backward`` rather than
through ``DistributedDataParallel``'s hooks: the solver calls the model many times per backward pass,
which DDP's one-forward-per-backward bookkeeping does not expect.  Batch statistics (batch norm) are
per process, as with plain DDP.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistributedContext"]

_REQUIRED = ("RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """Rank and size of the process group this process trains in.

    Examples
    --------
    >>> context = DistributedContext.from_environment()   # WORLD_SIZE unset: one process
    >>> context.world_size, context.rank, context.is_main
    (1, 0, True)
    """

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: torch.device | str | None = None) -> DistributedContext:
        """Join the ``torchrun`` process group described by the environment, if any.

        Parameters
        ----------
        device : torch.device, optional
            Where the model lives: CUDA selects the NCCL backend, anything else gloo.
        """
        raw = os.environ.get("WORLD_SIZE")
        if raw is None:
            return cls()
        try:
            world_size = int(raw)
        except ValueError:
            raise ValueError(f"environment variable WORLD_SIZE must be an integer, got {raw!r}") from None
        if world_size < 1:
            raise ValueError(f"environment variable WORLD_SIZE must be >= 1, got {world_size}")
        if world_size == 1:
            return cls()
        missing = [name for name in _REQUIRED if name not in os.environ]
        if missing:
            raise RuntimeError(
                f"WORLD_SIZE={world_size} but the environment variables {missing} are not set; launch with "
                f"torchrun (or set RANK, MASTER_ADDR and MASTER_PORT)"
            )
        if not dist.is_initialized():
            backend = "nccl" if torch.device(device or "cpu").type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, init_method="env://")
            atexit.register(_destroy)
        if dist.get_world_size() != world_size:
            raise RuntimeError(f"the initialised process group has {dist.get_world_size()} processes but "
                               f"WORLD_SIZE is {world_size}")
        return cls(world_size, dist.get_rank(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))

    # -- collectives (no-ops in one process) -------------------------------------------------------

    def share(self, size: int) -> slice:
        """This process's equal share of ``size`` items; ``size`` must be divisible by the world size."""
        if size % self.world_size:
            raise ValueError(f"cannot split {size} samples equally over {self.world_size} processes")
        part = size // self.world_size
        return slice(self.rank * part, (self.rank + 1) * part)

    def average_gradients(self, parameters) -> None:
        """Replace every gradient by its mean over the processes (missing gradients count as zero)."""
        if not self.enabled:
            return
        parameters = [parameter for parameter in parameters if parameter.requires_grad]
        for parameter in parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
        # One flat all-reduce per dtype instead of one per tensor.
        by_dtype: dict[torch.dtype, list] = {}
        for parameter in parameters:
            by_dtype.setdefault(parameter.grad.dtype, []).append(parameter)
        for group in by_dtype.values():
            flat = torch.cat([parameter.grad.reshape(-1) for parameter in group])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            flat /= self.world_size
            offset = 0
            for parameter in group:
                size = parameter.grad.numel()
                parameter.grad.copy_(flat[offset: offset + size].view_as(parameter.grad))
                offset += size

    def average(self, values: list[float], device=None) -> list[float]:
        """Means over the processes of a list of numbers."""
        if not self.enabled:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return (tensor / self.world_size).tolist()

    def any(self, flag: bool, device=None) -> bool:
        """True if ``flag`` is true in any process."""
        if not self.enabled:
            return bool(flag)
        tensor = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item() > 0)

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Copy the main process's parameters and buffers to every process."""
        if not self.enabled:
            return
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
