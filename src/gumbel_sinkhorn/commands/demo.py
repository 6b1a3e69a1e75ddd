"""``gumbel-sinkhorn demo``: the operators at a glance (the tutorial's first cells)."""

from __future__ import annotations

from ..configs import count


def run(seed: int = 0, n: int = 4) -> dict:
    """Compute what the demo prints; returned so that it can be checked.

    >>> import torch
    >>> out = run()
    >>> torch.allclose(out["P"].sum(-2), torch.ones(4), atol=1e-3)
    True
    """
    import torch

    from .. import ops

    n = count(n, "--n (the matrix size)")
    gen = torch.Generator().manual_seed(seed)
    log_alpha = torch.randn(n, n, generator=gen)
    return {
        "log_alpha": log_alpha,
        "P": ops.sinkhorn(log_alpha, n_iter=100),
        "perm": ops.matching(log_alpha),
        "cold": ops.gumbel_sinkhorn(log_alpha, tau=0.01, n_iter=200, generator=gen),
        "hot": ops.gumbel_sinkhorn(log_alpha, tau=10.0, generator=gen),
    }


def _show(title: str, value) -> None:
    print(f"\n{title}")
    print(value.numpy().round(3) if value.is_floating_point() else value.tolist())


def main(args) -> int:
    import torch

    out = run(args.seed, args.n)
    torch.set_printoptions(precision=3, sci_mode=False)
    _show("log_alpha: random scores", out["log_alpha"])
    P = out["P"]
    _show("sinkhorn(log_alpha): doubly stochastic", P)
    print(f"row sums {P.sum(-1).numpy().round(4)}, column sums {P.sum(-2).numpy().round(4)}")
    _show("matching(log_alpha): column chosen for each row", out["perm"])
    _show("gumbel_sinkhorn(log_alpha, tau=0.01): close to a permutation", out["cold"])
    _show("gumbel_sinkhorn(log_alpha, tau=10): close to uniform 1/N", out["hot"])
    return 0


def register(commands) -> None:
    parser = commands.add_parser("demo", help="show the operators on a random matrix")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--n", type=int, default=4, help="matrix size N (default 4)")
    parser.set_defaults(func=main)
