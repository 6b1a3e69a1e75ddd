"""Soft Sinkhorn: the seed's log_sinkhorn, pygmtools, POT and ours, side by side in one process.

    .venv/bin/python benchmarks/sinkhorn.py [--repeat 5] [--threads N] [--quick] [--sizes 64x100]

The seed (the tutorial's code, written here from its formula): alternate
``X -= logsumexp(X, -1)`` and ``X -= logsumexp(X, -2)`` on the whole matrix, ``n_iter`` times,
differentiated by autograd. pygmtools: ``pygmtools.sinkhorn`` (PyTorch backend, its batched path,
``max_iter = 2 n_iter`` half-steps). POT: ``ot.batch.bregman_log_projection_batch`` (its batched
log-domain solver, unit marginals, ``grad="autodiff"``, tolerance 0 so it runs all ``n_iter``).
Ours: ``gumbel_sinkhorn.sinkhorn`` with the default ``backward="unrolled"`` and with
``backward="implicit"`` (on CPU the native kernels of ``ops/_native``), and the same with the
native kernels switched off ("torch ops": the solver's torch operators). All compute the same
function (the last column shows the largest difference from the seed's P). Input: standard normal
scores, tau = 1, float32; the backward pass is the vector-Jacobian product with a fixed random
``W`` (the gradient of ``(P * W).sum()``, computed as ``torch.autograd.grad(P, x, W)``: no
product, sum or clone around the operator is timed), the same for every contender (OTT-JAX:
``jax.vjp``). OTT-JAX (``ott-jax``, when installed): ``ott.solvers.linear.sinkhorn.Sinkhorn``
in its default log-domain mode and its default implicit differentiation,
``min_iterations = max_iterations = n_iter`` (exactly ``n_iter`` iterations),
``vmap`` over the batch, ``jit``-compiled and warmed up before timing, on the transposed cost
``-scores^T`` with epsilon 1 (it updates the column potential first; transposed, its plan times N
is the seed's); its inputs are JAX arrays made once, outside the timing.

Threads: every torch contender is timed at ``--threads`` T and at one thread, interleaved in the
same process (``torch.set_num_threads`` switched call by call): "1 → T" is the speed-up, and
efficiency that divided by T. JAX's thread count is fixed when it starts (``XLA_FLAGS``, set by
``_measure.main`` from ``--threads``): its one-thread figures come from a run with
``--threads 1``. Peak memory is measured at one thread: the torch profiler sees only the calling
thread's allocations, and ours at T threads splits the same work into T blocks.
"""

from __future__ import annotations

import math
import os
from functools import partial

import numpy as np
import torch

import gumbel_sinkhorn as gs
from _measure import interleaved_best, main, peak_bytes
from gumbel_sinkhorn.ops._native import ENV_VAR as NATIVE_SWITCH

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
    out["ours, torch ops"] = torch_ops(out["ours"])
    out["ours implicit, torch ops"] = torch_ops(out["ours implicit"])
    return out


def torch_ops(fn):
    """``fn`` with the native CPU kernels switched off (the choice holds for its backward)."""

    def call(x):
        os.environ[NATIVE_SWITCH] = "0"
        try:
            return fn(x)
        finally:
            del os.environ[NATIVE_SWITCH]

    return call


class OttJax:
    """OTT-JAX's batched Sinkhorn for one ``n_iter``: jitted forward and forward + backward."""

    def __init__(self, n_iter: int):
        import jax
        import jax.numpy as jnp
        from ott.geometry import geometry
        from ott.problems.linear import linear_problem
        from ott.solvers.linear import sinkhorn as ott_sinkhorn

        solver = ott_sinkhorn.Sinkhorn(  # default lse_mode and implicit_diff
            threshold=-1.0,
            min_iterations=n_iter,
            max_iterations=n_iter,
            inner_iterations=math.gcd(n_iter, 10),  # its loop runs whole blocks of these
        )

        def plan(scores):  # (N, N) -> the seed's P
            geom = geometry.Geometry(cost_matrix=-scores.T, epsilon=1.0)
            return solver(linear_problem.LinearProblem(geom)).matrix.T * scores.shape[-1]

        batched = jax.vmap(plan)
        self.jnp = jnp
        self.forward = jax.jit(batched)
        self.gradient = jax.jit(lambda x, w: jax.vjp(batched, x)[1](w)[0])

    def calls(self, scores: torch.Tensor, weights: torch.Tensor):
        """(forward call, forward + backward call, P as a torch tensor), compiled and warm.

        The backward call is None where OTT's implicit differentiation fails (its linear solve
        returned non-finite values, e.g. on (256, 9) standard normal scores).
        """
        import jax

        x, w = self.jnp.asarray(scores.numpy()), self.jnp.asarray(weights.numpy())
        plan = torch.tensor(np.asarray(self.forward(x).block_until_ready()))
        try:
            grad = np.asarray(self.gradient(x, w).block_until_ready())
        except jax.errors.JaxRuntimeError:
            grad = None
        backward = None if grad is None or not np.isfinite(grad).all() else self.gradient
        return (
            lambda: self.forward(x).block_until_ready(),
            None if backward is None else lambda: backward(x, w).block_until_ready(),
            plan,
        )


def ott_jax(n_iter: int) -> OttJax | None:
    try:
        return OttJax(n_iter)
    except ImportError:
        return None


def at_threads(count: int, call):
    """``call`` run with ``count`` torch intra-op threads (the process's setting restored)."""

    def run():
        before = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            return call()
        finally:
            torch.set_num_threads(before)

    return run


def forward(fn, scores):
    with torch.no_grad():
        return fn(scores)


def forward_backward(fn, x, weights):
    """The gradient of ``(fn(x) * weights).sum()`` with respect to the leaf ``x``: the
    vector-Jacobian product of ``fn`` with ``weights`` (nothing accumulates in ``x.grad``)."""
    return torch.autograd.grad(fn(x), x, weights)[0]


def rows(sizes, n_iters, repeat: int, scale: float = 1.0):
    """One dict per (size, n_iter, contender): times (s) at the process's thread count T and
    forward + backward at one thread (torch contenders, when T > 1), peak bytes, deviation from
    the seed.

    The scores are standard normal times ``scale`` (``scale`` = 1 / tau).
    """
    threads = torch.get_num_threads()
    results = []
    for batch, n in sizes:
        gen = torch.Generator().manual_seed(batch * n)
        scores = torch.randn(batch, n, n, generator=gen) * scale
        weights = torch.randn(batch, n, n, generator=gen)
        leaf = scores.clone().requires_grad_()
        for n_iter in n_iters:
            fns = contenders(n_iter)
            calls, plans = {}, {}
            for name, fn in fns.items():
                calls[(name, "fwd")] = partial(forward, fn, scores)
                calls[(name, "fwd+bwd")] = partial(forward_backward, fn, leaf, weights)
                if threads > 1:
                    calls[(name, "fwd+bwd 1")] = at_threads(1, calls[(name, "fwd+bwd")])
                plans[name] = forward(fn, scores)
            ott = ott_jax(n_iter)
            if ott is not None:
                fwd, fwd_bwd, plans["OTT-JAX"] = ott.calls(scores, weights)
                calls[("OTT-JAX", "fwd")] = fwd
                if fwd_bwd is not None:
                    calls[("OTT-JAX", "fwd+bwd")] = fwd_bwd
            times = interleaved_best(calls, repeat)
            for name, plan in plans.items():
                torch_based = name in fns
                results.append(
                    dict(
                        batch=batch,
                        n=n,
                        n_iter=n_iter,
                        name=name,
                        threads=threads,
                        fwd=times[(name, "fwd")],
                        fwd_bwd=times.get((name, "fwd+bwd")),
                        fwd_bwd_1=times.get((name, "fwd+bwd 1")),
                        peak=peak_bytes(at_threads(1, calls[(name, "fwd+bwd")]))
                        if torch_based
                        else None,
                        deviation=(plan - plans["seed"]).abs().max().item(),
                    )
                )
    return results


def table(results) -> str:
    """Markdown: one line per contender, ratios against the seed of the same (size, n_iter)."""
    seed = {(r["batch"], r["n"], r["n_iter"]): r for r in results if r["name"] == "seed"}
    t = results[0]["threads"] if results else 1
    lines = [
        f"| (batch, N) | n_iter | contender | fwd ms | × seed | fwd+bwd ms | × seed "
        f"| fwd+bwd 1 thread ms | 1 → {t} | efficiency | peak MiB | ÷ seed | max abs(P − P_seed) |",
        "| --- | ---: | --- " + "| ---: " * 10 + "|",
    ]
    for r in results:
        s = seed[(r["batch"], r["n"], r["n_iter"])]
        if r["fwd_bwd_1"] is None:
            scaling = "| — | — | — "
        else:
            speedup = r["fwd_bwd_1"] / r["fwd_bwd"]
            scaling = f"| {r['fwd_bwd_1'] * 1e3:.2f} | {speedup:.2f} | {speedup / t:.0%} "
        memory = (
            "| n/a | n/a "
            if r["peak"] is None
            else f"| {r['peak'] / 2**20:.1f} | {s['peak'] / max(r['peak'], 1):.1f} "
        )
        backward = (
            "| fails (non-finite linear solve) | — "
            if r["fwd_bwd"] is None
            else f"| {r['fwd_bwd'] * 1e3:.2f} | {s['fwd_bwd'] / r['fwd_bwd']:.1f} "
        )
        lines.append(
            f"| ({r['batch']}, {r['n']}) | {r['n_iter']} | {r['name']} "
            f"| {r['fwd'] * 1e3:.2f} | {s['fwd'] / r['fwd']:.1f} "
            f"{backward}{scaling}{memory}| {r['deviation']:.1e} |"
        )
    return "\n".join(lines)


def run(args) -> None:
    sizes, n_iters = ([(8, 9), (4, 30)], [5]) if args.quick else (SIZES, N_ITERS)
    if getattr(args, "sizes", None):  # e.g. --sizes 64x100 8x400: these, at tau = 1 only
        sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes]
    print(
        "\nSoft Sinkhorn, float32, tau = 1; × seed = speed-up over the seed, "
        "÷ seed = how many times less memory\n"
    )
    print(table(rows(sizes, n_iters, args.repeat)), flush=True)
    if getattr(args, "sizes", None):
        return
    sizes, n_iters = ([(8, 9)], [5]) if args.quick else (LOW_TAU_SIZES, [20])
    print(f"\nLow temperature: the same scores times {LOW_TAU_SCALE:g} (tau = 1 / that)\n")
    print(table(rows(sizes, n_iters, args.repeat, LOW_TAU_SCALE)), flush=True)


def options(parser) -> None:
    parser.add_argument("--sizes", nargs="+", help="(batch)x(N) pairs instead of the default")


if __name__ == "__main__":
    main(__doc__.split("\n")[0], [run], options=options)
