"""Argument checks shared by the public functions: errors say what was expected, and what came.

Checks of values (NaN, indices out of range) need the data on the host: they run in eager mode
and are skipped while ``torch.compile`` traces a function, so that it captures one graph.
"""

from __future__ import annotations

import numbers

import torch

from .errors import InvalidTypeError, InvalidValueError


def tensor(x, name: str, *, min_dim: int = 0, floating: bool = False) -> torch.Tensor:
    """Return ``x`` if it is a tensor with at least ``min_dim`` dimensions (and a float dtype)."""
    if not isinstance(x, torch.Tensor):
        raise InvalidTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < min_dim:
        raise InvalidValueError(
            f"{name} must have at least {min_dim} dimensions, got shape {tuple(x.shape)}"
        )
    if floating and not (x.is_floating_point()):
        raise InvalidTypeError(f"{name} must have a floating-point dtype, got {x.dtype}")
    return x


def scores(
    log_alpha, name: str = "log_alpha", *, square: bool = True, posinf: bool = True
) -> torch.Tensor:
    """A float tensor of shape ``(..., N, N)`` (or ``(..., N, M)``) without NaN (nor +inf if
    ``posinf`` is False); one pass over the data when every entry is finite."""
    finite_scores(log_alpha, name, square=square, posinf=posinf)
    return log_alpha


def finite_scores(
    log_alpha, name: str = "log_alpha", *, square: bool = True, posinf: bool = True
) -> bool:
    """The checks of ``scores``; returns whether every entry is finite (False on meta)."""
    tensor(log_alpha, name, min_dim=2, floating=True)
    n, m = log_alpha.shape[-2:]
    if square and n != m:
        raise InvalidValueError(
            f"{name} must be square in its last two dimensions (..., N, N), "
            f"got shape {tuple(log_alpha.shape)}"
        )
    if n == 0 or m == 0:
        raise InvalidValueError(f"{name} must have N >= 1, got shape {tuple(log_alpha.shape)}")
    if log_alpha.device.type == "meta" or torch.compiler.is_compiling():
        return False  # no values to look at (meta), or none without breaking the graph
    # A finite sum proves every entry finite, without a full-size temporary; an overflowing sum
    # of finite entries falls through to the exact test.
    if bool(torch.isfinite(log_alpha.sum())) or bool(torch.isfinite(log_alpha).all()):
        return True
    if torch.isnan(log_alpha).any():
        raise InvalidValueError(f"{name} contains NaN")
    if not posinf and torch.isposinf(log_alpha).any():
        raise InvalidValueError(
            f"{name} contains +inf; use finite scores, or -inf to forbid an entry"
        )
    return False


def not_tall(log_alpha: torch.Tensor, what: str) -> None:
    """Refuse more rows than columns (``N > M``): a row could not get a column of its own."""
    n, m = log_alpha.shape[-2:]
    if n > m:
        raise InvalidValueError(
            f"{what} needs N <= M (rows <= columns), got shape {tuple(log_alpha.shape)}; "
            "transpose it"
        )


def positive(value, name: str) -> float:
    """A finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not value > 0 or value == float("inf"):
        raise InvalidValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def non_negative(value, name: str) -> float:
    """A finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not value >= 0 or value == float("inf"):
        raise InvalidValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def count(value, name: str, *, minimum: int = 1) -> int:
    """An integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise InvalidValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def shape(value, name: str = "shape") -> tuple[int, ...]:
    """A tensor shape: a sequence of integers >= 0 (or one such integer)."""
    sizes = (value,) if isinstance(value, numbers.Integral) else value
    if isinstance(sizes, torch.Size):
        return tuple(sizes)
    if not isinstance(sizes, list | tuple):
        raise InvalidTypeError(f"{name} must be a tuple of integers, got {type(value).__name__}")
    return tuple(count(size, f"every size in {name}", minimum=0) for size in sizes)


def permutation(perm, name: str = "perm") -> torch.Tensor:
    """An integer tensor of shape ``(..., N)``."""
    tensor(perm, name, min_dim=1)
    if perm.is_floating_point() or perm.is_complex() or perm.dtype == torch.bool:
        raise InvalidTypeError(f"{name} must have an integer dtype, got {perm.dtype}")
    return perm


def indices(perm: torch.Tensor, n: int, name: str = "perm", *, bijective: bool = False) -> None:
    """Raise ValueError unless every value of ``perm`` is in ``[0, n)`` (and, if ``bijective``,
    each of them appears once along the last axis). One device-to-host copy of a flag."""
    if perm.is_meta or perm.numel() == 0 or torch.compiler.is_compiling():
        return  # values are checked in eager mode only: torch.compile would break its graph here
    outside = (perm < 0).any() | (perm >= n).any()
    repeats = torch.zeros((), dtype=torch.bool, device=perm.device)
    if bijective:
        ordered = perm.long().sort(dim=-1).values
        repeats = (ordered[..., 1:] == ordered[..., :-1]).any()
    if (outside | repeats).item():
        what = "permutations" if bijective else "indices"
        found = f"values from {perm.min().item()} to {perm.max().item()}"
        raise InvalidValueError(
            f"{name} must hold {what} of 0..N-1 along its last axis (N = {n}), got "
            + (found if outside.item() else "a value twice")
        )


def same_shape(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if a.shape != b.shape:
        raise InvalidValueError(
            f"{names} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
