"""MNIST and Fashion-MNIST from their original IDX ``.gz`` files: found, fetched, checked, decoded.

Where the files are looked for, in order (the first folder holding a file wins):

1. the data root: the ``root`` argument, else the ``GUMBEL_SINKHORN_DATA`` environment variable: a
   folder holding ``mnist/`` and ``fashion-mnist/``, or torchvision's ``MNIST/raw/`` and
   ``FashionMNIST/raw/``;
2. the user cache (``$XDG_CACHE_HOME/gumbel-sinkhorn``, default ``~/.cache/gumbel-sinkhorn``), with
   the same layout;
3. with ``download=True``, the public mirrors, into the user cache.

Every file is checked against its published MD5 before it is decoded; a file that fails is rejected
with ``CorruptFileError`` and never cached (on disk or in memory).
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import InvalidValueError
from ..runs import ENV_VAR
from ._files import CorruptFileError, DatasetNotFoundError, cache_dir, check_md5, download

DATASETS = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")

# Published MD5 checksums of the original .gz files (also in ../shared/data/*/SOURCES.md).
_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
_TORCHVISION_DIR = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_PREFIX = {"train": "train", "test": "t10k"}
# Mean and standard deviation of the training pixels in [0, 1]: MNIST's are the tutorial's
# Normalize((0.1307,), (0.3081,)); Fashion-MNIST's were computed the same way (docs in the tests).
STATS = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}

# IDX type codes -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_decoded: dict[tuple[str, int, int], torch.Tensor] = {}


def read_idx(path: str | os.PathLike, *, md5: str | None = None) -> torch.Tensor:
    """Decode an IDX file (gzip-compressed or not) into a tensor, after checking it.

    >>> import os
    >>> root = os.environ["GUMBEL_SINKHORN_DATA"]
    >>> labels = read_idx(f"{root}/mnist/t10k-labels-idx1-ubyte.gz")
    >>> labels.shape, labels.dtype
    (torch.Size([10000]), torch.uint8)

    Checks, in order, each raising ``CorruptFileError`` naming the file: the MD5 of the bytes on
    disk (when ``md5`` is given), the gzip stream, the magic number (two zero bytes, a known type
    code, the number of dimensions) and the file size against the dimensions in the header.
    """
    path = Path(path)
    data = path.read_bytes()
    if md5 is not None:
        check_md5(data, md5, str(path))
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, str(path))
    return decode_idx(data, source=str(path))


def _gunzip(data: bytes, source: str) -> bytes:
    """The content of a gzip stream, decompressed no further than one byte past the size its IDX
    header describes: a small damaged or hostile file cannot expand into gigabytes first."""
    stream = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = stream.decompress(data, 4)
        layout = None
        if _is_idx_magic(out):
            out += stream.decompress(stream.unconsumed_tail, 4 * out[3])
            layout = _layout(out)
        # past the described size, or past a header decode_idx will reject: one byte more
        limit = (layout[-1] if layout else len(out)) + 1
        while len(out) < limit and not stream.eof:
            chunk = stream.decompress(stream.unconsumed_tail, min(limit - len(out), 2**24))
            if not chunk:
                break
            out += chunk
    except zlib.error as err:
        raise CorruptFileError(f"{source}: broken gzip stream ({err})") from err
    if len(out) < limit and not stream.eof:
        raise CorruptFileError(f"{source}: broken gzip stream (it ends before its end marker)")
    return out


def _is_idx_magic(head: bytes) -> bool:
    """Whether ``head`` starts like an IDX file: two zero bytes, a known type code, ndim >= 1."""
    return len(head) >= 4 and head[:2] == b"\0\0" and head[2] in _IDX_DTYPES and head[3] > 0


def _layout(head: bytes):
    """``(header size, shape, dtype, file size)`` from the first bytes of an IDX file whose magic
    number is valid; None when they stop before the end of the header."""
    header = 4 + 4 * head[3]
    if len(head) < header:
        return None
    shape = tuple(int(d) for d in np.frombuffer(head, ">u4", count=head[3], offset=4))
    dtype = np.dtype(_IDX_DTYPES[head[2]])
    return header, shape, dtype, header + math.prod(shape) * dtype.itemsize


def decode_idx(data: bytes, *, source: str = "IDX data") -> torch.Tensor:
    """Decode the bytes of an uncompressed IDX file.

    >>> decode_idx(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6)))
    tensor([[0, 1, 2],
            [3, 4, 5]], dtype=torch.uint8)

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, one big-endian uint32 per dimension,
    then the values, big-endian, row-major. Raises ``CorruptFileError`` on any mismatch.
    """
    if not _is_idx_magic(data):
        raise CorruptFileError(
            f"{source}: not an IDX file (magic number {data[:4].hex() or 'missing'}; expected "
            f"0000 followed by a type code in {[f'{c:02x}' for c in _IDX_DTYPES]} and ndim >= 1)"
        )
    layout = _layout(data)
    if layout is None:
        raise CorruptFileError(f"{source}: truncated IDX header ({len(data)} bytes)")
    header, shape, dtype, expected = layout
    if len(data) != expected:
        raise CorruptFileError(
            f"{source}: {len(data)} bytes, but its header (shape {shape}, {dtype.name}) needs "
            f"{expected}: the file is {'truncated' if len(data) < expected else 'too long'}"
        )
    values = np.frombuffer(data, dtype, offset=header).astype(dtype.newbyteorder("="))
    return torch.from_numpy(values.reshape(shape))


def load_mnist(
    split: str = "train", *, root: str | os.PathLike | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's images, uint8 ``(N, 28, 28)``, and labels, int64 ``(N,)``.

    >>> images, labels = load_mnist("test")        # from $GUMBEL_SINKHORN_DATA, cache or mirrors
    >>> images.shape, images.dtype, labels[:5].tolist()
    (torch.Size([10000, 28, 28]), torch.uint8, [7, 2, 1, 0, 4])

    ``split`` is "train" (60,000) or "test" (10,000). The files are looked up in ``root`` (else
    ``$GUMBEL_SINKHORN_DATA``), then the user cache, then downloaded (see the module's docstring).
    Raises ``DatasetNotFoundError`` when they are nowhere and cannot be downloaded,
    ``CorruptFileError`` when a file fails its checks.
    """
    return load_idx_dataset("mnist", split, root=root, download=download)


def load_fashion_mnist(
    split: str = "train", *, root: str | os.PathLike | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST's images, uint8 ``(N, 28, 28)``, and labels, int64 ``(N,)``.

    >>> images, labels = load_fashion_mnist("test")   # from $GUMBEL_SINKHORN_DATA, cache, mirrors
    >>> images.shape, labels[:5].tolist()
    (torch.Size([10000, 28, 28]), [9, 2, 1, 1, 6])

    Same lookup, checks and errors as ``load_mnist``.
    """
    return load_idx_dataset("fashion-mnist", split, root=root, download=download)


def load_idx_dataset(
    name: str, split: str = "train", *, root: str | os.PathLike | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """``load_mnist`` or ``load_fashion_mnist`` by name ("mnist" or "fashion-mnist").

    >>> load_idx_dataset("cifar")
    Traceback (most recent call last):
    ...
    gumbel_sinkhorn.errors.InvalidValueError: dataset must be one of ('mnist', ...), got 'cifar'
    """
    if name not in DATASETS:
        raise InvalidValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    if split not in SPLITS:
        raise InvalidValueError(f"split must be one of {SPLITS}, got {split!r}")
    images = _load_file(name, f"{_PREFIX[split]}-images-idx3-ubyte.gz", root, download)
    labels = _load_file(name, f"{_PREFIX[split]}-labels-idx1-ubyte.gz", root, download)
    if images.dim() != 3 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
        raise CorruptFileError(
            f"{name} {split}: images of shape {tuple(images.shape)} do not go with labels of "
            f"shape {tuple(labels.shape)} (expected (N, H, W) and (N,))"
        )
    return images, labels.long()


def search_dirs(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for dataset ``name``'s files, in order.

    >>> [str(d) for d in search_dirs("mnist", root="/data")][:2]
    ['/data/mnist', '/data/MNIST/raw']
    """
    if root is None:
        root = os.environ.get(ENV_VAR) or None
    roots = [Path(root).expanduser()] if root is not None else []
    roots.append(cache_dir())
    return [d for r in roots for d in (r / name, r / _TORCHVISION_DIR[name] / "raw")]


def _load_file(name: str, filename: str, root, allow_download: bool) -> torch.Tensor:
    md5 = _MD5[name][filename]
    dirs = search_dirs(name, root)
    path = next((d / filename for d in dirs if (d / filename).is_file()), None)
    if path is None:
        path = cache_dir() / name / filename
        if not allow_download:
            raise DatasetNotFoundError(_not_found(name, filename, dirs, "download=False"))
        urls = [mirror + filename for mirror in MIRRORS[name]]
        try:
            download(urls, path, md5)
        except OSError as err:
            raise DatasetNotFoundError(_not_found(name, filename, dirs, str(err))) from err
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _decoded:
        try:
            _decoded[key] = read_idx(path, md5=md5)
        except CorruptFileError as err:
            raise CorruptFileError(
                f"{err}. Replace it with the original file, or delete it to have it downloaded "
                f"again into {cache_dir()}"
            ) from err
    return _decoded[key].clone()


def _not_found(name: str, filename: str, dirs: list[Path], why: str) -> str:
    return (
        f"{name} file {filename} is not in any of {[str(d) for d in dirs]} and could not be "
        f"downloaded ({why}). Put the original .gz files into DIR/{name}/ and pass the data root "
        f"DIR (root=DIR in Python, --data-root DIR on the command line) or set {ENV_VAR}=DIR."
    )
