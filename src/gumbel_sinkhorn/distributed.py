"""Several processes training one model: torchrun's environment, the process group, batch shards.

Launched by ``torchrun --nproc-per-node K ...``, every process finds ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` in its environment; :func:`cluster` turns them into a process group (``gloo`` on the
CPU, ``nccl`` on GPUs) and a device. Every rank draws the same global batch and trains on its own
slice of it (:func:`shard`), so a K-process run sees exactly the data of a 1-process run.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import InvalidValueError


@dataclass(frozen=True)
class Cluster:
    """Where this process stands: its rank among ``world_size`` processes, and its device.

    >>> Cluster(rank=0, world_size=1, device=torch.device("cpu")).is_main
    True
    """

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs, figures and progress bars."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidValueError(
            f"environment variable {name} must be an integer, got {value!r}"
        ) from None


def launched_world_size() -> int:
    """``WORLD_SIZE`` as set by torchrun (1 when not launched by it).

    >>> launched_world_size() >= 1
    True
    """
    return dist.get_world_size() if dist.is_initialized() else _env_int("WORLD_SIZE", 1)


def is_main_process() -> bool:
    """True on rank 0 (and outside torchrun): commands draw figures and print only there.

    >>> is_main_process()
    True
    """
    return (dist.get_rank() if dist.is_initialized() else _env_int("RANK", 0)) == 0


@contextlib.contextmanager
def cluster(device: str | torch.device | None = None):
    """Join the process group that torchrun set up (if any) for the duration of a ``with`` block.

    >>> with cluster("cpu") as here:
    ...     here.rank, here.world_size
    (0, 1)

    Outside torchrun (``WORLD_SIZE`` unset or 1) there is no group. Under torchrun the device
    defaults to ``cuda:LOCAL_RANK`` when CUDA is available (``nccl``), else the CPU (``gloo``); a
    group created here is destroyed on exit, one the caller created is left alone.
    """
    world_size = launched_world_size()
    local_rank = _env_int("LOCAL_RANK", 0)
    device = _device(device)
    if device.type == "cuda" and device.index is None and world_size > 1:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size == 1:
        yield Cluster(rank=0, world_size=1, device=device)
        return
    created = not dist.is_initialized()
    if created:
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend, **kwargs)
    try:
        yield Cluster(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)
    finally:
        if created:
            dist.destroy_process_group()


def _device(device) -> torch.device:
    """``device`` as a torch.device (default: CUDA if available), checked to exist here."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidValueError(
            f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}"
        ) from None
    if device.type == "meta":
        raise InvalidValueError("training needs real values: the meta device only has shapes")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidValueError(f"device {device} was asked for, but CUDA is not available here")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InvalidValueError(
            f"device {device} does not exist: {torch.cuda.device_count()} GPU(s)"
        )
    return device


def all_sum(values: list[float], here: Cluster) -> list[float]:
    """The sums of ``values`` over all ranks (the values themselves in a single process)."""
    if not here.distributed:
        return values
    total = torch.tensor(values, dtype=torch.float64, device=here.device)
    dist.all_reduce(total)
    return total.tolist()


def shard(batch, size: int, rank: int, world_size: int):
    """Rank ``rank``'s slice of a global batch of ``size`` items: every tensor split on its axis 0.

    >>> x, y = shard((torch.arange(6), torch.zeros(6, 2)), 6, rank=1, world_size=2)
    >>> x.tolist(), tuple(y.shape)
    ([3, 4, 5], (3, 2))

    Tensors (in nested tuples, lists and dicts) must all have ``size`` items on axis 0; other values
    are passed through. Slices differ by at most one item when ``size`` is not a multiple of
    ``world_size``. A task whose batches look different defines ``shard(batch, rank, world_size)``.
    """
    if size < world_size:
        raise InvalidValueError(
            f"a batch of {size} items cannot be shared by {world_size} processes; "
            f"use a batch size of at least {world_size} (ideally a multiple of it)"
        )

    def piece(value):
        if isinstance(value, torch.Tensor):
            if value.dim() == 0 or value.shape[0] != size:
                raise InvalidValueError(
                    f"cannot split a batch of {size} items: it holds a tensor of shape "
                    f"{tuple(value.shape)}; give the task a shard(batch, rank, world_size) method"
                )
            return value.tensor_split(world_size)[rank]
        if isinstance(value, dict):
            return {k: piece(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            parts = [piece(v) for v in value]
            return type(value)(*parts) if hasattr(value, "_fields") else type(value)(parts)
        return value

    return piece(batch)
