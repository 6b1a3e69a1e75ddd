"""The paper's metrics, one value per item (the output has the batch shape).

The permutation metrics compare two index vectors entry by entry: give both in the same reading
(both "where item ``i`` goes", as ``matching`` returns, or both "which item slot ``j`` takes").
"""

from __future__ import annotations

import math

import torch

from . import _checks
from .errors import InvalidValueError


def _pair(perm_pred: torch.Tensor, perm_true: torch.Tensor) -> None:
    _checks.permutation(perm_pred, "perm_pred")
    _checks.permutation(perm_true, "perm_true")
    _checks.same_shape(perm_pred, perm_true, "perm_pred and perm_true")


def kendall_tau(perm_pred: torch.Tensor, perm_true: torch.Tensor) -> torch.Tensor:
    """Kendall's tau between two orderings, per item (equal to ``scipy.stats.kendalltau``).

    >>> import torch
    >>> kendall_tau(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 3, 2]))
    tensor(0.6667)

    Shapes: ``(..., N)`` and ``(..., N)`` in (N >= 2), ``(...)`` float out.
    Maths: tau-b = (concordant - discordant) / sqrt((n0 - ties_pred) (n0 - ties_true)) over the
    ``n0 = N (N - 1) / 2`` pairs; for permutations (no ties) this is (C - D) / n0.
    """
    _pair(perm_pred, perm_true)
    n = perm_pred.shape[-1]
    if n < 2:
        raise InvalidValueError(f"kendall_tau needs N >= 2 elements per item, got N = {n}")
    i, j = torch.triu_indices(n, n, 1, device=perm_pred.device)

    def signs(p: torch.Tensor) -> torch.Tensor:  # compared, not subtracted: exact for any int64
        a, b = p[..., i], p[..., j]
        return (a > b).double() - (a < b).double()

    s_pred, s_true = signs(perm_pred), signs(perm_true)
    untied_pred = (s_pred != 0).sum(-1).double()
    untied_true = (s_true != 0).sum(-1).double()
    tau = (s_pred * s_true).sum(-1) / torch.sqrt(untied_pred * untied_true).clamp_min(1)
    return tau.to(torch.get_default_dtype())


def prop_wrong(perm_pred: torch.Tensor, perm_true: torch.Tensor) -> torch.Tensor:
    """Fraction of positions assigned wrongly, per item.

    >>> import torch
    >>> prop_wrong(torch.tensor([[0, 1, 2, 3], [1, 0, 2, 3]]), torch.tensor([[0, 1, 2, 3]] * 2))
    tensor([0.0000, 0.5000])

    Shapes: ``(..., N)`` twice in, ``(...)`` float out.
    """
    _pair(perm_pred, perm_true)
    if perm_pred.shape[-1] == 0:
        raise InvalidValueError("prop_wrong needs N >= 1 elements per item, got N = 0")
    return (perm_pred != perm_true).to(torch.get_default_dtype()).mean(-1)


def prop_any_wrong(perm_pred: torch.Tensor, perm_true: torch.Tensor) -> torch.Tensor:
    """1 for an item with at least one wrong position, else 0.

    >>> import torch
    >>> prop_any_wrong(torch.tensor([[0, 1, 2], [1, 0, 2]]), torch.tensor([[0, 1, 2], [0, 1, 2]]))
    tensor([0., 1.])

    Shapes: ``(..., N)`` twice in, ``(...)`` float out; its mean is the paper's "Prop. any wrong".
    """
    _pair(perm_pred, perm_true)
    return (perm_pred != perm_true).any(-1).to(torch.get_default_dtype())


def _error(x_hat, x, batch_dims, name, power):
    _checks.tensor(x_hat, "x_hat", floating=True)
    _checks.tensor(x, "x", floating=True)
    _checks.same_shape(x_hat, x, "x_hat and x")
    batch_dims = _checks.count(batch_dims, "batch_dims", minimum=0)
    if batch_dims > x.dim():
        raise InvalidValueError(
            f"{name}: batch_dims={batch_dims} but x has only {x.dim()} dimensions"
        )
    if batch_dims < x.dim() and math.prod(x.shape[batch_dims:]) == 0:
        raise InvalidValueError(
            f"{name}: the items of shape {tuple(x.shape[batch_dims:])} are empty"
        )
    diff = (x_hat - x).abs().pow(power)
    return diff.flatten(batch_dims).mean(-1) if batch_dims < x.dim() else diff


def l1_error(x_hat: torch.Tensor, x: torch.Tensor, *, batch_dims: int = 1) -> torch.Tensor:
    """Mean absolute error between a reconstruction and the original, per item.

    >>> import torch
    >>> l1_error(torch.tensor([[1., 2.], [0., 0.]]), torch.tensor([[1., 0.], [0., 1.]]))
    tensor([1.0000, 0.5000])

    Shapes: two equal shapes in; out the first ``batch_dims`` axes (the rest are averaged).
    """
    return _error(x_hat, x, batch_dims, "l1_error", 1)


def l2_error(x_hat: torch.Tensor, x: torch.Tensor, *, batch_dims: int = 1) -> torch.Tensor:
    """Mean squared error between a reconstruction and the original, per item.

    >>> import torch
    >>> l2_error(torch.tensor([[1., 2.], [0., 0.]]), torch.tensor([[1., 0.], [0., 1.]]))
    tensor([2.0000, 0.5000])

    Shapes: as ``l1_error``.
    """
    return _error(x_hat, x, batch_dims, "l2_error", 2)
