"""gumbel-sinkhorn: learn latent permutations with Gumbel-Sinkhorn networks (Mena et al., 2018).

>>> import torch, gumbel_sinkhorn as gs
>>> log_alpha = torch.randn(8, 5, 5)
>>> P = gs.gumbel_sinkhorn(log_alpha, tau=0.5)           # soft, differentiable samples
>>> perm = gs.matching(log_alpha)                         # hard assignment, (8, 5) int64
>>> bool((gs.permutation_matrix(perm).sum(-2) == 1).all())
True
"""

from .metrics import kendall_tau, l1_error, l2_error, prop_any_wrong, prop_wrong
from .ops import (
    SinkhornConvergenceWarning,
    SinkhornInfo,
    gumbel_matching,
    gumbel_sinkhorn,
    invert_permutation,
    log_sinkhorn,
    matching,
    permutation_indices,
    permutation_matrix,
    permute,
    place,
    random_permutation,
    sample_gumbel,
    sinkhorn,
)

__version__ = "0.1.0"

__all__ = [
    "SinkhornConvergenceWarning",
    "SinkhornInfo",
    "gumbel_matching",
    "gumbel_sinkhorn",
    "invert_permutation",
    "kendall_tau",
    "l1_error",
    "l2_error",
    "log_sinkhorn",
    "matching",
    "permutation_indices",
    "permutation_matrix",
    "permute",
    "place",
    "prop_any_wrong",
    "prop_wrong",
    "random_permutation",
    "sample_gumbel",
    "sinkhorn",
]
