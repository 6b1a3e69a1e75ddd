"""Image files as tensors (Pillow): a folder of pictures as a dataset, one picture in or out.

Images are uint8 tensors ``(C, H, W)`` (batches ``(N, C, H, W)``), ``C`` = 1 (grey) or 3 (RGB).
A folder's images are made the same size by cropping each to its central square and resizing that
to ``size × size`` (``size`` rounded down to a multiple of the puzzle grid).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import _checks, _extras
from ..errors import InvalidValueError, MissingFileError
from ..files import atomic_write

try:
    from PIL import Image, ImageOps, UnidentifiedImageError
except ImportError as err:
    raise _extras.missing("PIL", "gumbel_sinkhorn.data (image files)") from err

_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The files under ``folder`` (recursively, hidden ones skipped), in sorted order.

    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> for name in ("b.png", "a.jpg", ".DS_Store"):
    ...     _ = (pathlib.Path(tmp.name) / name).write_bytes(b"")
    >>> [p.name for p in image_files(tmp.name)]
    ['a.jpg', 'b.png']
    >>> tmp.cleanup()

    Raises ``FileNotFoundError`` if ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"image folder {folder} does not exist or is not a folder")
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def load_image(
    path: str | os.PathLike, *, size: int | None = None, channels: int | None = None
) -> torch.Tensor:
    """One image file as a uint8 tensor ``(C, H, W)``.

    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(tmp.name) / "grey.png"
    >>> save_image(torch.arange(12, dtype=torch.uint8).reshape(1, 3, 4), path)
    >>> load_image(path)
    tensor([[[ 0,  1,  2,  3],
             [ 4,  5,  6,  7],
             [ 8,  9, 10, 11]]], dtype=torch.uint8)
    >>> load_image(path, size=2, channels=3).shape
    torch.Size([3, 2, 2])
    >>> tmp.cleanup()

    ``channels``: 1 (grey), 3 (RGB) or None (the file's own: 1 for grey images, else 3).
    ``size``: crop the central square and resize it to ``size × size`` (None: keep the image as
    it is). Raises ``ValueError`` naming the file if it is not an image or cannot be decoded,
    ``FileNotFoundError`` if there is no such file.
    """
    if channels not in (None, 1, 3):
        raise InvalidValueError(f"channels must be 1, 3 or None, got {channels!r}")
    if size is not None:
        size = _checks.count(size, "size")
    with _open(path) as image:
        mode = {1: "L", 3: "RGB", None: "L" if image.mode in _GREY_MODES else "RGB"}[channels]
        if size is not None:
            image.draft(mode, (size, size))  # JPEG: decode at a reduced scale when it can
        image = image.convert(mode)
        if size is not None:
            image = ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC)
        array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.reshape(*array.shape[:2], -1).transpose(2, 0, 1).copy())


def save_image(image: torch.Tensor, path: str | os.PathLike) -> None:
    """Write a ``(C, H, W)`` or ``(H, W)`` image (uint8, or float in [0, 1]) to a PNG/JPEG file.

    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(tmp.name) / "red.png"
    >>> save_image(torch.tensor([1.0, 0.0, 0.0]).reshape(3, 1, 1).expand(3, 4, 4), path)
    >>> load_image(path)[:, 0, 0]
    tensor([255,   0,   0], dtype=torch.uint8)
    >>> tmp.cleanup()

    Float images are clamped to [0, 1] and scaled to 0..255. The format follows the suffix; the
    file is written atomically (a failed write leaves any previous file as it was).
    """
    image_format = Image.registered_extensions().get(Path(path).suffix.lower())
    if image_format is None:
        raise InvalidValueError(
            f"cannot tell an image format from the name {path}; use .png or .jpg"
        )
    _checks.tensor(image, "image", min_dim=2)
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise InvalidValueError(
            f"image must be (C, H, W) with C = 1 or 3, or (H, W), got shape {tuple(image.shape)}"
        )
    if image.is_floating_point():
        image = (image.detach().clamp(0, 1) * 255).round()
    array = image.to("cpu", torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    atomic_write(path, lambda file: picture.save(file, format=image_format))


def load_image_folder(
    folder: str | os.PathLike,
    *,
    size: int | None = None,
    grid: int | None = None,
    channels: int | None = None,
    files: list[Path] | None = None,
) -> torch.Tensor:
    """All images under a folder as one uint8 batch ``(N, C, size, size)``.

    >>> import tempfile, pathlib
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = pathlib.Path(tmp.name)
    >>> save_image(torch.zeros(3, 40, 50), folder / "wide.png")
    >>> save_image(torch.ones(30, 30), folder / "grey.jpg")
    >>> load_image_folder(folder, grid=4).shape          # RGB, 30 rounded down to 28
    torch.Size([2, 3, 28, 28])
    >>> tmp.cleanup()

    Every image is cropped to its central square and resized to ``size × size``; ``size``
    defaults to the smallest side among the folder's images and is rounded down to a multiple of
    ``grid`` when a grid is given. ``channels`` defaults to 3 if any image in the folder is in
    colour, else 1. ``files`` (default: all, ``image_files(folder)``) picks the files to load; the
    defaults still look at the whole folder, so every subset gets the same shape. Raises
    ``ValueError`` naming the first file that is not a readable image, or if there are no files.
    """
    everything = image_files(folder)
    if not everything:
        raise InvalidValueError(f"no image files in {folder}")
    files = everything if files is None else files
    if not files:
        raise InvalidValueError(f"no files were chosen to load from {folder} (files=[])")
    if size is None or channels is None:
        sizes, modes = zip(*(_header(path) for path in everything), strict=True)
        size = min(min(s) for s in sizes) if size is None else size
        channels = channels or (1 if all(m in _GREY_MODES for m in modes) else 3)
    size = _checks.count(size, "size")
    if grid is not None:
        grid = _checks.count(grid, "grid")
        if size < grid:
            raise InvalidValueError(
                f"images of size {size} cannot be cut into a {grid}×{grid} grid"
            )
        size -= size % grid
    return torch.stack([load_image(path, size=size, channels=channels) for path in files])


def resize_images(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize a batch ``(..., C, H, W)`` to ``size`` (bilinear, antialiased), keeping its dtype.

    >>> resize_images(torch.full((2, 1, 8, 8), 200, dtype=torch.uint8), 24).unique()
    tensor([200], dtype=torch.uint8)

    ``size`` is ``S`` (square) or ``(H', W')``. Integer images are rounded back to their dtype.
    """
    _checks.tensor(images, "images", min_dim=3)
    size = (size, size) if isinstance(size, int) else tuple(size)
    *batch, c, h, w = images.shape
    x = images.reshape(-1, c, h, w)
    x = x if x.is_floating_point() else x.float()
    out = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    if not images.is_floating_point():
        info = torch.iinfo(images.dtype)
        out = out.round().clamp(info.min, info.max).to(images.dtype)
    return out.reshape(*batch, c, *size)


def _header(path: Path) -> tuple[tuple[int, int], str]:
    with _open(path) as image:
        return image.size, image.mode


@contextlib.contextmanager
def _open(path):
    """``Image.open`` whose failures, opening or decoding, are ValueErrors naming the file.

    An image whose header claims more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (a
    decompression bomb: a small file that would decode to gigabytes) is refused before decoding.
    """
    if not Path(path).is_file():
        raise MissingFileError(f"image file {path} does not exist or is not a file")
    try:
        with warnings.catch_warnings():  # Pillow only warns between the limit and twice it
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise InvalidValueError(
            f"{path}: refused, the image is too large to decode safely: {_first_sentence(err)} "
            f"(PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS})"
        ) from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InvalidValueError(f"{path}: not an image that Pillow can read ({err})") from err
    try:
        with image:
            yield image
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InvalidValueError(f"{path}: not an image that Pillow can read ({err})") from err


def _first_sentence(err: Exception) -> str:
    return str(err).split(", could be")[0]
