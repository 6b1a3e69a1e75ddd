"""Data files: the user cache, checksums, and downloads that never leave a bad file behind."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.request import urlopen

from .. import _extras

try:
    from tqdm import tqdm
except ImportError as err:
    raise _extras.missing("tqdm", "gumbel_sinkhorn.data (download progress)") from err

from ..errors import BadFileError, MissingFileError
from ..files import atomic_write

_CHUNK = 1 << 20


class DatasetNotFoundError(MissingFileError):
    """A dataset's files are neither in the data roots nor downloadable (for example offline)."""


class CorruptFileError(BadFileError):
    """A data file fails its checks: checksum, gzip stream, magic number or size."""


def cache_dir() -> Path:
    """The user cache for downloads: ``$XDG_CACHE_HOME/gumbel-sinkhorn`` (default ``~/.cache``).

    >>> cache_dir().name
    'gumbel-sinkhorn'
    """
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gumbel-sinkhorn"


def check_md5(data: bytes, md5: str, source: str) -> None:
    """Raise ``CorruptFileError`` unless ``data`` has the MD5 checksum ``md5``.

    >>> check_md5(b"", "d41d8cd98f00b204e9800998ecf8427e", "empty")
    """
    got = hashlib.md5(data).hexdigest()
    if got != md5:
        raise CorruptFileError(
            f"{source}: MD5 {got} does not match the published checksum {md5} "
            f"(the file is corrupt, truncated or a different file)"
        )


def download(urls: Sequence[str], dest: Path, md5: str) -> Path:
    """Fetch the first of ``urls`` that works into ``dest``, only if its MD5 is ``md5``.

    >>> download([], Path("never-written"), "0" * 32)
    Traceback (most recent call last):
    ...
    OSError: no URL to download never-written from

    The bytes go to a temporary file next to ``dest`` that is renamed to ``dest`` only when the
    checksum is right, so an interrupted or corrupt download never appears under ``dest``.
    Raises ``OSError`` naming every URL tried and why it failed.
    """
    if not urls:
        raise OSError(f"no URL to download {dest} from")
    errors = []
    for url in urls:
        try:
            _fetch(url, dest, md5)
            return dest
        except (OSError, CorruptFileError) as err:  # URLError, HTTPError and timeouts are OSErrors
            errors.append(f"{url}: {err}")
    raise OSError("; ".join(errors))


def _fetch(url: str, dest: Path, md5: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with urlopen(url, timeout=60) as response:  # a network error is said as such, not as a write
        expected = response.headers.get("Content-Length")
        total = int(expected) if expected is not None else None

        def write(out) -> None:
            digest, received = hashlib.md5(), 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"Downloading {url}") as bar:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if expected is not None and received != int(expected):
                raise CorruptFileError(f"truncated download: {received} of {expected} bytes")
            if digest.hexdigest() != md5:
                raise CorruptFileError(
                    f"MD5 {digest.hexdigest()} does not match the published checksum {md5}"
                )

        atomic_write(dest, write)  # the file appears only once its checksum is right
