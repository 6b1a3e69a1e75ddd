"""Files that are never half-written: atomic writes, writable folders, leftover temporaries.

No torch here; :mod:`gumbel_sinkhorn.checkpoint` builds its formats on these, and the data
downloads use them too.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from pathlib import Path

from .errors import UnwritablePathError


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
        raise UnwritablePathError(
            f"folder {folder} is not writable: {err.strerror or err}"
        ) from err
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


def write_json(path: str | os.PathLike, value) -> Path:
    """Write ``value`` as indented JSON, atomically."""
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    return atomic_write(path, lambda file: file.write(text.encode()))
