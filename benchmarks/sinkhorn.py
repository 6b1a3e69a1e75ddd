"""Soft Sinkhorn: the seed's log_sinkhorn, pygmtools, POT and ours, side by side in one process.

    .venv/bin/python benchmarks/sinkhorn.py [--repeat 5] [--threads N] [--quick]

The seed (the tutorial's code, written here from its formula): alternate
``X -= logsumexp(X, -1)`` and ``X -= logsumexp(X, -2)`` on the whole matrix, ``n_iter`` times,
differentiated by autograd. pygmtools: ``pygmtools.sinkhorn`` (PyTorch backend, its batched path,
``max_iter = 2 n_iter`` half-steps). POT: ``ot.batch.bregman_log_projection_batch`` (its batched
log-domain solver, unit marginals, ``grad="autodiff"``, tolerance 0 so it runs all ``n_iter``).
Ours: ``gumbel_sinkhorn.sinkhorn`` with the default ``backward="unrolled"`` and with
``backward="implicit"``. All compute the same function (the last column shows the largest
difference from the seed's P). Input: standard normal scores, tau = 1, float32; the backward pass
is that of ``(P * W).sum()`` for a fixed random ``W``.
"""

from __future__ import annotations

from functools import partial

import torch

import gumbel_sinkhorn as gs
from _measure import interleaved_best, main, peak_bytes

SIZES = [(256, 9), (64, 49), (64, 100), (8, 400)]
N_ITERS = [20, 100]
# scores spanning ~200 nats, as Gumbel-Sinkhorn samples at tau ~ 0.03 have: the scaling form must
# absorb or fall back to the log domain there
LOW_TAU_SIZES, LOW_TAU_SCALE = [(256, 9), (64, 49), (64, 100)], 30.0


def seed_sinkhorn(log_alpha: torch.Tensor, n_iter: int) -> torch.Tensor:
    for _ in range(n_iter):
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-1, keepdim=True)
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-2, keepdim=True)
    return log_alpha.exp()


def contenders(n_iter: int) -> dict:
    """Name -> function of the scores giving P, for every contender installed here."""
    out = {"seed": lambda x: seed_sinkhorn(x, n_iter)}
    try:
        import pygmtools

        out["pygmtools"] = lambda x: pygmtools.sinkhorn(
            x, max_iter=2 * n_iter, batched_operation=True, backend="pytorch"
        )
    except ImportError:
        pass
    try:
        from ot.batch import bregman_log_projection_batch

        def pot(x):
            ones = x.new_ones(x.shape[:-1])
            solved = bregman_log_projection_batch(
                x, ones, ones, max_iter=n_iter, tol=0.0, grad="autodiff"
            )
            return solved["T"]

        out["POT"] = pot
    except ImportError:
        pass
    out["ours"] = lambda x: gs.sinkhorn(x, n_iter=n_iter)
    out["ours implicit"] = lambda x: gs.sinkhorn(x, n_iter=n_iter, backward="implicit")
    return out


def forward(fn, scores):
    with torch.no_grad():
        return fn(scores)


def forward_backward(fn, scores, weights):
    x = scores.clone().requires_grad_()
    (fn(x) * weights).sum().backward()


def rows(sizes, n_iters, repeat: int, scale: float = 1.0):
    """One dict per (size, n_iter, contender): times (s), peak bytes, deviation from the seed.

    The scores are standard normal times ``scale`` (``scale`` = 1 / tau).
    """
    results = []
    for batch, n in sizes:
        gen = torch.Generator().manual_seed(batch * n)
        scores = torch.randn(batch, n, n, generator=gen) * scale
        weights = torch.randn(batch, n, n, generator=gen)
        for n_iter in n_iters:
            fns = contenders(n_iter)

            calls = {}
            for name, fn in fns.items():
                calls[(name, "fwd")] = partial(forward, fn, scores)
                calls[(name, "fwd+bwd")] = partial(forward_backward, fn, scores, weights)
            times = interleaved_best(calls, repeat)
            reference = forward(fns["seed"], scores)
            for name, fn in fns.items():
                results.append(
                    dict(
                        batch=batch,
                        n=n,
                        n_iter=n_iter,
                        name=name,
                        fwd=times[(name, "fwd")],
                        fwd_bwd=times[(name, "fwd+bwd")],
                        peak=peak_bytes(calls[(name, "fwd+bwd")]),
                        deviation=(forward(fn, scores) - reference).abs().max().item(),
                    )
                )
    return results


def table(results) -> str:
    """Markdown: one line per contender, ratios against the seed of the same (size, n_iter)."""
    seed = {(r["batch"], r["n"], r["n_iter"]): r for r in results if r["name"] == "seed"}
    lines = [
        "| (batch, N) | n_iter | contender | fwd ms | × seed | fwd+bwd ms | × seed "
        "| peak MiB | ÷ seed | max abs(P − P_seed) |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        s = seed[(r["batch"], r["n"], r["n_iter"])]
        lines.append(
            f"| ({r['batch']}, {r['n']}) | {r['n_iter']} | {r['name']} "
            f"| {r['fwd'] * 1e3:.2f} | {s['fwd'] / r['fwd']:.1f} "
            f"| {r['fwd_bwd'] * 1e3:.2f} | {s['fwd_bwd'] / r['fwd_bwd']:.1f} "
            f"| {r['peak'] / 2**20:.1f} | {s['peak'] / max(r['peak'], 1):.1f} "
            f"| {r['deviation']:.1e} |"
        )
    return "\n".join(lines)


def run(args) -> None:
    sizes, n_iters = ([(8, 9), (4, 30)], [5]) if args.quick else (SIZES, N_ITERS)
    print(
        "\nSoft Sinkhorn, float32, tau = 1; × seed = speed-up over the seed, "
        "÷ seed = how many times less memory\n"
    )
    print(table(rows(sizes, n_iters, args.repeat)), flush=True)
    sizes, n_iters = ([(8, 9)], [5]) if args.quick else (LOW_TAU_SIZES, [20])
    print(f"\nLow temperature: the same scores times {LOW_TAU_SCALE:g} (tau = 1 / that)\n")
    print(table(rows(sizes, n_iters, args.repeat, LOW_TAU_SCALE)), flush=True)


if __name__ == "__main__":
    main(__doc__.split("\n")[0], [run])
