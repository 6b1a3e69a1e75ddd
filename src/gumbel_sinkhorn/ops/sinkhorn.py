"""The Sinkhorn operator in the log domain."""

from __future__ import annotations

import torch

from .. import _checks


def log_sinkhorn(log_alpha: torch.Tensor, n_iter: int = 20, *, tau: float = 1.0) -> torch.Tensor:
    """Log of the Sinkhorn normalisation of ``log_alpha / tau``.

    >>> import torch
    >>> P = log_sinkhorn(torch.randn(3, 3), 50).exp()
    >>> torch.allclose(P.sum(-1), torch.ones(3), atol=1e-4)
    True

    Shapes: ``(..., N, N)`` in, ``(..., N, N)`` out, same device and dtype.

    Maths: with ``X = log_alpha / tau``, alternately ``X -= logsumexp(X, -1)`` (rows) and
    ``X -= logsumexp(X, -2)`` (columns), ``n_iter`` times each. Implemented on the row and column
    potentials ``f``, ``g`` (``X + f + g`` is the result), which keeps fewer ``N x N`` tensors alive
    for the backward pass. ``-inf`` entries stay ``-inf`` (forbidden pairs).
    """
    _checks.scores(log_alpha)
    n_iter = _checks.count(n_iter, "n_iter")
    tau = _checks.positive(tau, "tau")
    x = log_alpha / tau
    g = torch.zeros_like(x[..., :1, :])
    for _ in range(n_iter):
        f = -torch.logsumexp(x + g, dim=-1, keepdim=True)
        g = -torch.logsumexp(x + f, dim=-2, keepdim=True)
    return x + f + g


def sinkhorn(log_alpha: torch.Tensor, n_iter: int = 20, *, tau: float = 1.0) -> torch.Tensor:
    """Sinkhorn operator S(log_alpha / tau): a doubly stochastic matrix.

    >>> import torch
    >>> P = sinkhorn(torch.tensor([[3.0, 0.0], [0.0, 3.0]]), tau=0.1)
    >>> P.round(decimals=3)
    tensor([[1., 0.],
            [0., 1.]])

    Shapes: ``(..., N, N)`` in and out. Maths: ``exp(log_sinkhorn(log_alpha, n_iter, tau=tau))``;
    its rows sum to 1 exactly after the last (column) step leaves columns summing to 1, and rows
    converge to 1 as ``n_iter`` grows.
    """
    return log_sinkhorn(log_alpha, n_iter, tau=tau).exp()
