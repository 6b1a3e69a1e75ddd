"""Gumbel-Sinkhorn (soft, reparameterised) and Gumbel-Matching (hard) distributions.

Both perturb a score matrix ``log_alpha`` with independent standard Gumbel noise ``G``; a
Gumbel-Sinkhorn sample is ``S((log_alpha + G) / tau)`` (the Sinkhorn operator: a doubly
stochastic matrix), a Gumbel-Matching sample the permutation matrix ``M(log_alpha + G)`` that
maximises the perturbed total score. Entries of ``log_alpha`` equal to ``-inf`` (or outside
``mask``) are forbidden: they never receive mass, so a permutation can be restricted to the
assignments that side information allows. Neither distribution has a tractable density
(``log_prob`` raises ``NotImplementedError``); ``torch.distributions.kl_divergence`` between two
of the same kind returns the KL between the Gumbel-perturbed scores, an upper bound (see ``kl``).
"""

from __future__ import annotations

import numbers

import torch
from torch.distributions import Distribution, constraints

from .. import _checks
from ..errors import InvalidTypeError, InvalidValueError
from ..ops import matching, permutation_matrix, sample_gumbel, sinkhorn
from . import constraints as perm_constraints

_NEG_INF = float("-inf")
_NO_SAMPLES = torch.Size()


class _PerturbedScores(Distribution):
    """What both distributions share: the scores, their mask, shapes and ``expand``."""

    arg_constraints = {"log_alpha": perm_constraints.score_matrix}

    def __init__(self, log_alpha, mask, batch_shape, validate_args, **params):
        """Mask and broadcast ``log_alpha``, broadcast ``params`` (tensors) to the batch shape,
        then validate (torch's checks need every parameter set)."""
        _checks.tensor(log_alpha, "log_alpha", min_dim=2, floating=True)
        n, m = log_alpha.shape[-2:]
        if n != m or n == 0:
            raise InvalidValueError(
                f"log_alpha must be square (..., N, N) with N >= 1, got shape "
                f"{tuple(log_alpha.shape)}"
            )
        if mask is not None:
            _checks.tensor(mask, "mask")
            if mask.dtype != torch.bool:
                raise InvalidTypeError(f"mask must be a bool tensor, got dtype {mask.dtype}")
            try:
                log_alpha = log_alpha.masked_fill(~mask.to(log_alpha.device), _NEG_INF)
            except RuntimeError as err:
                raise InvalidValueError(
                    f"mask of shape {tuple(mask.shape)} does not broadcast to log_alpha's "
                    f"{tuple(log_alpha.shape)}"
                ) from err
        batch_shape = torch.broadcast_shapes(batch_shape, log_alpha.shape[:-2])
        self.log_alpha = log_alpha.expand(batch_shape + (n, n))
        for name, value in params.items():
            setattr(self, name, value.expand(batch_shape))
        super().__init__(batch_shape, torch.Size((n, n)), validate_args=validate_args)

    def log_prob(self, value):
        """Not available: neither distribution has a tractable density (see the module)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no tractable density, so no log_prob; for variational "
            "inference use torch.distributions.kl_divergence(q, p), the closed-form KL between "
            "the Gumbel-perturbed scores (an upper bound on the KL between the distributions)"
        )

    @property
    def allowed(self) -> torch.Tensor:
        """Bool ``(*batch_shape, N, N)``: the entries a sample may use."""
        return self.log_alpha > _NEG_INF

    def _noisy_scores(self, sample_shape, generator) -> torch.Tensor:
        """``log_alpha + G`` with forbidden entries at 0 (finite, so no NaN in any gradient)."""
        shape = self._extended_shape(sample_shape)
        noise = sample_gumbel(
            shape, generator=generator, device=self.log_alpha.device, dtype=self.log_alpha.dtype
        )
        return torch.where(self.allowed, self.log_alpha, 0.0) + noise

    def _expand_scores(self, cls, batch_shape, _instance):
        new = self._get_checked_instance(cls, _instance)
        batch_shape = torch.Size(batch_shape)
        new.log_alpha = self.log_alpha.expand(batch_shape + self.event_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new


class GumbelSinkhorn(_PerturbedScores):
    """Gumbel-Sinkhorn distribution: ``S((log_alpha + G) / tau)``, reparameterised.

    >>> import torch
    >>> q = GumbelSinkhorn(torch.randn(5, 5), tau=0.1, n_iter=50)
    >>> P = q.rsample((2,), generator=torch.Generator().manual_seed(0))
    >>> P.shape, bool(torch.allclose(P.sum(-2), torch.ones(2, 5), atol=1e-4))
    (torch.Size([2, 5, 5]), True)
    >>> mask = ~torch.eye(3, dtype=torch.bool)          # no neuron keeps its own index
    >>> bool((GumbelSinkhorn(torch.zeros(3, 3), mask=mask).rsample().diagonal() == 0).all())
    True

    Shapes: ``log_alpha`` ``(*batch, N, N)``; ``tau`` a number or a tensor broadcastable to the
    batch shape; ``mask`` bool, broadcastable to ``log_alpha``. ``event_shape`` is ``(N, N)``.
    ``rsample`` is differentiable with respect to ``log_alpha`` and ``tau``; ``n_iter`` Sinkhorn
    iterations (the last one normalises columns). ``hard`` is the Gumbel-Matching distribution
    with the same scores (the zero-temperature limit).
    """

    arg_constraints = {
        "log_alpha": perm_constraints.score_matrix,
        "tau": constraints.positive,
    }
    support = perm_constraints.doubly_stochastic
    has_rsample = True

    def __init__(
        self,
        log_alpha: torch.Tensor,
        tau=1.0,
        *,
        n_iter: int = 20,
        mask: torch.Tensor | None = None,
        validate_args: bool | None = None,
    ):
        _checks.tensor(log_alpha, "log_alpha", min_dim=2, floating=True)
        if isinstance(tau, bool) or not isinstance(tau, numbers.Real | torch.Tensor):
            raise InvalidTypeError(f"tau must be a number or a tensor, got {type(tau).__name__}")
        tau = torch.as_tensor(tau, dtype=log_alpha.dtype, device=log_alpha.device)
        self.n_iter = _checks.count(n_iter, "n_iter")
        super().__init__(log_alpha, mask, tau.shape, validate_args, tau=tau)

    def rsample(self, sample_shape=_NO_SAMPLES, *, generator: torch.Generator | None = None):
        """Soft samples ``(*sample_shape, *batch_shape, N, N)``; ``generator`` for
        reproducible noise (default: torch's global generator)."""
        scores = self._noisy_scores(sample_shape, generator) / self.tau[..., None, None]
        return sinkhorn(scores, n_iter=self.n_iter, mask=self.allowed)

    def expand(self, batch_shape, _instance=None):
        new = self._expand_scores(GumbelSinkhorn, batch_shape, _instance)
        new.tau = self.tau.expand(new.batch_shape)
        new.n_iter = self.n_iter
        return new

    @property
    def hard(self) -> GumbelMatching:
        """The Gumbel-Matching distribution with the same scores."""
        return GumbelMatching(self.log_alpha, validate_args=False)


class GumbelMatching(_PerturbedScores):
    """Gumbel-Matching distribution: the permutation matrix ``M(log_alpha + G)``.

    >>> import torch
    >>> p = GumbelMatching(torch.zeros(4, 4))
    >>> P = p.sample((3,), generator=torch.Generator().manual_seed(0))
    >>> P.shape, bool((P.sum(-1) == 1).all() and (P.sum(-2) == 1).all())
    (torch.Size([3, 4, 4]), True)
    >>> GumbelMatching(torch.tensor([[0.0, 5.0], [1.0, 0.0]])).mode
    tensor([[0., 1.],
            [1., 0.]])

    Shapes as ``GumbelSinkhorn``. ``sample`` gives permutation matrices (not differentiable),
    ``sample_indices`` the same draws as ``perm`` vectors ``(*sample_shape, *batch_shape, N)``
    (``perm[i]`` is the column of row ``i``); ``mode`` is the matching of ``log_alpha``. With all
    scores equal, samples are uniform over the allowed permutations. A mask that allows no
    complete assignment is a ValueError when sampling.
    """

    support = perm_constraints.permutation_matrix

    def __init__(
        self,
        log_alpha: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        validate_args: bool | None = None,
    ):
        super().__init__(log_alpha, mask, torch.Size(), validate_args)

    def sample_indices(self, sample_shape=_NO_SAMPLES, *, generator=None) -> torch.Tensor:
        """Hard samples as index vectors ``(*sample_shape, *batch_shape, N)``, int64."""
        with torch.no_grad():
            scores = self._noisy_scores(sample_shape, generator)
            return matching(scores.masked_fill(~self.allowed, _NEG_INF))

    def sample(self, sample_shape=_NO_SAMPLES, *, generator=None) -> torch.Tensor:
        """Permutation matrices ``(*sample_shape, *batch_shape, N, N)`` in ``log_alpha``'s
        dtype."""
        perm = self.sample_indices(sample_shape, generator=generator)
        return permutation_matrix(perm, dtype=self.log_alpha.dtype)

    @property
    def mode(self) -> torch.Tensor:
        return permutation_matrix(matching(self.log_alpha), dtype=self.log_alpha.dtype)

    def expand(self, batch_shape, _instance=None):
        return self._expand_scores(GumbelMatching, batch_shape, _instance)
