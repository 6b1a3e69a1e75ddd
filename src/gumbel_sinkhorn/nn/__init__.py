"""Neural network modules built on the operators: Sinkhorn networks."""

from .jigsaw import SinkhornPieceNet
from .sorting import AnchorSortingNet, SortingMLP, standardize

__all__ = ["AnchorSortingNet", "SinkhornPieceNet", "SortingMLP", "standardize"]
