"""Per-element sorting networks: each number of a list is mapped to its row of ``n`` scores.

Both networks first standardise every list (subtract its mean, divide by its standard deviation) in
float64, so their scores do not depend on where the list lies or how spread out it is: a network
trained on U(0, 1) sees exactly the same inputs for U(1000, 1001) or U(-5, 5).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .. import _checks
from ..errors import InvalidValueError


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Each list (last axis) shifted to mean 0 and scaled to standard deviation 1, in float64.

    >>> import torch
    >>> standardize(torch.tensor([1000.0, 1001.0, 1002.0]))
    tensor([-1.,  0.,  1.], dtype=torch.float64)

    Shapes: ``(..., N)`` in, ``(..., N)`` float64 out. Float64 because subtracting the mean of
    numbers near 1000 in float32 would leave only about four significant digits of their
    differences. A constant list becomes all zeros.
    """
    _checks.tensor(x, "x", min_dim=1, floating=True)
    if x.shape[-1] < 2:
        raise InvalidValueError(f"lists must hold at least 2 numbers, got shape {tuple(x.shape)}")
    x = x.double()
    centred = x - x.mean(-1, keepdim=True)
    scale = centred.square().mean(-1, keepdim=True).sqrt()
    return centred / scale.clamp_min(torch.finfo(torch.float64).tiny)


def _lists(x, n: int) -> torch.Tensor:
    _checks.tensor(x, "x", min_dim=1, floating=True)
    if x.shape[-1] != n:
        raise InvalidValueError(
            f"expected lists of {n} numbers (..., {n}), got shape {tuple(x.shape)}"
        )
    return x


class AnchorSortingNet(nn.Module):
    """Scores ``log_alpha[..., i, j] = -exp(log_scale) * (z_i - anchors[j])**2`` on standardised z.

    >>> import torch
    >>> net = AnchorSortingNet(4)
    >>> with torch.no_grad():
    ...     _ = net.anchors.copy_(torch.tensor([-1.5, -0.5, 0.5, 1.5]))   # increasing anchors
    >>> x = torch.tensor([[1000.3, 1000.1, 1000.4, 1000.2]], dtype=torch.float64)
    >>> import gumbel_sinkhorn as gs
    >>> gs.matching(net(x))                  # the position of each number: its rank
    tensor([[2, 0, 3, 1]])
    >>> net.sorts_exactly()
    True

    Shapes: ``(..., n)`` lists in, ``(..., n, n)`` float64 scores out (row i: number i).
    Parameters: ``n`` anchors (one per position) and one log-scale. The anchors start in random
    order close to 0, so no anchor has to travel past another to reach its place.

    Why it sorts: expanding the square, ``log_alpha[i, j] = 2 s z_i a_j - s z_i**2 - s a_j**2``.
    Matching ignores terms that depend on the row or the column alone, so it maximises
    ``sum_i z_i a_perm(i)``, which by the rearrangement inequality puts the k-th smallest number at
    the position of the k-th smallest anchor. Once training has made the anchors increasing, hard
    matching sorts *every* list exactly, whatever its location, scale or distribution. The squared
    distance (rather than the bare product ``z_i a_j``) starts Sinkhorn close to balanced, so a few
    iterations suffice.
    """

    def __init__(self, n: int):
        super().__init__()
        self.n = _checks.count(n, "n (numbers per list)", minimum=2)
        self.anchors = nn.Parameter(0.1 * torch.randn(self.n))
        self.log_scale = nn.Parameter(torch.zeros(()))

    def sorts_exactly(self) -> bool:
        """True when the anchors strictly increase: then hard matching sorts every list exactly."""
        return bool((self.anchors.diff() > 0).all())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = standardize(_lists(x, self.n))
        return -self.log_scale.double().exp() * (z.unsqueeze(-1) - self.anchors.double()).square()


class SortingMLP(nn.Module):
    """The authors' network: the same MLP maps each number to its row of ``n`` scores.

    >>> import torch
    >>> net = SortingMLP(5, hidden=8)
    >>> net(torch.rand(3, 5)).shape
    torch.Size([3, 5, 5])

    Shapes: ``(..., n)`` lists in, ``(..., n, n)`` float64 scores out.
    Layers: Linear(1, hidden) -> ReLU -> Linear(hidden, n) applied to every number, as in
    google/gumbel_sinkhorn, computed in float64. With ``standardize=True`` (default) each list is
    standardised first; ``standardize=False`` is the original, which fails outside its training
    range.
    """

    def __init__(self, n: int, hidden: int = 32, *, standardize: bool = True):
        super().__init__()
        self.n = _checks.count(n, "n (numbers per list)", minimum=2)
        self.standardize = bool(standardize)
        self.hidden = nn.Linear(1, _checks.count(hidden, "hidden"))
        self.out = nn.Linear(self.hidden.out_features, self.n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _lists(x, self.n)
        z = (standardize(x) if self.standardize else x.double()).unsqueeze(-1)
        h = F.relu(F.linear(z, self.hidden.weight.double(), self.hidden.bias.double()))
        return F.linear(h, self.out.weight.double(), self.out.bias.double())
