"""Blocks of a batch on threads, for CPU operators whose batched calls do not use every core.

The Sinkhorn solver's work is a long sequence of small batched operations (matrix-vector
products, reciprocals). PyTorch runs each of them on its intra-op threads, but a batched
matrix-vector product does not divide well among them: at (64, 100) a ``bmm`` of a vector by
the kernel took longer on two threads than on one (MKL threads each small product). Splitting
the batch into one block per thread and running the whole solver on each block in its own
thread, with one intra-op thread each, keeps every core busy: PyTorch releases the GIL inside
its operators, and the items of a batch are independent, so each item's result is computed by
the same operations as without blocks.

The workers are created once per process (again after a fork) and set to one intra-op thread
each; the calling thread waits. CUDA tensors never come here: one block, run inline.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

A = TypeVar("A")
T = TypeVar("T")

# Below this many matrix entries per block (batch x rows x columns), the hand-off to a thread
# and the GIL cost more than a second core saves.
MIN_BLOCK_ENTRIES = 2**14


def split(batch: int, entries_per_item: int, device: torch.device) -> list[slice]:
    """Consecutive blocks of ``range(batch)``, one per intra-op thread (a single block when
    threads would not pay: CUDA, one thread, or too little work)."""
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    count = min(threads, batch, batch * entries_per_item // MIN_BLOCK_ENTRIES)
    if count <= 1:
        return [slice(0, batch)]
    bounds = [batch * i // count for i in range(count + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


def run(fn: Callable[[A], T], args: Sequence[A]) -> list[T]:
    """``[fn(arg) for arg in args]``, each call on its own worker thread when there are several.

    The workers run under the caller's grad and inference modes; the first exception raised
    by any call is raised here once every call has finished.
    """
    if len(args) == 1:
        return [fn(args[0])]
    workers = _pool(len(args))
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()
    done = [threading.Event() for _ in args]
    results: list = [None] * len(args)

    def task(i: int) -> None:
        try:
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                results[i] = (True, fn(args[i]))
        except BaseException as err:  # handed to the caller below
            results[i] = (False, err)
        finally:
            done[i].set()

    for i, worker in enumerate(workers):
        worker.put(lambda i=i: task(i))
    for event in done:
        event.wait()
    for ok, value in results:
        if not ok:
            raise value
    return [value for _, value in results]


class _Pool:
    def __init__(self):
        self.pid, self.queues = os.getpid(), []


_state = _Pool()
_lock = threading.Lock()


def _pool(size: int) -> list[queue.SimpleQueue]:
    """At least ``size`` worker queues, each served by its own one-intra-op-thread thread."""
    with _lock:
        if _state.pid != os.getpid():  # forked: the parent's threads do not exist here
            _state.pid, _state.queues = os.getpid(), []
        missing = size - len(_state.queues)
        if missing > 0:
            caller_threads = torch.get_num_threads()
            ready = [threading.Event() for _ in range(missing)]
            for event in ready:
                tasks: queue.SimpleQueue = queue.SimpleQueue()
                threading.Thread(
                    target=_serve, args=(tasks, event), name="gumbel-sinkhorn-block", daemon=True
                ).start()
                _state.queues.append(tasks)
            for event in ready:
                event.wait()
            # torch.set_num_threads in a worker also sets the default that threads created later
            # start from; give it back (the caller's own setting is unchanged by this)
            torch.set_num_threads(caller_threads)
        return _state.queues[:size]


def _serve(tasks: queue.SimpleQueue, ready: threading.Event) -> None:
    torch.get_num_threads()  # PyTorch's per-thread set-up first, or it would undo the next line
    torch.set_num_threads(1)
    ready.set()
    while True:
        tasks.get()()
