"""Files that must never be half-written: atomic saves and checked loads; the weights format.

Every file :func:`save` writes carries a SHA-256 checksum of its whole content (every tensor's
bytes, every option and number), and :func:`load` refuses a file whose content no longer matches
it (a flipped bit on a disk, a damaged copy) with a :class:`CorruptCheckpointError`.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import torch

from .errors import BadFileError, MissingFileError
from .files import atomic_write, remove_temporaries, writable_folder, write_json
from .runs import resolve

VERSION = 2  # 2: with a checksum. Version 1 files (before checksums) still load, unchecked.
_READABLE = (1, 2)

__all__ = [
    "VERSION",
    "CorruptCheckpointError",
    "atomic_write",
    "checksum",
    "first_line",
    "load",
    "read_weights",
    "remove_temporaries",
    "save",
    "save_weights",
    "writable_folder",
    "write_json",
]


class CorruptCheckpointError(BadFileError):
    """A checkpoint or weights file that cannot be read, or whose content fails its checksum."""


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
        raise MissingFileError(f"no {names} file at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise CorruptCheckpointError(
            f"{path} is not a readable {names} file (corrupt or truncated?): {first_line(err)}"
        ) from err
    expected = {f"gumbel-sinkhorn-{kind}" for kind in kinds}
    if not isinstance(payload, dict) or payload.get("format") not in expected:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise BadFileError(f"{path} is not a gumbel-sinkhorn {names} file (format {found!r})")
    if payload.get("version") not in _READABLE:
        raise BadFileError(
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


def save_weights(path: str | os.PathLike, task, model: torch.nn.Module, metrics=None) -> Path:
    """Write a small weights file (float32 state dict, ``task``'s name and config, metrics).

    ``task`` is anything with ``name`` and ``config`` (a :class:`~gumbel_sinkhorn.tasks.Task`).
    """
    state = {
        k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.cpu()
        for k, v in model.state_dict().items()
    }
    payload = {
        "task": task.name,
        "config": task.config.to_dict(),
        "state_dict": state,
        "metrics": dict(metrics or {}),
    }
    return save(path, "weights", payload)


def read_weights(source: str | os.PathLike) -> dict[str, Any]:
    """``{"task", "config", "state_dict", "metrics"}`` from a weights file, a checkpoint, a run
    folder or a shipped name (a checkpoint's metrics: those of its last epoch)."""
    payload = load(resolve(source), "weights", "checkpoint")
    if payload["format"] == "gumbel-sinkhorn-checkpoint":
        history = payload.get("history") or [{}]
        payload = {**payload, "state_dict": payload["model"], "metrics": history[-1]}
    return payload


def load_state(model: torch.nn.Module, state: dict[str, Any], source: str | os.PathLike) -> None:
    """``model.load_state_dict(state)``; weights that do not fit are a :class:`BadFileError`
    naming ``source`` (not a traceback)."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as err:
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
        detail = "; ".join(lines[:2]) or type(err).__name__
        raise BadFileError(f"{source} holds weights that do not fit its model: {detail}") from err


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
