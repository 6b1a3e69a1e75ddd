"""Constraints of the permutation distributions: their score matrices and their supports."""

from __future__ import annotations

import torch
from torch.distributions import constraints


class _ScoreMatrix(constraints.Constraint):
    """Square score matrices: real or ``-inf`` (forbidden) entries, no NaN or ``+inf``, and at
    least one allowed entry in every row and every column.

    >>> import torch
    >>> score_matrix.check(torch.tensor([[0.0, float("-inf")], [1.0, 2.0]]))
    tensor(True)
    >>> score_matrix.check(torch.tensor([[float("-inf"), float("-inf")], [1.0, 2.0]]))
    tensor(False)
    """

    event_dim = 2

    def check(self, value: torch.Tensor) -> torch.Tensor:
        allowed = value > float("-inf")
        ok = ~(value.isnan() | value.isposinf())
        return ok.all(-1).all(-1) & allowed.any(-1).all(-1) & allowed.any(-2).all(-1)


class _DoublyStochastic(constraints.Constraint):
    """Square non-negative matrices whose rows and columns sum to 1 (within ``atol``).

    >>> import torch
    >>> doubly_stochastic.check(torch.full((3, 3), 1 / 3))
    tensor(True)
    """

    event_dim = 2

    def __init__(self, atol: float = 1e-3):
        self.atol = atol
        super().__init__()

    def check(self, value: torch.Tensor) -> torch.Tensor:
        rows = ((value.sum(-1) - 1).abs() <= self.atol).all(-1)
        cols = ((value.sum(-2) - 1).abs() <= self.atol).all(-1)
        return (value >= 0).all(-1).all(-1) & rows & cols


class _PermutationMatrix(constraints.Constraint):
    """0/1 square matrices with exactly one 1 in every row and every column.

    >>> import torch
    >>> permutation_matrix.check(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    tensor(True)
    """

    event_dim = 2
    is_discrete = True

    def check(self, value: torch.Tensor) -> torch.Tensor:
        binary = ((value == 0) | (value == 1)).all(-1).all(-1)
        return binary & (value.sum(-1) == 1).all(-1) & (value.sum(-2) == 1).all(-1)


score_matrix = _ScoreMatrix()
doubly_stochastic = _DoublyStochastic()
permutation_matrix = _PermutationMatrix()
