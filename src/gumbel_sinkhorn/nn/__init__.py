"""Neural network modules built on the operators: Sinkhorn networks."""

from .jigsaw import SinkhornPieceNet

__all__ = ["SinkhornPieceNet"]
