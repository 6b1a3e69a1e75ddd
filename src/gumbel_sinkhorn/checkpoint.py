"""Files that must never be half-written: atomic saves and checked loads.

Every file :func:`save` writes carries a SHA-256 checksum of its whole content (every tensor's
bytes, every option and number), and :func:`load` refuses a file whose content no longer matches
it (a flipped bit on a disk, a damaged copy) with a :class:`CorruptCheckpointError`.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

VERSION = 2  # 2: with a checksum. Version 1 files (before checksums) still load, unchecked.
_READABLE = (1, 2)


class CorruptCheckpointError(ValueError):
    """A checkpoint or weights file that cannot be read, or whose content fails its checksum."""


def _new_file_mode() -> int:
    """The permissions a plain ``open(path, "w")`` would give a new file (0666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it onto ``path``.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
    >>> _ = atomic_write(target, lambda f: f.write(b"hi"))
    >>> target.read_bytes()
    b'hi'

    An error (a full disk: ``OSError`` naming the file) or Ctrl-C while writing leaves the previous
    file intact and no temporary behind; a killed process may leave a hidden temporary, which
    :func:`remove_temporaries` clears.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, _new_file_mode())  # mkstemp makes 0600; give what open() would give
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        why = f"could not write {path} ({err.strerror or err}); the previous file is unchanged"
        raise (OSError(err.errno, why) if err.errno else OSError(why)) from err
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


def writable_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and check that a file can be written there.

    >>> import tempfile, pathlib
    >>> writable_folder(pathlib.Path(tempfile.mkdtemp()) / "runs" / "a").is_dir()
    True

    Raises ``PermissionError`` (``folder ... is not writable: <reason>``) otherwise: run it before
    hours of work whose results go there.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PermissionError(f"folder {folder} is not writable: {err.strerror or err}") from err
    return folder


def remove_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that killed :func:`atomic_write` calls on ``path`` left behind.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "c.pt"
    >>> (target.parent / ".c.pt.x1y2.tmp").write_bytes(b"half")
    4
    >>> [p.name for p in remove_temporaries(target)]
    ['.c.pt.x1y2.tmp']
    """
    path = Path(path)
    stale = sorted(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def save(path: str | os.PathLike, kind: str, payload: dict[str, Any]) -> Path:
    """Save ``payload`` atomically, stamped with ``kind`` (e.g. ``"checkpoint"``), a version and
    a checksum of the whole content.

    >>> import tempfile, pathlib
    >>> p = save(pathlib.Path(tempfile.mkdtemp()) / "c.pt", "checkpoint", {"epoch": 3})
    >>> load(p, "checkpoint")["epoch"]
    3

    A payload that :func:`load` returned may be saved again (its stamps are replaced).
    """
    content = {k: v for k, v in payload.items() if k not in ("format", "version", "checksum")}
    stamped = {"format": f"gumbel-sinkhorn-{kind}", "version": VERSION, **content}
    stamped["checksum"] = checksum(stamped)
    # Serialised in memory first: torch.save turns a failing write (a full disk) into an obscure
    # RuntimeError, a plain file write keeps the OSError.
    buffer = io.BytesIO()
    torch.save(stamped, buffer)
    return atomic_write(path, lambda file: file.write(buffer.getbuffer()))


def load(path: str | os.PathLike, *kinds: str) -> dict[str, Any]:
    """Load a file written by :func:`save` with one of ``kinds``; anything else is a ValueError.

    The payload's ``"format"`` says which kind it is (``"gumbel-sinkhorn-<kind>"``). A file that
    torch cannot read, or whose content does not match its checksum, is a
    :class:`CorruptCheckpointError`; so is a version-2 file without a checksum. Version-1 files
    (written before checksums) load unchecked: refusing them would strand every earlier run, and
    saving one again (``--resume`` does at its next checkpoint) adds the checksum.
    """
    path = Path(path)
    names = " or ".join(kinds)
    if not path.is_file():
        raise FileNotFoundError(f"no {names} file at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CorruptCheckpointError(
            f"{path} is not a readable {names} file (corrupt or truncated?): {first_line}"
        ) from err
    expected = {f"gumbel-sinkhorn-{kind}" for kind in kinds}
    if not isinstance(payload, dict) or payload.get("format") not in expected:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} is not a gumbel-sinkhorn {names} file (format {found!r})")
    if payload.get("version") not in _READABLE:
        raise ValueError(
            f"{path} has format version {payload.get('version')}, this package reads "
            f"{' and '.join(map(str, _READABLE))}"
        )
    if payload["version"] >= 2:
        stored = payload.pop("checksum", None)
        if stored != checksum(payload):
            raise CorruptCheckpointError(
                f"{path} is corrupt: its content does not match the checksum written with it "
                f"({'none found' if stored is None else 'a changed byte'}); use another copy"
            )
    return payload


def checksum(value) -> str:
    """SHA-256 of a payload's content: tensors by dtype, shape and bytes, the rest by value.

    >>> a = {"w": torch.zeros(2), "lr": 0.1}
    >>> checksum(a) == checksum({"w": torch.zeros(2), "lr": 0.1})
    True
    >>> checksum(a) == checksum({"w": torch.tensor([0.0, -0.0]), "lr": 0.1})   # one bit
    False
    """
    digest = hashlib.sha256()
    _digest(value, digest)
    return "sha256:" + digest.hexdigest()


def _digest(value, digest) -> None:
    if isinstance(value, torch.Tensor):
        data = value.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"tensor {value.dtype} {tuple(value.shape)};".encode())
        digest.update(data.view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"dict {len(value)};".encode())
        for key, item in value.items():
            _digest(key, digest)
            _digest(item, digest)
    elif isinstance(value, list | tuple):
        digest.update(f"{type(value).__name__} {len(value)};".encode())
        for item in value:
            _digest(item, digest)
    elif isinstance(value, bytes):
        digest.update(f"bytes {len(value)};".encode() + value)
    else:  # str, int, float (repr is exact), bool, None, a dtype...
        text = repr(value)
        digest.update(f"{type(value).__name__} {len(text)};{text}".encode())


def write_json(path: str | os.PathLike, value) -> Path:
    """Write ``value`` as indented JSON, atomically."""
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    return atomic_write(path, lambda file: file.write(text.encode()))
