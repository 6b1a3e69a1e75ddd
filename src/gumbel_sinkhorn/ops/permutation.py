"""Permutations as index vectors and as matrices."""

from __future__ import annotations

import torch

from .. import _checks
from ..errors import InvalidTypeError, InvalidValueError


def permutation_matrix(perm: torch.Tensor, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The matrix ``P`` with ``P[..., i, perm[i]] = 1``.

    >>> import torch
    >>> permutation_matrix(torch.tensor([2, 0, 1]))
    tensor([[0., 0., 1.],
            [1., 0., 0.],
            [0., 1., 0.]])

    Shapes: ``(..., N)`` integer in, ``(..., N, N)`` out (``dtype`` default: torch's default).
    A value outside ``0..N-1`` is a ValueError.
    """
    _checks.permutation(perm)
    n = perm.shape[-1]
    _checks.indices(perm, n)
    eye = torch.eye(n, dtype=dtype or torch.get_default_dtype(), device=perm.device)
    return eye[perm.long()]


def permutation_indices(P: torch.Tensor) -> torch.Tensor:
    """The index form of a permutation matrix: ``perm[..., i]`` = column of the 1 in row ``i``.

    >>> import torch
    >>> permutation_indices(torch.tensor([[0., 1.], [1., 0.]]))
    tensor([1, 0])

    Shapes: ``(..., N, N)`` in, ``(..., N)`` int64 out. For a soft (doubly stochastic) matrix this
    is the row-wise argmax, which need not be a permutation: use ``matching`` for that.
    """
    _checks.tensor(P, "P", min_dim=2)
    if P.shape[-1] != P.shape[-2] or P.shape[-1] == 0:
        raise InvalidValueError(
            f"P must be square (..., N, N) with N >= 1, got shape {tuple(P.shape)}"
        )
    if P.is_complex():
        raise InvalidTypeError(f"P must have a real dtype, got {P.dtype}")
    if P.is_floating_point() and not P.is_meta and torch.isnan(P).any():
        raise InvalidValueError("P contains NaN")
    return (P.byte() if P.dtype == torch.bool else P).argmax(dim=-1)


def invert_permutation(perm: torch.Tensor) -> torch.Tensor:
    """The inverse permutation: ``inv[perm[i]] = i``.

    >>> import torch
    >>> invert_permutation(torch.tensor([2, 0, 1]))
    tensor([1, 2, 0])

    Shapes: ``(..., N)`` in and out (int64). Anything but a permutation of ``0..N-1`` is a
    ValueError (its inverse would be undefined).
    """
    _checks.permutation(perm)
    _checks.indices(perm, perm.shape[-1], bijective=True)
    perm = perm.long()
    arange = torch.arange(perm.shape[-1], device=perm.device).expand_as(perm)
    return torch.empty_like(perm).scatter_(-1, perm, arange)


def permute(x: torch.Tensor, perm: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Reorder ``x`` along ``dim``: ``out[..., j, ...] = x[..., perm[j], ...]``.

    >>> import torch
    >>> permute(torch.tensor([10, 20, 30]), torch.tensor([2, 0, 1]))
    tensor([30, 10, 20])
    >>> pieces = torch.arange(12.).reshape(2, 3, 2)      # (batch, N, features)
    >>> permute(pieces, torch.tensor([[1, 0, 2], [2, 1, 0]]))[1, 0]
    tensor([10., 11.])

    Shapes: ``perm`` is ``(*batch, N)``; ``x`` is ``(*batch, N, *rest)`` with ``dim`` the axis of
    length ``N`` (default: the axis right after ``perm``'s batch axes). ``perm``'s batch axes line
    up with ``x``'s leading axes (each of size 1 or equal); the axes up to ``dim`` broadcast.
    """
    _checks.tensor(x, "x", min_dim=1)
    _checks.permutation(perm)
    dim = perm.dim() - 1 if dim is None else dim
    if not -x.dim() <= dim < x.dim():
        raise InvalidValueError(f"dim must index one of x's {x.dim()} axes, got {dim}")
    dim %= x.dim()
    n = perm.shape[-1]
    _checks.indices(perm, n)
    if x.shape[dim] != n:
        raise InvalidValueError(
            f"x.shape[{dim}] must equal the permutation length {n}, got shape {tuple(x.shape)}"
        )
    if perm.dim() - 1 > dim:
        raise InvalidValueError(
            f"perm has {perm.dim() - 1} batch axes but x has only {dim} axes before dim={dim}"
        )
    batch = perm.shape[:-1]
    middle = (1,) * (dim - len(batch))
    index = perm.long().reshape(batch + middle + (n,) + (1,) * (x.dim() - dim - 1))
    try:
        index = index.expand(x.shape[:dim] + (n,) + x.shape[dim + 1 :])
    except RuntimeError as err:
        raise InvalidValueError(
            f"perm's batch shape {tuple(batch)} does not broadcast to x's {tuple(x.shape[:dim])}"
        ) from err
    return x.gather(dim, index)


def random_permutation(
    *batch_shape: int,
    n: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Uniformly random permutations of ``0..n-1``, one per batch element.

    >>> import torch
    >>> perm = random_permutation(2, n=4, generator=torch.Generator().manual_seed(0))
    >>> perm.shape, sorted(perm[1].tolist())
    (torch.Size([2, 4]), [0, 1, 2, 3])

    Shapes: ``(*batch_shape, n)`` int64. The argsort of i.i.d. float64 uniforms (ties have
    probability about ``n**2 / 2**54``).
    """
    n = _checks.count(n, "n")
    for size in batch_shape:
        _checks.count(size, "batch size", minimum=0)
    if generator is not None and device is None:
        device = generator.device
    keys = torch.rand(*batch_shape, n, generator=generator, device=device, dtype=torch.float64)
    return keys.argsort(dim=-1)
