"""A batch of Sinkhorn problems in the one form the solvers work on: scores, row and column masses.

Padding, forbidden entries and rectangular matrices all become row masses ``a`` and column masses
``b``: a padding row has mass 0, and when an item has fewer rows than columns one extra *slack* row
of constant score takes the columns' unassigned mass (so real rows sum to 1, columns to at most 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InvalidTypeError, InvalidValueError


@dataclass
class Problem:
    """``x`` (B, R, M): scores / tau, ``-inf`` where forbidden, 0 in padding rows and columns.

    ``a`` (B, R) and ``b`` (B, M) are the row and column masses (``None``: all ones);
    ``n_rows`` is the number of the caller's rows (R - 1 when a slack row was appended);
    ``row_max`` (B, R) is each row's largest score over the columns of positive mass.
    """

    x: torch.Tensor
    row_max: torch.Tensor
    a: torch.Tensor | None = None
    b: torch.Tensor | None = None
    n_rows: int = 0

    def __post_init__(self):
        self.n_rows = self.n_rows or self.x.shape[-2]
        self.log_a = None if self.a is None else self.a.log()
        self.log_b = None if self.b is None else self.b.log()


def build(
    scores: torch.Tensor, mask: torch.Tensor | None, unscaled: torch.Tensor | None = None
) -> Problem:
    """The problem for ``scores`` (B, N, M), already divided by tau, and an optional ``mask``.

    An entry is allowed when it is finite and not masked out; a row (column) with no allowed
    entry is padding. Raises ``ValueError`` for an item with no allowed entry or with more
    non-padding rows than columns, and, given the ``unscaled`` scores, for a row or column whose
    finite scores all overflowed to ``-inf`` in the division (single entries may: their plan
    entries are 0 either way, but a whole line would silently become padding).
    """
    n, m = scores.shape[-2:]
    safe = torch.finfo(scores.dtype).max / 8  # beyond, the potentials may overflow into NaN
    if mask is None and n == m:
        row_max = scores.amax(-1)
        if bool((torch.cat([row_max, scores.amax(-2)], -1).abs() <= safe).all()):
            return Problem(scores, row_max)
    allowed = scores > float("-inf")
    if mask is not None:
        allowed = allowed & mask
    rows, cols = allowed.any(-1), allowed.any(-2)
    n_rows, n_cols = rows.sum(-1), cols.sum(-1)
    peak = torch.where(allowed, scores.abs(), 0.0).amax()
    if peak > safe:  # +inf here is an overflow: log_alpha had no +inf
        raise InvalidValueError(
            f"log_alpha / tau reaches {peak.item():.3g}, too close to the largest "
            f"{scores.dtype} ({safe * 8:.3g}) for the Sinkhorn iterations; use a larger tau, "
            "smaller scores or float64"
        )
    lost = None if unscaled is None else _overflowed_lines(unscaled, mask, rows, cols)
    _check_counts(n_rows, n_cols, lost)
    block = rows.unsqueeze(-1) & cols.unsqueeze(-2)
    x = torch.where(allowed, scores, torch.where(block, float("-inf"), 0.0))
    a, b = rows.to(scores.dtype), cols.to(scores.dtype)
    slack = (n_cols - n_rows).to(scores.dtype)
    if bool((slack > 0).any()):
        x = torch.cat([x, x.new_zeros(x.shape[0], 1, m)], dim=-2)
        a = torch.cat([a, slack.unsqueeze(-1)], dim=-1)
    row_max = torch.where(cols.unsqueeze(-2), x, float("-inf")).amax(-1)
    return Problem(x, row_max, a, b, n)


def _overflowed_lines(unscaled, mask, rows, cols) -> torch.Tensor:
    """Per item, how many rows and columns with finite scores the division by tau made empty."""
    given = unscaled > float("-inf")
    if mask is not None:
        given = given & mask
    return (given.any(-1) & ~rows).sum(-1) + (given.any(-2) & ~cols).sum(-1)


def _check_counts(
    n_rows: torch.Tensor, n_cols: torch.Tensor, lost: torch.Tensor | None = None
) -> None:
    """One device-to-host copy for the checks of every item (``lost``: see _overflowed_lines)."""
    lost = torch.zeros_like(n_rows) if lost is None else lost
    counts = torch.stack([n_rows, n_cols, lost], -1).tolist()
    for item, (rows, cols, overflowed) in enumerate(counts):
        if overflowed:
            raise InvalidValueError(
                f"log_alpha / tau overflows to -inf along a whole row or column of item {item}: "
                "use a larger tau, smaller scores or float64"
            )
        if rows == 0:
            raise InvalidValueError(f"item {item} has no allowed entry (all masked out or -inf)")
        if rows > cols:
            raise InvalidValueError(
                f"item {item} has more rows ({rows}) than columns ({cols}) once padding and "
                "all -inf rows/columns are removed; Sinkhorn needs N <= M: transpose it"
            )


def size_mask(sizes, n: int, m: int, device: torch.device) -> torch.Tensor:
    """The boolean mask of each item's leading ``rows x cols`` block, shape ``(..., n, m)``.

    ``sizes`` is an integer tensor (or int) of square sizes, or a pair ``(rows, cols)`` of them.
    """
    rows, cols = sizes if isinstance(sizes, (tuple, list)) else (sizes, sizes)
    rows, cols = _sizes(rows, "rows", n, device), _sizes(cols, "cols", m, device)
    row_ok = torch.arange(n, device=device) < rows.unsqueeze(-1)
    col_ok = torch.arange(m, device=device) < cols.unsqueeze(-1)
    return row_ok.unsqueeze(-1) & col_ok.unsqueeze(-2)


def _sizes(value, name: str, limit: int, device: torch.device) -> torch.Tensor:
    value = torch.as_tensor(value, device=device)
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise InvalidTypeError(f"sizes ({name}) must be integers, got dtype {value.dtype}")
    if bool(((value < 1) | (value > limit)).any()):
        raise InvalidValueError(f"sizes ({name}) must lie in 1..{limit}, got {value.tolist()}")
    return value
