"""Permutations as index vectors and as matrices.

An index vector ``perm`` can point two ways, and every function here says which it takes:

- *where each item goes* (a scatter): item ``i`` goes to slot ``perm[i]``. This is what
  ``matching`` and ``gumbel_matching`` return (row ``i`` is assigned column ``perm[i]``) and what
  ``permutation_matrix`` turns into ``P[i, perm[i]] = 1``; ``place(x, perm)`` puts the items there.
- *which item each slot takes* (a gather): slot ``j`` takes item ``perm[j]``, as ``x[perm]``,
  ``torch.argsort`` and ``permute(x, perm)`` read it.

``invert_permutation`` turns one reading into the other: ``place(x, perm)`` is
``permute(x, invert_permutation(perm))``.

>>> import torch
>>> x = torch.tensor([10, 20, 30])
>>> perm = torch.tensor([2, 0, 1])            # e.g. from matching: item 0 goes to slot 2, ...
>>> place(x, perm)                            # items put where perm sends them
tensor([20, 30, 10])
>>> permute(x, perm)                          # slot j takes item perm[j], like x[perm]
tensor([30, 10, 20])
"""

from __future__ import annotations

import numbers
import warnings

import torch

from .. import _checks
from ..errors import InvalidTypeError, InvalidValueError


def permutation_matrix(perm: torch.Tensor, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The matrix ``P`` with ``P[..., i, perm[i]] = 1``: row ``i`` has its 1 at ``perm[i]``.

    >>> import torch
    >>> perm = torch.tensor([2, 0, 1])
    >>> permutation_matrix(perm)
    tensor([[0., 0., 1.],
            [1., 0., 0.],
            [0., 1., 0.]])
    >>> x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    >>> permutation_matrix(perm, dtype=x.dtype).T @ x        # = place(x, perm)
    tensor([2., 3., 1.], dtype=torch.float64)

    Which way: ``perm[i]`` is where item ``i`` goes (``matching``'s reading), so ``P.T @ x``
    puts the items there (``place(x, perm)``) and ``P @ x`` gathers ``x[perm]``
    (``permute(x, perm)``). Shapes: ``(..., N)`` integer in, ``(..., N, N)`` out on ``perm``'s
    device. ``dtype`` (default: torch's default, float32) must match the data it multiplies:
    pass ``dtype=x.dtype``. A value outside ``0..N-1`` is a ValueError.
    """
    _checks.permutation(perm)
    n = perm.shape[-1]
    _checks.indices(perm, n)
    eye = torch.eye(n, dtype=dtype or torch.get_default_dtype(), device=perm.device)
    return eye[perm.long()]


def permutation_indices(P: torch.Tensor) -> torch.Tensor:
    """The index form of a permutation matrix: ``perm[..., i]`` = column of the 1 in row ``i``.

    The inverse of ``permutation_matrix``, so the same reading: item ``i`` goes to ``perm[i]``.

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

    Turns one reading into the other: if ``perm[i]`` is where item ``i`` goes, ``inv[j]`` is the
    item that slot ``j`` takes, and back.

    Shapes: ``(..., N)`` in and out (int64). Anything but a permutation of ``0..N-1`` is a
    ValueError (its inverse would be undefined).
    """
    _checks.permutation(perm)
    _checks.indices(perm, perm.shape[-1], bijective=True)
    perm = perm.long()
    arange = torch.arange(perm.shape[-1], device=perm.device).expand_as(perm)
    return torch.empty_like(perm).scatter_(-1, perm, arange)


def permute(x: torch.Tensor, perm: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Reorder ``x`` along ``dim``: ``out[..., j, ...] = x[..., perm[j], ...]`` (a gather).

    Which way: slot ``j`` takes item ``perm[j]``, as ``x[perm]`` and ``torch.argsort`` read it.
    To put items where a ``matching`` sends them (item ``i`` to slot ``perm[i]``), use ``place``.

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


def place(x: torch.Tensor, perm: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Put each item where ``perm`` sends it: ``out[..., perm[i], ...] = x[..., i, ...]``.

    >>> import torch
    >>> scores = torch.tensor([[0.0, 9.0, 0.0], [0.0, 0.0, 9.0], [9.0, 0.0, 0.0]])
    >>> from gumbel_sinkhorn.ops import matching
    >>> perm = matching(scores)                     # item i belongs in slot perm[i]
    >>> perm
    tensor([1, 2, 0])
    >>> place(torch.tensor([10, 20, 30]), perm)     # the items in their slots
    tensor([30, 10, 20])

    Which way: ``perm[i]`` is where item ``i`` goes, as ``matching``, ``gumbel_matching`` and
    ``permutation_matrix`` read it; equal to ``permutation_matrix(perm).T @ x`` and to
    ``permute(x, invert_permutation(perm))``. Shapes as for ``permute``. ``perm`` must be a
    permutation (each slot taken once), else a ValueError; a rectangular matching (N < M slots)
    leaves slots empty: place into a tensor of your own, ``out[..., perm, :] = x``.
    """
    _checks.tensor(x, "x", min_dim=1)
    return permute(x, invert_permutation(perm), dim)


def random_permutation(
    *size: int,
    n: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Uniformly random permutations of ``0..n-1`` in the last axis of a tensor of shape ``size``.

    >>> import torch
    >>> sorted(random_permutation(8).tolist())         # like torch.randperm(8)
    [0, 1, 2, 3, 4, 5, 6, 7]
    >>> perm = random_permutation(2, 4, generator=torch.Generator().manual_seed(0))
    >>> perm.shape, sorted(perm[1].tolist())
    (torch.Size([2, 4]), [0, 1, 2, 3])

    ``size``: the output's shape, as for ``torch.rand`` (integers, or one tuple): the last size is
    ``n``, the ones before it are batch axes, one independent permutation each. Uniform, so it
    does not matter which way it is read (where each item goes, or which item each slot takes).
    int64 on ``device`` (default: the generator's). The argsort of i.i.d. float64 uniforms (ties
    have probability about ``n**2 / 2**54``). ``n=`` as a keyword (``random_permutation(2, n=4)``,
    the batch shape then being ``size``) is deprecated.
    """
    if len(size) == 1 and isinstance(size[0], list | tuple | torch.Size):
        size = tuple(size[0])
    if n is not None:
        warnings.warn(
            f"random_permutation(*batch_shape, n={n}) is deprecated: give n as the last size, "
            f"random_permutation({', '.join(map(str, (*size, n)))})",
            DeprecationWarning,
            stacklevel=2,
        )
        size = (*size, n)
    if not size:
        raise TypeError("random_permutation needs a size: random_permutation(n) or (*batch, n)")
    for value in size:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"every size must be an integer, got {value!r}")
    *batch_shape, n = size
    n = _checks.count(n, "n")
    for value in batch_shape:
        _checks.count(value, "batch size", minimum=0)
    if generator is not None and device is None:
        device = generator.device
    keys = torch.rand(*batch_shape, n, generator=generator, device=device, dtype=torch.float64)
    return keys.argsort(dim=-1)
