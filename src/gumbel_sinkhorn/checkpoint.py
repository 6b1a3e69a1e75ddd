"""Files that must never be half-written: atomic saves and checked loads; the weights format."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from .errors import BadFileError, MissingFileError
from .files import atomic_write, remove_temporaries, writable_folder, write_json
from .runs import resolve

VERSION = 1

__all__ = [
    "VERSION",
    "atomic_write",
    "load",
    "read_weights",
    "remove_temporaries",
    "save",
    "save_weights",
    "writable_folder",
    "write_json",
]


def save(path: str | os.PathLike, kind: str, payload: dict[str, Any]) -> Path:
    """Save ``payload`` atomically, stamped with ``kind`` (e.g. ``"checkpoint"``) and a version.

    >>> import tempfile, pathlib
    >>> p = save(pathlib.Path(tempfile.mkdtemp()) / "c.pt", "checkpoint", {"epoch": 3})
    >>> load(p, "checkpoint")["epoch"]
    3
    """
    stamped = {"format": f"gumbel-sinkhorn-{kind}", "version": VERSION, **payload}
    # Serialised in memory first: torch.save turns a failing write (a full disk) into an obscure
    # RuntimeError, a plain file write keeps the OSError.
    buffer = io.BytesIO()
    torch.save(stamped, buffer)
    return atomic_write(path, lambda file: file.write(buffer.getbuffer()))


def load(path: str | os.PathLike, *kinds: str) -> dict[str, Any]:
    """Load a file written by :func:`save` with one of ``kinds``; anything else is a ValueError.

    The payload's ``"format"`` says which kind it is (``"gumbel-sinkhorn-<kind>"``).
    """
    path = Path(path)
    names = " or ".join(kinds)
    if not path.is_file():
        raise MissingFileError(f"no {names} file at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BadFileError(
            f"{path} is not a readable {names} file (corrupt or truncated?): {first_line}"
        ) from err
    expected = {f"gumbel-sinkhorn-{kind}" for kind in kinds}
    if not isinstance(payload, dict) or payload.get("format") not in expected:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise BadFileError(f"{path} is not a gumbel-sinkhorn {names} file (format {found!r})")
    if payload.get("version") != VERSION:
        raise BadFileError(
            f"{path} has format version {payload.get('version')}, this package reads {VERSION}"
        )
    return payload


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
