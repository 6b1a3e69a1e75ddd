"""Hard matching: a SciPy loop, pygmtools, lapx and ours, side by side in one process.

    .venv/bin/python benchmarks/matching.py [--repeat 5] [--threads N] [--quick]

Every contender starts from the same float32 torch tensor of standard normal scores and returns
one assignment per item; the time includes its conversions. SciPy loop:
``linear_sum_assignment(maximize=True)`` per item. pygmtools: ``pygmtools.hungarian`` (PyTorch
backend; it loops over SciPy). lapx loop: ``lap.lapjv`` per item (the classic JV of ``lap``).
lapx batch: ``lap.lapjvh_batch`` on the whole batch. Ours: ``gumbel_sinkhorn.matching`` (lapx's
batched solver behind one host copy and the checks), and its SciPy fallback on threads. Every
answer is checked against the SciPy total before timing.
"""

from __future__ import annotations

import importlib
from functools import partial

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

import gumbel_sinkhorn as gs
from _measure import interleaved_best, main

SIZES = [(1024, 16), (256, 64), (16, 512)]
matching_module = importlib.import_module("gumbel_sinkhorn.ops.matching")


def scipy_loop(scores: torch.Tensor) -> np.ndarray:
    costs = scores.double().numpy()
    return np.stack([linear_sum_assignment(c, maximize=True)[1] for c in costs])


def ours_scipy_threads(scores: torch.Tensor) -> np.ndarray:
    return matching_module._scipy(torch.neg(scores.double()).numpy())


def contenders() -> dict:
    """Name -> function of the scores giving each item's columns, for those installed here."""
    out = {"SciPy loop": scipy_loop}
    try:
        import pygmtools

        out["pygmtools.hungarian"] = lambda s: pygmtools.hungarian(s, backend="pytorch").argmax(-1)
    except ImportError:
        pass
    try:
        import lap

        out["lapx loop (lapjv)"] = lambda s: np.stack(
            [lap.lapjv(c)[1] for c in torch.neg(s.double()).numpy()]
        )
        threads = torch.get_num_threads()
        out["lapx batch (lapjvh)"] = lambda s: np.stack(
            lap.lapjvh_batch(torch.neg(s.double()).numpy(), return_cost=False, n_threads=threads)[1]
        )
    except (ImportError, AttributeError):
        pass
    out["ours"] = gs.matching
    out["ours, SciPy fallback"] = ours_scipy_threads
    return out


def rows(sizes, repeat: int):
    results = []
    for batch, n in sizes:
        scores = torch.randn(batch, n, n, generator=torch.Generator().manual_seed(batch + n))
        fns = contenders()
        best = scores.double().gather(-1, torch.as_tensor(scipy_loop(scores))[..., None]).sum()
        for name, fn in fns.items():
            cols = torch.as_tensor(np.asarray(fn(scores)))
            total = scores.double().gather(-1, cols[..., None]).sum()
            assert torch.isclose(total, best, rtol=1e-12), (name, total, best)
        times = interleaved_best({name: partial(fn, scores) for name, fn in fns.items()}, repeat)
        for name in fns:
            results.append(dict(batch=batch, n=n, name=name, time=times[name]))
    return results


def table(results) -> str:
    scipy = {(r["batch"], r["n"]): r["time"] for r in results if r["name"] == "SciPy loop"}
    lines = [
        "| (batch, N) | contender | ms | × SciPy loop |",
        "| --- | --- | ---: | ---: |",
    ]
    for r in results:
        ratio = scipy[(r["batch"], r["n"])] / r["time"]
        lines.append(
            f"| ({r['batch']}, {r['n']}) | {r['name']} | {r['time'] * 1e3:.2f} | {ratio:.2f} |"
        )
    return "\n".join(lines)


def run(args) -> None:
    sizes = [(64, 8), (8, 40)] if args.quick else SIZES
    print("\nHard matching; every total checked equal to SciPy's; × SciPy loop = speed-up\n")
    print(table(rows(sizes, args.repeat)), flush=True)


if __name__ == "__main__":
    main(__doc__.split("\n")[0], [run])
