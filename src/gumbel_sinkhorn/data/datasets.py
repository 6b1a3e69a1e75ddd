"""One way to load every kind of dataset: MNIST, Fashion-MNIST, embedded digits, image folders."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import _checks
from ..configs.jigsaw import DATASETS
from ..errors import InvalidValueError
from .digits import load_digits
from .images import image_files, load_image_folder, resize_images
from .mnist import STATS, load_idx_dataset

NAMES = DATASETS
FOLDER_SPLITS = ("train", "test", "all")
FOLDER_TEST_SHARE = 0.1


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images uint8 ``(N, C, H, W)``, labels int64 ``(N,)`` (or None), and how to normalise them.

    >>> data = load_dataset("digits", "test")
    >>> len(data), tuple(data.images.shape[1:]), data.name
    (360, (1, 8, 8), 'digits')
    >>> x = data.normalize(data.images[:4])                 # float32, per-channel standardised
    >>> torch.equal(data.denormalize(x).mul(255).round().byte(), data.images[:4])
    True

    ``mean`` and ``std`` are per channel, of pixels scaled to [0, 1]: the training set's for the
    named datasets (MNIST: the tutorial's 0.1307, 0.3081), 0.5 and 0.5 for image folders.
    ``background`` is what a 0 pixel becomes once normalised (the value to pad with).
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def background(self) -> tuple[float, ...]:
        return tuple(-m / s for m, s in zip(self.mean, self.std, strict=True))

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images ``(..., C, H, W)`` -> float32 ``(images / 255 - mean) / std``."""
        return normalize(images, self.mean, self.std)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of ``normalize``: float images in [0, 1] (for figures), not clamped."""
        return denormalize(x, self.mean, self.std)


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 images ``(..., C, H, W)`` as float32 ``(images / 255 - mean) / std`` per channel.

    >>> normalize(torch.tensor([[[0, 255]]], dtype=torch.uint8), (0.1307,), (0.3081,))
    tensor([[[-0.4242,  2.8215]]])
    """
    _checks.tensor(images, "images", min_dim=3)
    if len(mean) != images.shape[-3] or len(std) != images.shape[-3]:
        raise InvalidValueError(
            f"mean and std need one value per channel: {images.shape[-3]} channels, got "
            f"{len(mean)} and {len(std)}"
        )
    x = images.float() / 255
    return (x - _per_channel(mean, x)) / _per_channel(std, x)


def denormalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """The inverse of :func:`normalize`: float pixels in [0, 1] (not clamped).

    >>> denormalize(torch.tensor([[[-0.4242, 2.8215]]]), (0.1307,), (0.3081,))
    tensor([[[0.0000, 1.0000]]])
    """
    return x * _per_channel(std, x) + _per_channel(mean, x)


def load_dataset(
    name: str | os.PathLike,
    split: str = "train",
    *,
    root: str | os.PathLike | None = None,
    download: bool = True,
    size: int | None = None,
    channels: int | None = None,
) -> ImageDataset:
    """A dataset by name ("mnist", "fashion-mnist", "digits") or a folder of images.

    >>> data = load_dataset("digits", size=24)       # the embedded 8×8 digits, upscaled
    >>> len(data), tuple(data.images.shape[1:]), data.labels[:3].tolist()
    (1437, (1, 24, 24), [0, 1, 2])

    - "mnist" / "fashion-mnist": the IDX files from ``root`` (else ``$GUMBEL_SINKHORN_DATA``),
      the user cache or the mirrors (``download``); see ``gumbel_sinkhorn.data.mnist``.
      Raises ``DatasetNotFoundError`` when unavailable: "digits" always is.
    - "digits": 1,797 8×8 digits inside the package (1,437 train, 360 test).
    - a folder: its images (``load_image_folder``), no labels. ``split`` "train" / "test" loads
      the subfolder of that name if there is one, else 90 % / 10 % of the files (every tenth,
      spread evenly, in sorted order, is a test file); "all" loads every file.

    ``size``: resize the images to ``size × size`` (folders: the central square of each image;
    default for folders: the smallest side). ``channels``: 1 or 3 (grey images are repeated to
    make 3; folders convert with Pillow); default: the data's own.
    """
    if channels not in (None, 1, 3):
        raise InvalidValueError(f"channels must be 1, 3 or None, got {channels!r}")
    if isinstance(name, str) and name in NAMES:
        if name == "digits":
            images, labels = load_digits(split)
            mean, std = _digits_stats()
        else:
            images, labels = load_idx_dataset(name, split, root=root, download=download)
            mean, std = STATS[name]
        images = images.unsqueeze(1)
        if size is not None:
            images = resize_images(images, _checks.count(size, "size"))
        n = channels or 1
        return ImageDataset(
            images.expand(-1, n, -1, -1).contiguous(), labels, (mean,) * n, (std,) * n, name
        )
    folder = Path(name)
    if not folder.is_dir():
        raise InvalidValueError(
            f"dataset must be one of {NAMES} or a folder of images, got {str(name)!r}"
        )
    files = folder_split(folder, split)
    if not files:
        raise InvalidValueError(_empty_split(folder, split))
    images = load_image_folder(folder, size=size, channels=channels, files=files)
    c = images.shape[1]
    return ImageDataset(images, None, (0.5,) * c, (0.5,) * c, f"{folder.name}/{split}")


def folder_split(folder: str | os.PathLike, split: str) -> list[Path]:
    """The files of an image folder that make up ``split`` ("train", "test" or "all").

    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> for i in range(20):
    ...     _ = (pathlib.Path(tmp.name) / f"{i:02d}.png").write_bytes(b"")
    >>> [p.name for p in folder_split(tmp.name, "test")]
    ['05.png', '15.png']
    >>> tmp.cleanup()

    If the folder has a ``train/`` or ``test/`` subfolder, those are the splits (both must
    exist); otherwise the test files are ``round(10 %)`` of the sorted files, at least one when
    there are two or more, evenly spread.
    """
    if split not in FOLDER_SPLITS:
        raise InvalidValueError(f"split must be one of {FOLDER_SPLITS}, got {split!r}")
    folder = Path(folder)
    if split != "all" and any((folder / s).is_dir() for s in ("train", "test")):
        if not (folder / split).is_dir():
            raise InvalidValueError(f"{folder} has a train/ or test/ subfolder but no {split}/")
        return image_files(folder / split)
    files = image_files(folder)
    if split == "all":
        return files
    n_test = max(1, round(FOLDER_TEST_SHARE * len(files))) if len(files) > 1 else 0
    test = {int((k + 0.5) * len(files) / n_test) for k in range(n_test)}
    return [f for i, f in enumerate(files) if (i in test) == (split == "test")]


def _empty_split(folder: Path, split: str) -> str:
    """What is wrong when a folder's ``split`` holds no files."""
    if any((folder / s).is_dir() for s in ("train", "test")):
        return f"{folder / split} holds no image files"
    n = len(image_files(folder))
    if n == 0:
        return f"no image files in {folder}"
    return (
        f"{folder} holds {n} image file{'s' if n > 1 else ''}, none left for the {split} split: "
        f"a held-out test split takes every tenth file and needs at least 2 files in all "
        f"(1 to train, 1 to test); add images, or put them into train/ and test/ subfolders"
    )


def _digits_stats() -> tuple[float, float]:
    x = load_digits("train")[0].double() / 255
    return round(x.mean().item(), 4), round(x.std().item(), 4)


def _per_channel(values, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).reshape(-1, 1, 1)
