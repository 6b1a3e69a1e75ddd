"""Datasets and jigsaw puzzles: MNIST, Fashion-MNIST, embedded digits, image folders; pieces.

>>> import torch
>>> from gumbel_sinkhorn.data import load_dataset, make_puzzles, unscramble
>>> data = load_dataset("digits", "test")                 # embedded: no download
>>> gen = torch.Generator().manual_seed(0)
>>> puzzles = make_puzzles(data.normalize(data.images), 2, generator=gen)
>>> puzzles.scrambled.shape
torch.Size([360, 4, 1, 4, 4])
>>> torch.equal(unscramble(puzzles.scrambled, puzzles.perm), puzzles.pieces)
True
"""

from ..runs import ENV_VAR
from ._files import CorruptFileError, DatasetNotFoundError, cache_dir
from .datasets import NAMES, ImageDataset, folder_split, load_dataset, normalize
from .digits import load_digits
from .images import image_files, load_image, load_image_folder, resize_images, save_image
from .mnist import load_fashion_mnist, load_idx_dataset, load_mnist, read_idx
from .puzzles import (
    FIT_MODES,
    ImageFit,
    Puzzles,
    assemble_pieces,
    cut_pieces,
    fit_image,
    fit_to_grid,
    make_puzzles,
    random_shift,
    scramble,
    unfit_image,
    unscramble,
)

__all__ = [
    "ENV_VAR",
    "FIT_MODES",
    "NAMES",
    "CorruptFileError",
    "DatasetNotFoundError",
    "ImageDataset",
    "ImageFit",
    "Puzzles",
    "assemble_pieces",
    "cache_dir",
    "cut_pieces",
    "fit_image",
    "fit_to_grid",
    "folder_split",
    "image_files",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_idx_dataset",
    "load_image",
    "load_image_folder",
    "load_mnist",
    "make_puzzles",
    "random_shift",
    "normalize",
    "read_idx",
    "resize_images",
    "save_image",
    "scramble",
    "unfit_image",
    "unscramble",
]
