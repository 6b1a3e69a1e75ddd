"""Distributions over permutations in the conventions of ``torch.distributions``.

>>> import torch
>>> from torch.distributions import kl_divergence
>>> from gumbel_sinkhorn.distributions import GumbelSinkhorn
>>> q = GumbelSinkhorn(torch.randn(2, 4, 4), tau=0.5)
>>> q.rsample((3,)).shape                          # sample_shape + batch_shape + event_shape
torch.Size([3, 2, 4, 4])
>>> kl_divergence(q, GumbelSinkhorn(torch.zeros(4, 4), tau=0.5)).shape
torch.Size([2])
"""

from .constraints import doubly_stochastic, permutation_matrix, score_matrix
from .gumbel_sinkhorn import GumbelMatching, GumbelSinkhorn
from .kl import gumbel_score_kl

__all__ = [
    "GumbelMatching",
    "GumbelSinkhorn",
    "doubly_stochastic",
    "gumbel_score_kl",
    "permutation_matrix",
    "score_matrix",
]
