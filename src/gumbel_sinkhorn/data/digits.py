"""The embedded default dataset: 1,797 handwritten digits, 8×8, shipped inside the package.

They are the test set of the UCI "Optical Recognition of Handwritten Digits" data (the copy that
scikit-learn bundles; ``scripts/make_digits.py`` wrote ``digits.npz`` from it), so jigsaw puzzles
can run with no download and no configured data. Pixel counts 0..16 are scaled to 0..255.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import InvalidValueError
from ._files import CorruptFileError
from .mnist import SPLITS

DIGITS_FILE = Path(__file__).with_name("digits.npz")
N_TRAIN = 1437  # the first 1,437 images train, the last 360 test (an 80/20 split)


def load_digits(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """The embedded digits: images uint8 ``(N, 8, 8)`` in 0..255 and labels int64 ``(N,)``.

    >>> images, labels = load_digits("test")
    >>> images.shape, images.dtype, int(images.max()), labels[:5].tolist()
    (torch.Size([360, 8, 8]), torch.uint8, 255, [2, 3, 4, 5, 6])

    ``split``: "train" (the first 1,437 images) or "test" (the last 360).
    """
    if split not in SPLITS:
        raise InvalidValueError(f"split must be one of {SPLITS}, got {split!r}")
    try:  # the zip's CRC-32 checks every byte
        with np.load(DIGITS_FILE, allow_pickle=False) as data:
            counts, labels = data["images"], data["labels"]
    except (zipfile.BadZipFile, zlib.error, KeyError, ValueError, EOFError) as err:
        raise CorruptFileError(
            f"the embedded digits file {DIGITS_FILE} is damaged ({err}): reinstall gumbel-sinkhorn"
        ) from err
    images = (counts.astype(np.float32) * (255 / 16)).round().astype(np.uint8)
    part = slice(None, N_TRAIN) if split == "train" else slice(N_TRAIN, None)
    return torch.from_numpy(images[part]), torch.from_numpy(labels[part].astype(np.int64))
