"""Timing, peak-memory and command-line helpers shared by the operator benchmarks.

Timings interleave the contenders (one call of each, then again, ``repeat`` times) and keep each
one's fastest call, so that load from other processes on the machine hits all of them alike.
Peak memory is read from the torch profiler's allocation trace: every tensor allocation and free
made through torch's CPU allocator during the call, in order, summed; the peak of that running
sum is what the call needed on top of what existed before it (its inputs). NumPy allocations
are not seen, which is why it is only reported for the torch-based Sinkhorn contenders.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile


def main(description: str, runs, argv=None, options=None) -> None:
    """Parse the shared options, set the thread count, and call each ``run(args)`` in turn."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per contender")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    if options is not None:
        options(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if "jax" not in sys.modules:  # JAX reads its thread count once, when it starts
        os.environ.setdefault("XLA_FLAGS", xla_flags(args.threads))
    if args.quick:
        args.repeat = min(args.repeat, 2)
    print(f"torch {torch.__version__}, {args.threads} thread(s), best of {args.repeat}")
    for run in runs:
        run(args)


def xla_flags(threads: int) -> str:
    """XLA's CPU flags for ``threads`` threads (one: Eigen's thread pool off)."""
    eigen = "false" if threads == 1 else "true"
    return f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}"


def interleaved_best(calls: dict, repeat: int) -> dict:
    """The fastest of ``repeat`` runs of each zero-argument callable, in seconds, by name."""
    best = {name: float("inf") for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def peak_bytes(call) -> int:
    """The most bytes of tensors ``call()`` held at once beyond those that existed before it."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    running = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        running += event.nbytes()
        peak = max(peak, running)
    return peak
