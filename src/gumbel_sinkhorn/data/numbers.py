"""Random lists of numbers to sort, with their sorted version and the permutation between them."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch

from .. import _checks
from ..configs.sorting import KINDS, Distribution
from ..errors import InvalidTypeError
from ..ops import invert_permutation, permute

__all__ = ["KINDS", "UNIFORM", "Distribution", "NumberLists", "sample_lists"]

UNIFORM = Distribution()


class NumberLists(NamedTuple):
    """Lists, their sorted copies, and the permutation between them both ways.

    ``order`` sorts: ``ordered[..., j] = random[..., order[..., j]]``. ``positions`` is the answer
    a sorting network must find, in the package's convention (``perm[i]`` = where item ``i``
    goes, like :func:`~gumbel_sinkhorn.matching`): ``positions[..., i]`` = the rank of
    ``random[..., i]``.
    """

    random: torch.Tensor
    ordered: torch.Tensor
    order: torch.Tensor

    @property
    def positions(self) -> torch.Tensor:
        return invert_permutation(self.order)

    @property
    def perm(self) -> torch.Tensor:
        """Deprecated: ``order`` (the name said nothing of which way it points)."""
        warnings.warn(
            "NumberLists.perm is deprecated: use .order (sorts the list) or .positions (the "
            "rank of each number)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.order


def sample_lists(
    n_lists: int,
    n: int,
    distribution: Distribution = UNIFORM,
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
    >>> torch.equal(lists.ordered, lists.random.gather(-1, lists.order))
    True

    Shapes: ``random`` and ``ordered`` ``(n_lists, n)`` float64, ``order`` ``(n_lists, n)`` int64.
    Float64, because float32 cannot tell close numbers apart far from zero: its spacing at 1000 is
    6e-5, about the smallest gap between 120 numbers from U(1000, 1001), so ties would be common.
    The same generator state gives the same lists (the authors' ``sample_uniform_and_order``).
    """
    n_lists = _checks.count(n_lists, "n_lists", minimum=0)
    n = _checks.count(n, "n (numbers per list)", minimum=2)
    if not isinstance(distribution, Distribution):
        raise InvalidTypeError(
            f"distribution must be a Distribution, got {type(distribution).__name__}"
        )
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
