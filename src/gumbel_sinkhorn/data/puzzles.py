"""Jigsaw puzzles: cut images into a g×g grid of pieces, scramble them, put them back.

All functions work on whole batches at once (no loop over images) with any leading batch axes:
images are ``(..., C, H, W)``, pieces ``(..., N, C, H/g, W/g)`` with ``N = g*g`` numbered row-major
(piece ``k`` is grid row ``k // g``, column ``k % g``).

Permutation convention (as in ``gumbel_sinkhorn.ops``): ``scrambled[..., j] =
pieces[..., perm[j]]``, so with ``P = permutation_matrix(perm)``, ``scrambled = P @ pieces`` and
``pieces = Pᵀ @ scrambled``: a Sinkhorn network that predicts ``P`` from the scrambled pieces
reconstructs with ``Pᵀ``, and a hard prediction ``perm`` is undone with
``unscramble(scrambled, perm)``.

Images whose sides are not multiples of the grid (MNIST's 28 for a 3×3, 5×5 or 6×6 grid) must be
fitted first, with ``fit_to_grid`` (or the ``fit`` option of ``make_puzzles``):

- ``"pad"``: add a constant border up to the next multiple (28 -> 30 for g = 3, 5, 6: pieces of
  10, 6, 5 pixels). Keeps every pixel; the border is background for MNIST when padding the raw
  uint8 images with 0 (pad *before* normalising, or pass the normalised background as ``value``).
- ``"crop"``: cut the centre down to the previous multiple (28 -> 27, 25, 24). Loses a thin border,
  which on MNIST is blank (the digits sit in the central 20×20), and keeps pieces smaller.
- ``"resize"``: rescale (bilinear, antialiased) to the nearest multiple (28 -> 27, 30, 30).
  Changes every pixel slightly; the one choice for images with content up to the edges that must
  not lose any.

To give a model one image of any size, ``fit_image`` prepares it exactly as the model's training
images were (its ``fit``), and ``unfit_image`` brings the solved image back to the size it came in:
an MNIST digit of 28×28 is padded to 30×30 for a 3×3 model and comes back as 28×28, pixel for pixel
when the puzzle is solved. Only an image of another size than the training images is resized (and
resized back: then the result cannot be pixel-exact).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .. import _checks
from ..configs.jigsaw import FIT_MODES
from ..errors import InvalidValueError
from ..ops import permute, place, random_permutation
from .images import resize_images


class ImageFit(NamedTuple):
    """How ``fit_image`` brought images to a model's input shape: what ``unfit_image`` undoes.

    ``size``: the images' own ``(H, W)``; ``how``: "none" (already the model's shape), "pad",
    "crop" or "resize"; ``top``, ``left``: where the smaller of the two images sits in the larger
    ("pad": the given image in the padded one, "crop": the kept centre in the given image);
    ``original``: the given images ("crop" only: their border, outside the puzzle, is put back).
    """

    size: tuple[int, int]
    how: str
    top: int = 0
    left: int = 0
    original: torch.Tensor | None = None

    @property
    def exact(self) -> bool:
        """Whether ``unfit_image`` gives back the given pixels (all but "resize")."""
        return self.how != "resize"


class Puzzles(NamedTuple):
    """A batch of puzzles: the ordered pieces, the scrambled pieces and the permutation used."""

    pieces: torch.Tensor
    scrambled: torch.Tensor
    perm: torch.Tensor


def cut_pieces(images: torch.Tensor, grid: int) -> torch.Tensor:
    """Cut images into ``grid × grid`` pieces, numbered row-major.

    >>> import torch
    >>> image = torch.arange(16).reshape(1, 1, 4, 4)         # (B, C, H, W)
    >>> pieces = cut_pieces(image, 2)
    >>> pieces.shape
    torch.Size([1, 4, 1, 2, 2])
    >>> pieces[0, 1, 0]                                       # top right
    tensor([[2, 3],
            [6, 7]])

    Shapes: ``(..., C, H, W)`` in, ``(..., grid**2, C, H // grid, W // grid)`` out. ``H`` and ``W``
    must be multiples of ``grid`` (see ``fit_to_grid``).
    """
    grid = _grid(images, grid)
    *batch, c, h, w = images.shape
    if h % grid or w % grid:
        raise InvalidValueError(
            f"image size {h}×{w} is not a multiple of the grid {grid}: fit the images first with "
            f"fit_to_grid(images, {grid}, mode=...) (one of {FIT_MODES})"
        )
    ph, pw = h // grid, w // grid
    x = images.reshape(*batch, c, grid, ph, grid, pw)
    k = len(batch)
    x = x.permute(*range(k), k + 1, k + 3, k, k + 2, k + 4)  # (..., g, g, C, ph, pw)
    return x.reshape(*batch, grid * grid, c, ph, pw)


def assemble_pieces(pieces: torch.Tensor) -> torch.Tensor:
    """Put row-major pieces back into images: the inverse of ``cut_pieces``.

    >>> import torch
    >>> images = torch.rand(3, 2, 6, 9)
    >>> torch.equal(assemble_pieces(cut_pieces(images, 3)), images)
    True

    Shapes: ``(..., N, C, h, w)`` in with ``N = g*g`` a square, ``(..., C, g*h, g*w)`` out.
    """
    _checks.tensor(pieces, "pieces", min_dim=4)
    *batch, n, c, ph, pw = pieces.shape
    grid = round(n**0.5)
    if grid * grid != n or n == 0:
        raise InvalidValueError(
            f"the number of pieces must be a square g*g, got {n} (pieces of shape "
            f"{tuple(pieces.shape)}, expected (..., N, C, h, w))"
        )
    k = len(batch)
    x = pieces.reshape(*batch, grid, grid, c, ph, pw)
    x = x.permute(*range(k), k + 2, k, k + 3, k + 1, k + 4)  # (..., C, g, ph, g, pw)
    return x.reshape(*batch, c, grid * ph, grid * pw)


def scramble(
    pieces: torch.Tensor, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle each item's pieces with its own uniformly random permutation.

    >>> import torch
    >>> pieces = torch.arange(8.).reshape(2, 4, 1, 1, 1)      # 2 puzzles of 4 one-pixel pieces
    >>> scrambled, perm = scramble(pieces, generator=torch.Generator().manual_seed(0))
    >>> torch.equal(scrambled.flatten(1), perm + torch.tensor([[0], [4]]))
    True
    >>> torch.equal(unscramble(scrambled, perm), pieces)
    True

    Shapes: ``(..., N, C, h, w)`` in; ``scrambled`` of the same shape and ``perm`` int64
    ``(..., N)`` out, with ``scrambled[..., j, :, :, :] = pieces[..., perm[j], :, :, :]``: scrambled
    piece ``j`` goes back to position ``perm[j]``, the answer ``matching`` would give. The same
    ``generator`` state gives the same permutations (drawn on the generator's device).
    """
    _checks.tensor(pieces, "pieces", min_dim=4)
    *batch, n = pieces.shape[:-3]
    device = None if generator is not None else pieces.device
    perm = random_permutation(*batch, n, generator=generator, device=device)
    perm = perm.to(pieces.device)
    return permute(pieces, perm), perm


def unscramble(scrambled: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Undo ``scramble``: put each piece back where ``perm`` says it came from.

    >>> import torch
    >>> scrambled = torch.tensor([[30., 10., 20.]]).reshape(1, 3, 1, 1, 1)
    >>> unscramble(scrambled, torch.tensor([[2, 0, 1]])).flatten()
    tensor([10., 20., 30.])

    Shapes: ``scrambled`` ``(..., N, C, h, w)``, ``perm`` ``(..., N)``; out like ``scrambled``,
    ``out[..., perm[j], ...] = scrambled[..., j, ...]`` (that is ``Pᵀ @ scrambled``, and
    ``place(scrambled, perm)``): ``perm[j]`` is where scrambled piece ``j`` goes, the way
    ``matching`` and ``model.solve`` answer.
    """
    _checks.tensor(scrambled, "scrambled", min_dim=4)
    _checks.permutation(perm)
    if perm.shape != scrambled.shape[:-3]:
        raise InvalidValueError(
            f"perm must have shape {tuple(scrambled.shape[:-3])} (the scrambled pieces' leading "
            f"axes), got {tuple(perm.shape)}"
        )
    return place(scrambled, perm)


def fit_to_grid(
    images: torch.Tensor, grid: int, *, mode: str = "pad", value: float = 0.0
) -> torch.Tensor:
    """Make the image sides multiples of ``grid`` by padding, centre-cropping or resizing.

    >>> import torch
    >>> images = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    >>> [tuple(fit_to_grid(images, 3, mode=m).shape[-2:]) for m in ("pad", "crop", "resize")]
    [(30, 30), (27, 27), (27, 27)]

    Shapes: ``(..., C, H, W)`` in, ``(..., C, H', W')`` out, same dtype and device; images already
    fitting are returned as they are. ``"pad"`` adds a border of ``value`` up to the next multiple
    (split evenly, the extra pixel at the bottom/right); ``"crop"`` keeps the centre at the previous
    multiple (at least ``grid``); ``"resize"`` rescales to the nearest multiple (bilinear,
    antialiased; integer images are rounded back to their dtype). The module's docstring compares
    them.
    """
    grid = _grid(images, grid)
    if mode not in FIT_MODES:
        raise InvalidValueError(f"mode must be one of {FIT_MODES}, got {mode!r}")
    h, w = images.shape[-2:]
    if h % grid == 0 and w % grid == 0:
        return images
    if mode == "pad":
        dh, dw = -h % grid, -w % grid
        return F.pad(images, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), value=value)
    if mode == "crop":
        if h < grid or w < grid:
            raise InvalidValueError(f"cannot crop a {h}×{w} image to a multiple of the grid {grid}")
        top, left = h % grid // 2, w % grid // 2
        return images[..., top : top + h - h % grid, left : left + w - w % grid]
    size = (max(grid, round(h / grid) * grid), max(grid, round(w / grid) * grid))
    return resize_images(images, size)


def fit_image(
    images: torch.Tensor, grid: int, shape: tuple[int, int], *, mode: str = "pad"
) -> tuple[torch.Tensor, ImageFit]:
    """Bring images to a model's input ``shape`` the way its training images were brought there.

    >>> import torch
    >>> digit = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    >>> fitted, fit = fit_image(digit, 3, (30, 30), mode="pad")     # as MNIST 3x3 was trained
    >>> tuple(fitted.shape), fit.how, fit.exact
    ((1, 30, 30), 'pad', True)
    >>> torch.equal(unfit_image(fitted, fit), digit)
    True
    >>> fit_image(digit, 3, (60, 60))[1].how                       # another size: resized
    'resize'

    ``images``: ``(..., C, H, W)``; ``shape``: the ``(H', W')`` of the model's input (its
    training images once fitted to the grid); ``mode``: the ``fit_to_grid`` mode the model was
    trained with. Images already of that shape are left as they are; images that ``mode`` brings
    to that shape (28×28 MNIST digits padded to 30×30) are fitted as in training, pixel for
    pixel (pad with 0: raw uint8 images, as training pads them); any other size is resized to
    ``shape`` (bilinear, antialiased), and ``fit.exact`` is False. Returns the fitted images and
    the ``ImageFit`` that ``unfit_image`` needs.
    """
    grid = _grid(images, grid)
    if mode not in FIT_MODES:
        raise ValueError(f"mode must be one of {FIT_MODES}, got {mode!r}")
    shape = tuple(_checks.count(side, "every side of shape") for side in shape)
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), got {shape}")
    size = tuple(images.shape[-2:])
    if size == shape:
        return images, ImageFit(size, "none")
    if mode == "pad" or (mode == "crop" and min(size) >= grid):
        fitted = fit_to_grid(images, grid, mode=mode)
        if tuple(fitted.shape[-2:]) == shape:
            (h, w), (h2, w2) = size, shape
            top, left = abs(h2 - h) // 2, abs(w2 - w) // 2
            return fitted, ImageFit(size, mode, top, left, images if mode == "crop" else None)
    return resize_images(images, shape), ImageFit(size, "resize")


def unfit_image(images: torch.Tensor, fit: ImageFit) -> torch.Tensor:
    """Undo ``fit_image``: images of the model's shape back at the size they were given.

    >>> import torch
    >>> image = torch.arange(16, dtype=torch.uint8).reshape(1, 4, 4)
    >>> fitted, fit = fit_image(image, 3, (3, 3), mode="crop")     # the centre 3x3 is the puzzle
    >>> torch.equal(unfit_image(fitted, fit), image)               # the border is put back
    True

    ``images``: ``(..., C, H', W')``, e.g. the solved puzzle; out ``(..., C, H, W)`` with ``(H, W)``
    = ``fit.size``: "pad" cuts the border off again, "crop" puts the solved centre back into the
    given images' border (outside the puzzle, never moved), "resize" resizes back (approximate).
    """
    _checks.tensor(images, "images", min_dim=3)
    (h, w), top, left = fit.size, fit.top, fit.left
    if fit.how == "none":
        return images
    if fit.how == "pad":
        return images[..., top : top + h, left : left + w]
    if fit.how == "crop":
        out = fit.original.to(images.dtype, copy=True)
        out[..., top : top + images.shape[-2], left : left + images.shape[-1]] = images
        return out
    return resize_images(images, (h, w))


def random_shift(
    images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Move each image by its own random offset of up to ``max_shift`` pixels along each axis.

    The border pixels are repeated into the space the image leaves (MNIST's border is background,
    so a digit just moves); shapes, dtype and device stay. A training augmentation: the same
    digit at a new place makes a new puzzle.

    >>> import torch
    >>> images = torch.zeros(4, 1, 8, 8)
    >>> images[:, :, 3, 3] = 1
    >>> moved = random_shift(images, 2, torch.Generator().manual_seed(0))
    >>> moved.shape, moved.sum().item(), bool((moved[:, 0, 1:6, 1:6].sum((1, 2)) == 1).all())
    (torch.Size([4, 1, 8, 8]), 4.0, True)
    """
    max_shift = _checks.count(max_shift, "max_shift", minimum=0)
    if max_shift == 0:
        return images
    b, _, h, w = images.shape
    padded = F.pad(images.float(), (max_shift,) * 4, mode="replicate").to(images.dtype)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, b, 1), generator=generator)
    rows = (offsets[0] + torch.arange(h)).to(images.device)  # (B, H)
    cols = (offsets[1] + torch.arange(w)).to(images.device)  # (B, W)
    index = torch.arange(b, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def make_puzzles(
    images: torch.Tensor,
    grid: int,
    *,
    generator: torch.Generator | None = None,
    fit: str | None = None,
) -> Puzzles:
    """Cut a batch of images into pieces and scramble each image's pieces.

    >>> import torch
    >>> images = torch.rand(5, 1, 28, 28)
    >>> puzzles = make_puzzles(images, 3, fit="crop", generator=torch.Generator().manual_seed(0))
    >>> puzzles.scrambled.shape, puzzles.perm.shape
    (torch.Size([5, 9, 1, 9, 9]), torch.Size([5, 9]))
    >>> torch.equal(unscramble(puzzles.scrambled, puzzles.perm), puzzles.pieces)
    True

    ``fit`` (None, or a ``fit_to_grid`` mode) fits images whose sides are not multiples of ``grid``
    (None: they must be). Returns ``Puzzles(pieces, scrambled, perm)``, see ``cut_pieces`` and
    ``scramble`` for the shapes.
    """
    if fit is not None:
        images = fit_to_grid(images, grid, mode=fit)
    pieces = cut_pieces(images, grid)
    scrambled, perm = scramble(pieces, generator=generator)
    return Puzzles(pieces, scrambled, perm)


def _grid(images, grid) -> int:
    _checks.tensor(images, "images", min_dim=3)
    return _checks.count(grid, "grid")
