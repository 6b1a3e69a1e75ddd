"""Gumbel noise and the Gumbel-Sinkhorn / Gumbel-Matching distributions."""

from __future__ import annotations

import torch

from .. import _checks
from ..errors import InvalidTypeError
from ._deprecation import deprecated_positional
from .matching import matching
from .sinkhorn import sinkhorn


def sample_gumbel(
    shape,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log U)``, never infinite or NaN.

    >>> import torch
    >>> g = sample_gumbel((2, 3), generator=torch.Generator().manual_seed(0))
    >>> g.shape, bool(g.isfinite().all())
    (torch.Size([2, 3]), True)

    ``U`` is drawn in float32 (float64 if asked for) and clamped to ``[tiny, 1 - eps]``, so the
    two logarithms are always finite; the result is cast to ``dtype`` (default: torch's default).
    """
    dtype = dtype or torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise InvalidTypeError(f"dtype must be a floating-point torch.dtype, got {dtype}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InvalidTypeError(
            f"generator must be a torch.Generator, got {type(generator).__name__}"
        )
    shape = _checks.shape(shape)
    if generator is not None and device is None:
        device = generator.device
    work = torch.float64 if dtype == torch.float64 else torch.float32
    info = torch.finfo(work)
    u = torch.rand(shape, generator=generator, device=device, dtype=work)
    u = u.clamp_(min=info.tiny, max=1.0 - info.eps)
    return (-torch.log(-torch.log(u))).to(dtype)


def _noisy(log_alpha, n_samples, noise_factor, generator):
    """``log_alpha + noise_factor * G`` with ``n_samples`` samples stacked first (if > 1)."""
    n_samples = _checks.count(n_samples, "n_samples")
    noise_factor = _checks.non_negative(noise_factor, "noise_factor")
    shape = ((n_samples,) if n_samples > 1 else ()) + tuple(log_alpha.shape)
    if noise_factor == 0:
        return log_alpha.expand(shape)
    noise = sample_gumbel(
        shape, generator=generator, device=log_alpha.device, dtype=log_alpha.dtype
    )
    return log_alpha + noise_factor * noise


@deprecated_positional("tau", "n_iter")
def gumbel_sinkhorn(
    log_alpha: torch.Tensor,
    *,
    tau: float = 1.0,
    n_iter: int = 20,
    n_samples: int = 1,
    noise_factor: float = 1.0,
    generator: torch.Generator | None = None,
    **options,
):
    """Samples of the Gumbel-Sinkhorn distribution S((log_alpha + noise_factor * G) / tau).

    >>> import torch
    >>> gen = torch.Generator().manual_seed(0)
    >>> P = gumbel_sinkhorn(torch.randn(4, 5, 5), tau=0.5, n_samples=3, generator=gen)
    >>> P.shape
    torch.Size([3, 4, 5, 5])

    Shapes: ``(..., N, N)`` in; out the same, or ``(n_samples, ..., N, N)`` when ``n_samples > 1``.
    The noise is added before dividing by ``tau`` (as in the paper); ``noise_factor=0`` is plain
    Sinkhorn. Differentiable with respect to ``log_alpha``. Other keyword ``options`` (``tol``,
    ``mask``, ``sizes``, ``backward``, ``return_info``) go to ``sinkhorn``; ``N <= M`` there.
    """
    _checks.scores(log_alpha, square=False)
    noisy = _noisy(log_alpha, n_samples, noise_factor, generator)
    return sinkhorn(noisy, n_iter=n_iter, tau=tau, **options)


def gumbel_matching(
    log_alpha: torch.Tensor,
    *,
    n_samples: int = 1,
    noise_factor: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Hard samples of the Gumbel-Matching distribution M(log_alpha + noise_factor * G).

    >>> import torch
    >>> perm = gumbel_matching(torch.zeros(2, 4, 4), generator=torch.Generator().manual_seed(0))
    >>> perm.shape, sorted(perm[0].tolist())
    (torch.Size([2, 4]), [0, 1, 2, 3])

    Shapes: ``(..., N, N)`` in; ``(..., N)`` int64 out, or ``(n_samples, ..., N)``. With zero scores
    the samples are uniform over permutations. Which way, as for ``matching``: ``perm[i]`` is where
    item ``i`` goes (``place(x, perm)`` puts the items there).
    """
    _checks.scores(log_alpha)
    return matching(_noisy(log_alpha.detach(), n_samples, noise_factor, generator))
