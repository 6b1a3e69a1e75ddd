"""The native CPU Sinkhorn kernels (``sinkhorn.c``): built at first use, loaded with ctypes.

The solver's iterations are a long chain of small operators; in C, one batch item per OpenMP thread
(``torch.get_num_threads()`` of them, without the GIL: ctypes releases it), the kernel of an item
stays in cache across its iterations. Same semantics as ``_sinkhorn_solver.solve`` (without
``tol``), ``_sinkhorn_solver.reverse`` and ``_sinkhorn_implicit.implicit_grad``.

The library is compiled with the system C compiler (``$CC``, else ``cc``) into
``$GUMBEL_SINKHORN_CACHE`` (else ``$XDG_CACHE_HOME`` or ``~/.cache``, then
``gumbel-sinkhorn/native``, beside the datasets), under a name keyed by the source, flags,
compiler and platform, and loaded once per process. Without a compiler, when the build fails or
the folder is not writable, or with ``GUMBEL_SINKHORN_NATIVE=0``, ``usable`` is false and the
torch operators run instead.

>>> import torch
>>> usable(torch.zeros(2, 3, 3)) == (library() is not None and os.environ.get(ENV_VAR) != "0")
True
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import _sinkhorn_implicit, _sinkhorn_solver
from .._exp import FLOOR
from .._sinkhorn_problem import Problem

ENV_VAR = "GUMBEL_SINKHORN_NATIVE"  # "0": never use the native kernels
CACHE_VAR = "GUMBEL_SINKHORN_CACHE"
ABI = 2  # sinkhorn_abi() of a library built from this source
SOURCES = [Path(__file__).with_name(name) for name in ("sinkhorn.c", "sinkhorn_impl.h")]
# No -ffast-math (inf, -inf and NaN must behave) nor -march=native (a cache shared by different
# CPUs): the kernels pick their instruction set at load time (target_clones in sinkhorn.c). Without
# trapping math and errno, compilers may vectorize the conditional selects around exp.
FLAGS = ["-O3", "-fno-trapping-math", "-fno-math-errno", "-fPIC", "-shared"]
OPENMP = ["-fopenmp"]
NO_MEMORY = 1  # the kernels' status when a scratch buffer could not be allocated
# An item's kernel K is also kept transposed when K and K^T take at most this many bytes: the
# iterations are then sums of rows of either (no horizontal sums), faster while both stay in a
# core's L2 cache; larger kernels keep K alone. Read at each call (tests set it to 0).
TRANSPOSED_UP_TO = 1 << 20

_log = logging.getLogger(__name__)
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_REAL = {torch.float32: ctypes.c_float, torch.float64: ctypes.c_double}
# argument kinds: I int64, i int, r the precision's float, d double, p pointer
_SIGNATURES = {
    "sinkhorn_forward": "IIIIIirrI" + "p" * 14 + "I",
    "sinkhorn_reverse": "IIIIirrI" + "p" * 10 + "Ip",
    "sinkhorn_implicit": "IIIiIddpp",
}


def usable(t: torch.Tensor) -> bool:
    """Whether the native kernels can compute on ``t`` (a CPU float32/float64 tensor)."""
    return (
        t.device.type == "cpu"
        and t.dtype in _SUFFIX
        and os.environ.get(ENV_VAR) != "0"
        and library() is not None
    )


_loaded: dict[str, ctypes.CDLL | None] = {}  # "library": the outcome of the first attempt


def library() -> ctypes.CDLL | None:
    """The loaded library, built first if needed; None where it cannot be (logged at debug)."""
    if "library" not in _loaded:
        try:
            _loaded["library"] = _build_and_load()
        except (OSError, subprocess.SubprocessError) as err:
            _log.debug("native Sinkhorn kernels unavailable, using the torch operators: %s", err)
            _loaded["library"] = None
    return _loaded["library"]


def cache_folder() -> Path:
    """Where built libraries are kept."""
    if os.environ.get(CACHE_VAR):
        return Path(os.environ[CACHE_VAR])
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "gumbel-sinkhorn" / "native"


def _build_and_load() -> ctypes.CDLL:
    compiler = shlex.split(os.environ.get("CC") or "cc")
    if not compiler or shutil.which(compiler[0]) is None:
        raise OSError(f"no C compiler {os.environ.get('CC') or 'cc'!r}")
    folder = cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return _cached(compiler, FLAGS + OPENMP, folder)
    except subprocess.CalledProcessError as err:
        _log.debug("building with OpenMP failed, building serial kernels: %s", err.stderr)
        return _cached(compiler, FLAGS, folder)


def _cached(compiler: list[str], flags: list[str], folder: Path) -> ctypes.CDLL:
    """The library for these flags from ``folder``; (re)built when missing or unloadable."""
    path = folder / f"sinkhorn-{_key(compiler, flags)}.so"
    if path.exists():
        try:
            return _open(path)
        except OSError as err:  # corrupt, truncated or from another machine: build it again
            _log.debug("rebuilding %s: %s", path, err)
            path.unlink(missing_ok=True)
    _compile(compiler, flags, path)
    return _open(path)


def _key(compiler: list[str], flags: list[str]) -> str:
    digest = hashlib.sha256()
    for source in SOURCES:
        digest.update(source.read_bytes())
    where = os.path.realpath(shutil.which(compiler[0]) or compiler[0])
    for part in (*compiler, where, *flags, platform.system(), platform.machine()):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


def _compile(compiler: list[str], flags: list[str], path: Path) -> None:
    """Compile into a temporary file of ``path``'s folder, then move it into place atomically."""
    fd, temporary = tempfile.mkstemp(suffix=".so.tmp", dir=path.parent)
    os.close(fd)
    try:
        command = [*compiler, *flags, "-o", temporary, str(SOURCES[0]), "-lm"]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _open(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    try:
        abi = lib.sinkhorn_abi()
    except AttributeError as err:
        raise OSError(f"{path} is not a Sinkhorn kernel library") from err
    if abi != ABI:
        raise OSError(f"{path} has ABI {abi}, expected {ABI}")
    for name, kinds in _SIGNATURES.items():
        for dtype, suffix in _SUFFIX.items():
            function = getattr(lib, f"{name}_{suffix}")
            function.argtypes = [_argument(kind, dtype) for kind in kinds]
            function.restype = ctypes.c_int
    return lib


def _argument(kind: str, dtype: torch.dtype):
    return {
        "I": ctypes.c_int64,
        "i": ctypes.c_int,
        "r": _REAL[dtype],
        "d": ctypes.c_double,
        "p": ctypes.c_void_p,
    }[kind]


def _call(name: str, dtype: torch.dtype, *args) -> None:
    status = getattr(library(), f"{name}_{_SUFFIX[dtype]}")(*args)
    if status == NO_MEMORY:
        raise MemoryError(f"{name}: out of memory for a scratch buffer")
    if status:
        raise RuntimeError(f"{name} failed with status {status} (a bug: please report it)")


def _pointer(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _contiguous(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.contiguous()


@dataclass
class _Record:
    """Per item: each iteration's row and column vectors, and per chunk its steps, base and start
    (see ``Record`` in sinkhorn_impl.h)."""

    rows: torch.Tensor
    cols: torch.Tensor
    chunks: torch.Tensor
    n_chunks: torch.Tensor
    starts: torch.Tensor
    base_f: torch.Tensor
    base_g: torch.Tensor

    @classmethod
    def empty(cls, x: torch.Tensor, n_iter: int) -> _Record:
        (batch, r, m), most = x.shape, _max_chunks(n_iter)
        new = x.new_empty
        return cls(
            new(batch, n_iter, r),
            new(batch, n_iter, m),
            torch.empty(batch, most, 2, dtype=torch.int32),
            torch.empty(batch, dtype=torch.int32),
            new(batch, most, m),
            new(batch, most, r),
            new(batch, most, m),
        )

    def pointers(self) -> list[int]:
        return [
            _pointer(t)
            for t in (self.rows, self.cols, self.chunks, self.n_chunks, self.starts)
            + (self.base_f, self.base_g)
        ]


def _max_chunks(n_iter: int) -> int:
    """Chunks ``n_iter`` iterations can take: a one-step log-domain redo is always followed by
    a full chunk (or the end)."""
    return 2 * (n_iter // _sinkhorn_solver.CHECK_EVERY + 1) + 1


@dataclass
class Solution:
    """What ``solve`` computed: the plan and/or log plan, each item's row error, the record."""

    problem: Problem
    n_iter: int
    errors: torch.Tensor
    log_P: torch.Tensor | None
    P: torch.Tensor | None
    record: _Record | None

    def error(self) -> torch.Tensor:
        return self.errors

    def log_plan(self) -> torch.Tensor | None:
        return self.log_P

    def plan(self) -> torch.Tensor | None:
        return self.P


def solve(problem: Problem, n_iter: int, *, record: bool, log: bool, plan: bool) -> Solution:
    """``n_iter`` iterations of ``problem``; ``log`` / ``plan``: compute log P / P (B, R, M).

    With ``record`` the iterations are kept for ``reverse``.
    """
    x = problem.x.contiguous()
    batch, r, m = x.shape
    rec = _Record.empty(x, n_iter) if record else None
    log_P = torch.empty_like(x) if log else None
    P = torch.empty_like(x) if plan else None
    errors = x.new_empty(batch)
    _call(
        "sinkhorn_forward",
        x.dtype,
        batch,
        r,
        m,
        problem.n_rows,
        n_iter,
        torch.get_num_threads(),
        _sinkhorn_solver._limit(x.dtype),  # read at each call, like DENSE_UP_TO
        FLOOR[x.dtype],
        TRANSPOSED_UP_TO,
        *map(_pointer, (x, *map(_contiguous, (problem.a, problem.b)))),
        _pointer(problem.row_max.contiguous()),
        *map(_pointer, (log_P, P, errors)),
        *(rec.pointers() if rec else [None] * 7),
        _max_chunks(n_iter),
    )
    return Solution(problem, n_iter, errors, log_P, P, rec)


def reverse(solution: Solution, grad_log_plan: torch.Tensor) -> torch.Tensor:
    """``dL/dx`` given ``dL/dlog P`` (B, R, M), like ``_sinkhorn_solver.reverse`` (contiguous
    ``grad_log_plan`` is overwritten: it becomes the result)."""
    p, rec = solution.problem, solution.record
    dx = grad_log_plan.contiguous()
    batch, r, m = dx.shape
    _call(
        "sinkhorn_reverse",
        dx.dtype,
        batch,
        r,
        m,
        solution.n_iter,
        torch.get_num_threads(),
        _sinkhorn_solver._limit(dx.dtype),
        FLOOR[dx.dtype],
        TRANSPOSED_UP_TO,
        *map(_pointer, map(_contiguous, (p.x, p.a, p.b))),
        *rec.pointers(),
        _max_chunks(solution.n_iter),
        _pointer(dx),
    )
    return dx


def implicit_grad(plan: torch.Tensor, grad_log_plan: torch.Tensor) -> torch.Tensor:
    """``_sinkhorn_implicit.implicit_grad`` per item, in float64 inside (contiguous
    ``grad_log_plan`` is overwritten: it becomes the result)."""
    plan, grad = plan.contiguous(), grad_log_plan.contiguous()
    batch, r, m = grad.shape
    _call(
        "sinkhorn_implicit",
        grad.dtype,
        batch,
        r,
        m,
        torch.get_num_threads(),
        _sinkhorn_implicit.DENSE_UP_TO,  # read at each call: tests lower it to reach CG
        _sinkhorn_implicit.DAMPING,
        _sinkhorn_implicit.CG_TOL,
        _pointer(plan),
        _pointer(grad),
    )
    return grad
