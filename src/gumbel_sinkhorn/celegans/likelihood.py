"""The likelihood of the recordings through sufficient statistics: no cost in the length T.

With ``Ya = Y[:, 1:]`` and ``Yb = Y[:, :-1]``, the model's squared error for a (relaxed)
permutation ``Q`` and weights ``W`` is ``||Ya - Q W Q^T Yb||^2 = energy - 2 tr(W Q^T cross Q)
+ tr(M gram M^T)`` with ``M = Q W Q^T``, where ``cross = Yb Ya^T``, ``gram = Yb Yb^T`` and
``energy = ||Ya||^2``: three ``(N, N)`` matrices per worm, whatever the number of time steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Stats:
    """``cross`` and ``gram`` ``(J, N, N)``, ``energy`` ``(J,)``, ``n_steps`` (transitions)."""

    cross: torch.Tensor
    gram: torch.Tensor
    energy: torch.Tensor
    n_steps: int

    @classmethod
    def from_traces(cls, Y: torch.Tensor, dtype=torch.float32) -> Stats:
        """The statistics of traces ``Y`` ``(J, N, T)``.

        >>> import torch
        >>> Stats.from_traces(torch.randn(2, 5, 30)).cross.shape
        torch.Size([2, 5, 5])
        """
        Y = Y.to(torch.float64)
        after, before = Y[..., 1:], Y[..., :-1]
        return cls(
            (before @ after.transpose(-1, -2)).to(dtype),
            (before @ before.transpose(-1, -2)).to(dtype),
            after.square().sum((-1, -2)).to(dtype),
            Y.shape[-1] - 1,
        )


def expected_sq_error(
    Q: torch.Tensor,
    stats: Stats,
    mean: torch.Tensor,
    var: torch.Tensor | None = None,
    *,
    antisymmetric: bool = False,
) -> torch.Tensor:
    """``E_W ||Ya - Q W Q^T Yb||^2`` for independent ``W_kl ~ N(mean_kl, var_kl)``, per worm.

    >>> import torch
    >>> Y = torch.randn(1, 4, 50, dtype=torch.float64)
    >>> W = torch.randn(4, 4, dtype=torch.float64)
    >>> Q = torch.eye(4, dtype=torch.float64)[[2, 0, 3, 1]]
    >>> direct = (Y[0, :, 1:] - Q @ W @ Q.T @ Y[0, :, :-1]).square().sum()
    >>> stats = Stats.from_traces(Y, dtype=torch.float64)
    >>> bool(torch.allclose(expected_sq_error(Q, stats, W), direct))
    True

    Shapes: ``Q`` ``(..., J, N, N)`` (row ``i``: recorded neuron ``i``'s weights over names), the
    weights ``(N, N)``; out ``(..., J)``. ``var`` adds ``sum_kl var_kl (Q^T Q)_kk (Q^T gram Q)_ll``.
    Through ``M = Q W Q^T``: ``fit = <M, cross^T>`` and ``spread = <M gram, M>``, three products
    of ``(N, N)`` matrices (four with ``var``).
    ``antisymmetric``: ``W_lk = -W_kl`` (one Gaussian per pair, ``var`` symmetric), which adds
    ``- sum_kl var_kl (Q^T Q)_kl (Q^T gram Q)_kl`` (two products more).
    """
    M = Q @ mean @ Q.transpose(-1, -2)
    fit = (M * stats.cross.transpose(-1, -2)).sum((-1, -2))
    spread = (M @ stats.gram * M).sum((-1, -2))
    out = stats.energy - 2 * fit + spread
    if var is not None:
        gram_q = stats.gram @ Q
        diag_k = Q.square().sum(-2)[..., :, None]
        diag_g = (gram_q * Q).sum(-2)[..., None, :]
        out = out + (var * diag_k * diag_g).sum((-1, -2))
        if antisymmetric:
            Qt = Q.transpose(-1, -2)
            out = out - (var * (Qt @ Q) * (Qt @ gram_q)).sum((-1, -2))
    return out
