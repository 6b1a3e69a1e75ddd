"""Sets of multi-digit MNIST numbers to rank: the benchmark of NeuralSort (Grover et al. 2019).

An *item* is ``digits`` MNIST images side by side, a ``28 x 28·digits`` picture of a number
(leading zeros allowed: 0042 is 42). A *set* is ``n`` items showing ``n`` distinct numbers; the
task is to order every set by value, knowing only the true order of the training sets.

Splits, as in the protocol: ``"train"`` = the first 55,000 images of MNIST's training file,
``"val"`` = its last 5,000, ``"test"`` = MNIST's test file. Items never mix splits.

How a set is drawn: its ``n`` numbers uniformly among those the split can show, without
replacement (so they are distinct), then every digit of every number an image drawn uniformly
among the split's images of that digit. Only image indices are drawn here (``DigitSets``);
:func:`compose` turns them into pictures when they are needed.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch

from .. import _checks
from ..errors import InvalidValueError
from .mnist import STATS, load_mnist

SPLITS = ("train", "val", "test")
TRAIN_IMAGES = 55_000  # the first 55,000 MNIST training images train; the last 5,000 validate


class DigitSplit(NamedTuple):
    """One split's digit images, uint8 ``(N, 28, 28)``, and their labels, int64 ``(N,)``."""

    images: torch.Tensor
    labels: torch.Tensor


class DigitSets(NamedTuple):
    """``n_sets`` sets of ``n`` items of ``digits`` digits each, as indices into a split.

    ``index[s, i, p]``: the image (index into the split) of digit ``p`` (0 = leading) of item ``i``
    of set ``s``; ``numbers[s, i]``: the value item ``i`` shows; ``ranks[s, i]``: its rank in its
    set, 0 for the smallest. All int64, ``index`` ``(n_sets, n, digits)``, the others
    ``(n_sets, n)``.
    """

    index: torch.Tensor
    numbers: torch.Tensor
    ranks: torch.Tensor


def load_split(split: str, *, root: str | os.PathLike | None = None) -> DigitSplit:
    """The images and labels of one split of the protocol: "train", "val" or "test".

    >>> train, val = load_split("train"), load_split("val")
    >>> len(train.labels), len(val.labels), len(load_split("test").labels)
    (55000, 5000, 10000)

    Read with :func:`gumbel_sinkhorn.data.load_mnist` (``root``, else ``$GUMBEL_SINKHORN_DATA``,
    the user cache, the mirrors).
    """
    if split not in SPLITS:
        raise InvalidValueError(f"split must be one of {SPLITS}, got {split!r}")
    images, labels = load_mnist("test" if split == "test" else "train", root=root)
    if split == "train":
        images, labels = images[:TRAIN_IMAGES], labels[:TRAIN_IMAGES]
    elif split == "val":
        images, labels = images[TRAIN_IMAGES:], labels[TRAIN_IMAGES:]
    return DigitSplit(images, labels)


def distinct_numbers(labels: torch.Tensor, digits: int) -> int:
    """How many distinct ``digits``-digit numbers a split with these labels can show.

    >>> distinct_numbers(torch.tensor([0, 1, 1, 7]), 2)     # 00, 01, 07, 10, ..., 77
    9
    """
    digits = _checks.count(digits, "digits (per number)")
    return len(torch.unique(labels)) ** digits


def sample_sets(
    split: DigitSplit,
    n_sets: int,
    n: int,
    digits: int = 4,
    *,
    generator: torch.Generator | None = None,
) -> DigitSets:
    """Draw ``n_sets`` sets of ``n`` distinct ``digits``-digit numbers from ``split``.

    >>> split = load_split("val")
    >>> sets = sample_sets(split, 2, 5, generator=torch.Generator().manual_seed(0))
    >>> sets.index.shape, sets.numbers.shape
    (torch.Size([2, 5, 4]), torch.Size([2, 5]))
    >>> digits = split.labels[sets.index]                    # (2, 5, 4) digit labels
    >>> torch.equal(sets.numbers, (digits * torch.tensor([1000, 100, 10, 1])).sum(-1))
    True
    >>> sorted(sets.ranks[0].tolist())
    [0, 1, 2, 3, 4]

    The same generator state gives the same sets, so a seed fixes a test set for good.
    Raises ``InvalidValueError`` for ``n < 2``, ``digits < 1``, or ``n`` larger than the number of
    distinct numbers the split can show (``10**digits`` for a full split).
    """
    n_sets = _checks.count(n_sets, "n_sets", minimum=0)
    n = _checks.count(n, "n (items per set)", minimum=2)
    digits = _checks.count(digits, "digits (per number)")
    values = torch.unique(split.labels)  # the digits this split has images of, increasing
    available = len(values) ** digits
    if n > available:
        raise InvalidValueError(
            f"a set of {n} distinct {digits}-digit numbers needs at least {n} distinct numbers, "
            f"but this split (images of {len(values)} digit value(s)) can show only {available}"
        )
    codes = _distinct_codes(n_sets, n, len(values), digits, generator)  # (n_sets, n) base-L codes
    places = len(values) ** torch.arange(digits - 1, -1, -1)
    positions = codes.unsqueeze(-1) // places % len(values)  # (n_sets, n, digits): value indices
    labels = values[positions]
    numbers = (labels * 10 ** torch.arange(digits - 1, -1, -1)).sum(-1)
    # a uniform image of each needed label: sort the split by label, pick an offset in its block
    order = torch.argsort(split.labels, stable=True)
    counts = torch.bincount(split.labels, minlength=10)[values]
    starts = torch.cumsum(counts, 0) - counts
    u = torch.rand(labels.shape, generator=generator, dtype=torch.float64)
    offset = (u * counts[positions]).long().clamp_max(counts[positions] - 1)
    index = order[starts[positions] + offset]
    ranks = numbers.argsort(-1).argsort(-1)
    return DigitSets(index, numbers, ranks)


def _distinct_codes(n_sets, n, base, digits, generator) -> torch.Tensor:
    """``(n_sets, n)`` distinct integers in ``[0, base**digits)``, each set uniform."""
    total = base**digits
    if n_sets == 0:
        return torch.zeros(0, n, dtype=torch.int64)
    if n * n > total:  # crowded: the first n of a uniform random order (argsort of noise)
        keys = torch.rand(n_sets, total, generator=generator)
        return keys.argsort(-1)[:, :n]
    # roomy: draw with replacement, redraw the sets that hold a repeated number (a set has none
    # with probability about exp(-n**2 / (2 total)) >= 0.6, so few rounds)
    codes = torch.empty(n_sets, n, dtype=torch.int64)
    todo = torch.arange(n_sets)
    while len(todo):
        draw = torch.randint(total, (len(todo), n), generator=generator)
        ok = (draw.sort(-1).values.diff(dim=-1) != 0).all(-1)
        codes[todo[ok]] = draw[ok]
        todo = todo[~ok]
    return codes


def compose(
    split: DigitSplit,
    index: torch.Tensor,
    *,
    shifts: torch.Tensor | None = None,
    normalize: bool = True,
) -> torch.Tensor:
    """The pictures of the items whose digit images are ``index``: ``(..., 28, 28·digits)``.

    >>> split = load_split("val")
    >>> sets = sample_sets(split, 3, 5, generator=torch.Generator().manual_seed(0))
    >>> compose(split, sets.index).shape
    torch.Size([3, 5, 28, 112])

    ``index`` is ``(..., digits)``. Float32, with MNIST's mean and standard deviation taken out
    (``normalize=True``), else in [0, 1]. Digit ``p`` fills columns ``28p`` to ``28p + 27``.
    ``shifts`` (``index.shape + (2,)``, integers), if given, moves each digit image within its
    cell first (:func:`translate`): the training pictures' augmentation.
    """
    _checks.tensor(index, "index", min_dim=1)
    images = split.images[index]  # (..., digits, 28, 28)
    if shifts is not None:
        if shifts.shape != (*index.shape, 2):
            raise InvalidValueError(
                f"shifts must have shape index.shape + (2,) = {(*index.shape, 2)}, "
                f"got {tuple(shifts.shape)}"
            )
        images = translate(images, shifts)
    pictures = images.float().div_(255)
    if normalize:
        mean, std = STATS["mnist"]
        pictures = pictures.sub_(mean).div_(std)
    *lead, digits, h, w = pictures.shape
    return pictures.movedim(-3, -2).reshape(*lead, h, digits * w)


def translate(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Each image of ``images`` ``(..., H, W)`` moved by its ``shifts[..., :] = (down, right)``.

    >>> image = torch.arange(1, 10).reshape(3, 3)
    >>> translate(image, torch.tensor([1, -1]))      # one row down, one column left; zeros enter
    tensor([[0, 0, 0],
            [2, 3, 0],
            [5, 6, 0]])

    Pixels moved out of the frame are lost, the ones that enter are 0 (the background of MNIST).
    ``shifts`` are integers, shape ``images.shape[:-2] + (2,)``.
    """
    if shifts.dtype.is_floating_point or shifts.dtype == torch.bool:
        raise InvalidValueError(f"shifts must be integers, got {shifts.dtype}")
    *lead, h, w = images.shape
    flat, moves = images.reshape(-1, h, w), shifts.reshape(-1, 2).long()
    k = int(moves.abs().max()) if moves.numel() else 0
    padded = torch.nn.functional.pad(flat, (k, k, k, k))
    rows = (k - moves[:, :1]) + torch.arange(h)  # out[r, c] = image[r - down, c - right]
    cols = (k - moves[:, 1:]) + torch.arange(w)
    batch = torch.arange(len(flat))[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].reshape(images.shape)
