"""Pure tensor operators: no I/O, no nn.Module; depend on torch (and SciPy for matching)."""

from .gumbel import gumbel_matching, gumbel_sinkhorn, sample_gumbel
from .matching import matching
from .permutation import (
    invert_permutation,
    permutation_indices,
    permutation_matrix,
    permute,
    place,
    random_permutation,
)
from .sinkhorn import SinkhornConvergenceWarning, SinkhornInfo, log_sinkhorn, sinkhorn

__all__ = [
    "SinkhornConvergenceWarning",
    "SinkhornInfo",
    "gumbel_matching",
    "gumbel_sinkhorn",
    "invert_permutation",
    "log_sinkhorn",
    "matching",
    "permutation_indices",
    "permutation_matrix",
    "permute",
    "place",
    "random_permutation",
    "sample_gumbel",
    "sinkhorn",
]
