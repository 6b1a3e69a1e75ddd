"""``gumbel-sinkhorn demo``: the operators at a glance (the tutorial's first cells)."""

from __future__ import annotations

from ..configs import count


def run(seed: int = 0, n: int = 4) -> dict:
    """Compute what the demo prints; returned so that it can be checked.

    >>> import torch
    >>> out = run()
    >>> torch.allclose(out["P"].sum(-2), torch.ones(4), atol=1e-3)
    True
    >>> bool(out["cold_info"].converged)       # tau = 0.01: 200 iterations are not enough
    False
    """
    import torch

    from .. import ops

    n = count(n, "--n (the matrix size)")
    gen = torch.Generator().manual_seed(seed)
    log_alpha = torch.randn(n, n, generator=gen)
    P, info = ops.sinkhorn(log_alpha, n_iter=100, return_info=True)
    cold, cold_info = ops.gumbel_sinkhorn(
        log_alpha, tau=0.01, n_iter=200, generator=gen, return_info=True
    )
    return {
        "log_alpha": log_alpha,
        "P": P,
        "P_info": info,
        "perm": ops.matching(log_alpha),
        "cold": cold,
        "cold_info": cold_info,
        "hot": ops.gumbel_sinkhorn(log_alpha, tau=10.0, generator=gen),
    }


def describe(P, info) -> str:
    """Row and column sums, and whether Sinkhorn converged: what a reader needs to trust ``P``.

    >>> out = run()
    >>> print(describe(out["cold"], out["cold_info"]))
    row sums [1.0025 0.9975 1.     1.    ], column sums [1. 1. 1. 1.]
    NOT converged after 200 iterations: marginal error 2.5e-03 > 1e-03 (at low tau Sinkhorn needs
    many more iterations: raise n_iter, or pass tol= to be warned)
    """
    sums = f"row sums {P.sum(-1).numpy().round(4)}, column sums {P.sum(-2).numpy().round(4)}"
    error = float(info.error.max())
    if bool(info.converged.all()):
        return f"{sums}\nconverged: marginal error {error:.1e} <= {info.tol:.0e}"
    return (
        f"{sums}\nNOT converged after {info.n_iter} iterations: marginal error {error:.1e} > "
        f"{info.tol:.0e} (at low tau Sinkhorn needs\nmany more iterations: raise n_iter, or pass "
        "tol= to be warned)"
    )


def _show(title: str, value) -> None:
    print(f"\n{title}")
    print(value.numpy().round(3) if value.is_floating_point() else value.tolist())


def main(args) -> int:
    out = run(args.seed, args.n)
    _show("log_alpha: random scores", out["log_alpha"])
    _show("sinkhorn(log_alpha, 100): doubly stochastic", out["P"])
    print(describe(out["P"], out["P_info"]))
    _show("matching(log_alpha): column chosen for each row (where item i goes)", out["perm"])
    cold, info = out["cold"], out["cold_info"]
    near = float((cold - cold.round()).abs().max())  # how far from a 0/1 matrix
    close = bool(info.converged.all()) and near < 0.01
    what = "close to a permutation" if close else "a sample pushed toward a permutation by low tau"
    _show(f"gumbel_sinkhorn(log_alpha, tau=0.01, n_iter=200): {what}", cold)
    print(f"{describe(cold, info)}\nlargest distance of an entry from 0 or 1: {near:.3f}")
    hot = out["hot"]
    spread = float((hot - 1 / hot.shape[-1]).abs().max())
    _show(
        f"gumbel_sinkhorn(log_alpha, tau=10): near uniform 1/N (largest deviation {spread:.3f})",
        hot,
    )
    return 0


def register(commands) -> None:
    parser = commands.add_parser("demo", help="show the operators on a random matrix")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--n", type=int, default=4, help="matrix size N (default 4)")
    parser.set_defaults(func=main)
