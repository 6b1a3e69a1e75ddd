"""The KL surrogate between two Gumbel-perturbed score distributions (closed form).

Neither Gumbel-Sinkhorn nor Gumbel-Matching has a tractable density. Both are functions of the
perturbed scores ``X = (log_alpha + G) / tau``, whose entries are independent Gumbels with location
``log_alpha / tau`` and scale ``1 / tau``; by the data-processing inequality the KL between the
score distributions bounds the KL between the matrices from above. It is what
``torch.distributions.kl_divergence`` returns for two distributions of the same kind.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import register_kl

from .gumbel_sinkhorn import GumbelMatching, GumbelSinkhorn

_EULER_GAMMA = 0.57721566490153286


def gumbel_score_kl(log_alpha_q, tau_q, log_alpha_p, tau_p) -> torch.Tensor:
    """KL between the Gumbel-perturbed scores ``(a + G) / tau_q`` and ``(b + G) / tau_p``.

    >>> import torch
    >>> a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> gumbel_score_kl(a, 1.0, torch.zeros(2, 2), 1.0)         # 2 * (1 + exp(-1) - 1)
    tensor(0.7358)
    >>> float(gumbel_score_kl(a, 0.3, a, 0.3))
    0.0

    Shapes: scores ``(..., N, N)``, temperatures numbers or tensors of the batch shape; out the
    broadcast batch shape. Per entry, with ``r = tau_p / tau_q`` and ``d = a r - b``:
    ``-log r + gamma (r - 1) + exp(lgamma(1 + r) - d) - 1 + d`` (0 when the two are equal). An
    entry forbidden (``-inf``) in both adds 0; one forbidden in only one of them makes the KL
    ``+inf`` (the two score distributions then have disjoint supports).
    """
    tau_q = torch.as_tensor(tau_q, dtype=log_alpha_q.dtype, device=log_alpha_q.device)
    tau_p = torch.as_tensor(tau_p, dtype=log_alpha_q.dtype, device=log_alpha_q.device)
    r = (tau_p / tau_q)[..., None, None]
    allowed_q, allowed_p = log_alpha_q > -math.inf, log_alpha_p > -math.inf
    both = allowed_q & allowed_p
    a = torch.where(both, log_alpha_q, 0.0)
    b = torch.where(both, log_alpha_p, 0.0)
    d = a * r - b
    # expm1 keeps d + exp(-d) - 1 exact for small d (the usual case, r = 1)
    per_entry = -torch.log(r) + _EULER_GAMMA * (r - 1) + torch.expm1(torch.lgamma(1 + r) - d) + d
    per_entry = torch.where(both, per_entry, 0.0)
    kl = per_entry.sum((-1, -2))
    disjoint = (allowed_q != allowed_p).any(-1).any(-1)
    return torch.where(disjoint, math.inf, kl)


@register_kl(GumbelSinkhorn, GumbelSinkhorn)
def _kl_gumbel_sinkhorn(q: GumbelSinkhorn, p: GumbelSinkhorn) -> torch.Tensor:
    return gumbel_score_kl(q.log_alpha, q.tau, p.log_alpha, p.tau)


@register_kl(GumbelMatching, GumbelMatching)
def _kl_gumbel_matching(q: GumbelMatching, p: GumbelMatching) -> torch.Tensor:
    return gumbel_score_kl(q.log_alpha, 1.0, p.log_alpha, 1.0)
