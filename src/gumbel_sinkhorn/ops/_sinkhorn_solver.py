"""Sinkhorn iterations and their exact reverse pass, without autograd.

The iterations are those of the log domain on the row and column potentials ``f``, ``g``::

    f = -logsumexp(x + log b + g, over columns)     g = -logsumexp(x + log a + f, over rows)

with ``P = exp(x + log a + f + log b + g)``. They run in chunks of ``CHECK_EVERY`` iterations in
the *scaling form*: with ``K = exp(x + f0 + g0)`` for base potentials ``f0``, ``g0``, the updates
are ``u = 1 / K(b v)``, ``v = 1 / K^T(a u)`` (``f = f0 + log u``, ``g = g0 + log v``): two
matrix-vector products and no exponential per iteration. The first base makes every row and
column of the kernel peak at 1, so the scalings start near 1 even at low temperature. After each
chunk one check (the only device-to-host sync) looks at the scalings: when they grow past a limit
the potentials are absorbed into a new base, and a chunk that overflowed is redone in the log
domain.

The reverse pass differentiates exactly these iterations (the unrolled gradient) from the stored
per-iteration vectors: every term of ``dL/dx`` has the form ``K * (l r^T)``, so a chunk's
contribution is one batched matrix product, and memory does not grow with ``n_iter`` beyond
vectors.

Exponentials of whole matrices go through ``_exp`` (exact zeros for what underflows, without the
CPU's slow path for it, which made low temperatures several times slower).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ._exp import exp_, logsumexp
from ._sinkhorn_problem import Problem

CHECK_EVERY = 10


def _limit(dtype: torch.dtype) -> float:
    """How far (in log) the scalings may move from their base before it must be refreshed."""
    return 200.0 if dtype == torch.float64 else 20.0


def _mv(K: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``K @ v`` for batches: (B, R, M), (B, M) -> (B, R) (the row-vector form is the fast one)."""
    return torch.matmul(v.unsqueeze(-2), K.mT).squeeze(-2)


def _vm(u: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """``u @ K`` for batches: (B, R), (B, R, M) -> (B, M)."""
    return torch.matmul(u.unsqueeze(-2), K).squeeze(-2)


def _times(v: torch.Tensor, mass: torch.Tensor | None) -> torch.Tensor:
    return v if mass is None else v * mass


def _plus(v: torch.Tensor, log_mass: torch.Tensor | None) -> torch.Tensor:
    return v if log_mass is None else v + log_mass


@dataclass
class _Base:
    """Potentials absorbed into ``K = exp(x + f + g)``."""

    f: torch.Tensor
    g: torch.Tensor
    K: torch.Tensor | None = None

    def kernel(self, x: torch.Tensor) -> torch.Tensor:
        if self.K is None:
            self.K = _kernel(torch.add(x, self.f.unsqueeze(-1)).add_(self.g.unsqueeze(-2)))
        return self.K


def _kernel(logits: torch.Tensor) -> torch.Tensor:
    """``exp(logits)`` in place, for a kernel: entries below ~2e-29 (float32) become 0.

    Times scalings of at most e^limit each, such entries would add under 5e-12 to the plan; kept,
    their products with small scalings are subnormal numbers, which made the bmm 2x slower at
    tau = 1/30.
    """
    return exp_(logits, headroom=_limit(logits.dtype))


@dataclass
class _Chunk:
    """Consecutive iterations: the column vector before them and each iteration's vectors.

    Log-domain chunks store potentials ``f``, ``g``; scaling chunks store ``u``, ``v`` relative
    to ``base``.
    """

    base: _Base | None
    start: torch.Tensor
    rows: list[torch.Tensor] = field(default_factory=list)
    cols: list[torch.Tensor] = field(default_factory=list)


@dataclass
class Solution:
    """The last iterate: potentials ``f``, ``g`` (and ``base, u, v`` after a scaling chunk)."""

    problem: Problem
    f: torch.Tensor
    g: torch.Tensor
    n_iter: int
    checked_error: torch.Tensor | None
    chunks: list[_Chunk]
    last: tuple[_Base, torch.Tensor, torch.Tensor] | None

    def error(self) -> torch.Tensor:
        """Largest row-sum error of each item (B,); columns are exact after the last step."""
        if self.checked_error is None:
            p, last = self.problem, self.last
            self.checked_error = _scaling_error(p, *last) if last else _log_error(p, self.f, self.g)
        return self.checked_error

    def log_plan(self) -> torch.Tensor:
        """``log P`` (B, R, M), ``-inf`` outside the allowed entries."""
        p = self.problem
        f, g = _plus(self.f, p.log_a).unsqueeze(-1), _plus(self.g, p.log_b).unsqueeze(-2)
        return torch.add(p.x, f).add_(g)

    def plan(self) -> torch.Tensor:
        """``P`` (B, R, M); from the kernel when the last chunk ran in the scaling form."""
        if self.last is None:
            return exp_(self.log_plan())
        base, u, v = self.last
        p = self.problem
        K = base.kernel(p.x)
        return torch.mul(K, _times(u, p.a).unsqueeze(-1)).mul_(_times(v, p.b).unsqueeze(-2))


def solve(problem: Problem, n_iter: int, *, tol: float | None, record: bool) -> Solution:
    """Run at most ``n_iter`` iterations (fewer once the row error is below ``tol``).

    With ``record`` the per-iteration vectors are kept for ``reverse``.
    """
    x = problem.x
    limit = _limit(x.dtype)
    f, g = -problem.row_max, x.new_zeros(x.shape[0], x.shape[-1])
    base, chunks, last = _balanced_base(x, f), [], None
    done, error, retry = 0, None, True
    while done < n_iter:
        steps = min(CHECK_EVERY, n_iter - done)
        if base is None:  # absorb the potentials into a fresh kernel
            base = _Base(f, g)
        chunk, u, v = _scaling_chunk(problem, base, g, steps, record)
        f_new, g_new = base.f + u.log(), base.g + v.log()
        reach = torch.cat([f_new - base.f, g_new - base.g], -1).abs().amax()
        error = _scaling_error(problem, base, u, v) if tol is not None else None
        reach, worst = torch.stack([reach, reach if error is None else error.amax()]).tolist()
        if reach <= limit:  # false for inf and NaN too
            last, retry = (base, u, v), True
        else:
            # The scalings overflowed or lost precision (scores spanning many nats): redo one
            # iteration in the log domain, on whose potentials a fresh kernel usually keeps the
            # next chunk in range; if that was just tried, redo the whole chunk.
            steps = 1 if retry else steps
            retry = not retry
            chunk, f_new, g_new = _log_chunk(problem, g, steps, record)
            error = _log_error(problem, f_new, g_new) if tol is not None else None
            worst = 0.0 if error is None else error.amax().item()
            last = None
        if not reach <= limit / 2:
            base.K, base = None, None
        chunks.append(chunk)
        f, g, done = f_new, g_new, done + steps
        if tol is not None and worst < tol:
            break
    return Solution(problem, f, g, done, error, chunks if record else [], last)


def _balanced_base(x: torch.Tensor, f: torch.Tensor) -> _Base:
    """The first base: ``f`` (minus the row maxima) and minus the column maxima of ``x + f``.

    Every row and every column of its kernel then has largest entry 1, so the first scalings lie
    within a factor ``N`` of 1. With ``g = 0`` instead, a column whose scores all lie far below
    their rows' maxima (common at low temperature) made the first chunk overflow and be redone.
    Only the representation changes: the iterations still start from ``g = 0``.
    """
    logits = torch.add(x, f.unsqueeze(-1))
    g = logits.amax(-2).neg_().nan_to_num_(posinf=0.0)  # +inf: a column with no allowed entry
    return _Base(f, g, _kernel(logits.add_(g.unsqueeze(-2))))


def _scaling_chunk(problem: Problem, base: _Base, g: torch.Tensor, steps: int, record: bool):
    """``steps`` iterations on row vectors (B, 1, .): one ``bmm`` and one reciprocal a step."""
    K = base.kernel(problem.x)
    K_t, a, b = K.mT, _row(problem.a), _row(problem.b)
    v = exp_(g - base.g).unsqueeze(-2)  # exact zeros for what underflows
    chunk = _Chunk(base, v)
    for _ in range(steps):
        u = torch.bmm(_times(v, b), K_t).reciprocal_()
        v = torch.bmm(_times(u, a), K).reciprocal_()
        if record:
            chunk.rows.append(u)
            chunk.cols.append(v)
    return chunk, u.squeeze(-2), v.squeeze(-2)


def _row(mass: torch.Tensor | None) -> torch.Tensor | None:
    return None if mass is None else mass.unsqueeze(-2)


def _log_chunk(problem: Problem, g: torch.Tensor, steps: int, record: bool):
    x = problem.x
    chunk = _Chunk(None, g)
    for _ in range(steps):
        f = -logsumexp(x + _plus(g, problem.log_b).unsqueeze(-2), dim=-1)
        g = -logsumexp(x + _plus(f, problem.log_a).unsqueeze(-1), dim=-2)
        if record:
            chunk.rows.append(f)
            chunk.cols.append(g)
    return chunk, f, g


def log_iterations(problem: Problem, n_iter: int) -> torch.Tensor:
    """``log P`` after ``n_iter`` plain log-domain iterations: differentiable by autograd."""
    g = problem.x.new_zeros(problem.x.shape[0], problem.x.shape[-1])
    _, f, g = _log_chunk(problem, g, n_iter, record=False)
    return Solution(problem, f, g, n_iter, None, [], None).log_plan()


def _row_error(problem: Problem, row_sums: torch.Tensor) -> torch.Tensor:
    """Largest ``|row sum - mass|`` over each item's rows (columns are exact after a step)."""
    target = 1.0 if problem.a is None else problem.a
    return (row_sums - target)[:, : problem.n_rows].abs().amax(-1)


def _scaling_error(problem: Problem, base: _Base, u: torch.Tensor, v: torch.Tensor):
    K = base.kernel(problem.x)
    return _row_error(problem, _times(u, problem.a) * _mv(K, _times(v, problem.b)))


def _log_error(problem: Problem, f: torch.Tensor, g: torch.Tensor):
    x = problem.x
    lse = logsumexp(x + _plus(g, problem.log_b).unsqueeze(-2), dim=-1)
    return _row_error(problem, torch.exp(_plus(f, problem.log_a) + lse))


def reverse(solution: Solution, grad_log_plan: torch.Tensor) -> torch.Tensor:
    """``dL/dx`` given ``dL/dlog P`` (B, R, M; zero outside the allowed entries).

    ``grad_log_plan`` is overwritten: it becomes the result.
    """
    problem = solution.problem
    dx = grad_log_plan
    df, dg = dx.sum(-1), dx.sum(-2)
    pending = _LowRank(problem.x)
    for chunk in reversed(solution.chunks):
        if chunk.base is None:
            pending.flush(dx)
            dg = _log_chunk_reverse(problem, chunk, dx, df, dg)
        else:
            dg = _scaling_chunk_reverse(problem, chunk, pending, df, dg, dx)
        df = 0.0
    pending.flush(dx)
    return dx


class _LowRank:
    """Accumulates ``-K * sum_k l_k^T r_k`` for one base, added to ``dx`` in one matrix product."""

    def __init__(self, x: torch.Tensor):
        self.x, self.base, self.left, self.right = x, None, [], []

    def add(self, base: _Base, dx: torch.Tensor, left: torch.Tensor, right: torch.Tensor):
        """``left`` (B, 1, R) and ``right`` (B, 1, M): one rank-one term."""
        if base is not self.base:
            self.flush(dx)
            self.base = base
        self.left.append(left)
        self.right.append(right)

    def flush(self, dx: torch.Tensor) -> None:
        if self.left:
            outer = torch.bmm(torch.cat(self.left, -2).mT, torch.cat(self.right, -2))
            dx.addcmul_(self.base.kernel(self.x), outer, value=-1.0)
            self.base.K = None
        self.base, self.left, self.right = None, [], []


def _scaling_chunk_reverse(problem, chunk, pending, df, dg, dx):
    """The reverse of a scaling chunk on row vectors (B, 1, .); returns ``dL/dg`` before it."""
    K = chunk.base.kernel(problem.x)
    K_t, a, b = K.mT, _row(problem.a), _row(problem.b)
    df = df.unsqueeze(-2) if isinstance(df, torch.Tensor) else None
    dg = dg.unsqueeze(-2)
    before = [chunk.start, *chunk.cols[:-1]]
    for u, v, v_before in zip(
        reversed(chunk.rows), reversed(chunk.cols), reversed(before), strict=True
    ):
        au, w = _times(u, a), v * dg  # column step: g = -LSE_rows(x + log a + f)
        pending.add(chunk.base, dx, au, w)
        step = torch.bmm(w, K_t)
        df = step.mul_(au).neg_() if df is None else torch.addcmul(df, au, step, value=-1.0)
        z, bv = u * df, _times(v_before, b)  # row step: f = -LSE_cols(x + log b + g)
        pending.add(chunk.base, dx, z, bv)
        dg = torch.bmm(z, K).mul_(bv).neg_()
        df = None
    return dg.squeeze(-2)


def _log_chunk_reverse(problem, chunk, dx, df, dg):
    x = problem.x
    before = [chunk.start, *chunk.cols[:-1]]
    for f, g, g_before in zip(
        reversed(chunk.rows), reversed(chunk.cols), reversed(before), strict=False
    ):
        Q = exp_(x + _plus(f, problem.log_a).unsqueeze(-1) + g.unsqueeze(-2))
        dx.addcmul_(Q, dg.unsqueeze(-2), value=-1.0)
        df = df - _mv(Q, dg)
        R = exp_(x + f.unsqueeze(-1) + _plus(g_before, problem.log_b).unsqueeze(-2))
        dx.addcmul_(R, df.unsqueeze(-1), value=-1.0)
        dg = -_vm(df, R)
        df = 0.0
    return dg
