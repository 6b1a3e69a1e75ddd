"""Datasets and jigsaw puzzles: MNIST / Fashion-MNIST IDX files and cutting images into pieces.

>>> import torch
>>> from gumbel_sinkhorn.data import make_puzzles, unscramble
>>> puzzles = make_puzzles(torch.rand(4, 1, 28, 28), 2)
>>> torch.equal(unscramble(puzzles.scrambled, puzzles.perm), puzzles.pieces)
True
"""

from ._files import CorruptFileError, DatasetNotFoundError, cache_dir
from .mnist import load_fashion_mnist, load_idx_dataset, load_mnist, read_idx
from .puzzles import (
    Puzzles,
    assemble_pieces,
    cut_pieces,
    fit_to_grid,
    make_puzzles,
    scramble,
    unscramble,
)

__all__ = [
    "CorruptFileError",
    "DatasetNotFoundError",
    "Puzzles",
    "assemble_pieces",
    "cache_dir",
    "cut_pieces",
    "fit_to_grid",
    "load_fashion_mnist",
    "load_idx_dataset",
    "load_mnist",
    "make_puzzles",
    "read_idx",
    "scramble",
    "unscramble",
]
