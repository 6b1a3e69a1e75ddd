"""Random lists of numbers to sort, with their sorted version and the permutation between them."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .. import _checks
from ..ops import permute

KINDS = ("uniform", "normal")


def _finite(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Distribution:
    """Where the numbers of a list come from: U(low, high) or N(mean, std**2).

    >>> Distribution(low=1000, high=1001)
    Distribution(kind='uniform', low=1000.0, high=1001.0, mean=0.0, std=1.0)
    >>> print(Distribution("normal", mean=0, std=2))
    N(0, 2^2)

    ``low`` / ``high`` describe the uniform, ``mean`` / ``std`` the normal; the others are ignored.
    """

    kind: str = "uniform"
    low: float = 0.0
    high: float = 1.0
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"distribution must be one of {KINDS}, got {self.kind!r}")
        for name in ("low", "high", "mean", "std"):
            object.__setattr__(self, name, _finite(getattr(self, name), name))
        if self.kind == "uniform" and not self.low < self.high:
            raise ValueError(
                f"a uniform distribution needs low < high, got low={self.low:g}, high={self.high:g}"
            )
        if self.kind == "normal" and not self.std > 0:
            raise ValueError(f"a normal distribution needs std > 0, got std={self.std:g}")

    def __str__(self) -> str:
        if self.kind == "uniform":
            return f"U({self.low:g}, {self.high:g})"
        return f"N({self.mean:g}, {self.std:g}^2)"


class NumberLists(NamedTuple):
    """``ordered[..., j] = random[..., perm[..., j]]``: ``perm`` sorts ``random`` increasingly."""

    random: torch.Tensor
    ordered: torch.Tensor
    perm: torch.Tensor


def sample_lists(
    n_lists: int,
    n: int,
    distribution: Distribution = Distribution(),
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> NumberLists:
    """``n_lists`` lists of ``n`` i.i.d. numbers, sorted copies and the sorting permutations.

    >>> import torch
    >>> gen = torch.Generator().manual_seed(0)
    >>> lists = sample_lists(2, 5, Distribution(low=0, high=10), generator=gen)
    >>> lists.random.shape, lists.random.dtype
    (torch.Size([2, 5]), torch.float64)
    >>> bool((lists.ordered.diff(dim=-1) > 0).all())
    True
    >>> torch.equal(lists.ordered, lists.random.gather(-1, lists.perm))
    True

    Shapes: ``random`` and ``ordered`` ``(n_lists, n)`` float64, ``perm`` ``(n_lists, n)`` int64.
    Float64, because float32 cannot tell close numbers apart far from zero: its spacing at 1000 is
    6e-5, about the smallest gap between 120 numbers from U(1000, 1001), so ties would be common.
    The same generator state gives the same lists (the authors' ``sample_uniform_and_order``).
    """
    n_lists = _checks.count(n_lists, "n_lists", minimum=0)
    n = _checks.count(n, "n (numbers per list)", minimum=2)
    if not isinstance(distribution, Distribution):
        raise TypeError(f"distribution must be a Distribution, got {type(distribution).__name__}")
    if generator is not None and device is None:
        device = generator.device
    shape = (n_lists, n)
    if distribution.kind == "uniform":
        u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
        random = distribution.low + (distribution.high - distribution.low) * u
    else:
        z = torch.randn(shape, generator=generator, device=device, dtype=torch.float64)
        random = distribution.mean + distribution.std * z
    perm = random.argsort(dim=-1, stable=True)
    return NumberLists(random, permute(random, perm), perm)
