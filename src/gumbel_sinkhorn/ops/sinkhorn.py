"""The Sinkhorn operator: log-domain semantics, a fast stabilised solver, two backward modes."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .. import _checks
from ..errors import InvalidTypeError, InvalidValueError
from . import _native
from ._deprecation import deprecated_positional
from ._sinkhorn_implicit import implicit_grad
from ._sinkhorn_problem import build, size_mask
from ._sinkhorn_solver import Solution, log_iterations, reverse, solve

BACKWARDS = ("unrolled", "implicit")
# The tolerance that ``SinkhornInfo.converged`` is judged against when no ``tol`` is given.
REPORT_TOL = 1e-3


class SinkhornConvergenceWarning(RuntimeWarning):
    """``n_iter`` ran out before the marginal error fell below ``tol``."""


class SinkhornInfo(NamedTuple):
    """What a Sinkhorn run did: iterations run, each item's final marginal error, and whether it
    is below ``tol`` (``REPORT_TOL`` when no ``tol`` was given). ``error`` and ``converged`` have
    the batch shape."""

    n_iter: int
    error: torch.Tensor
    converged: torch.Tensor
    tol: float


@deprecated_positional("n_iter")
def log_sinkhorn(
    log_alpha: torch.Tensor,
    *,
    n_iter: int = 20,
    tau: float = 1.0,
    tol: float | None = None,
    mask: torch.Tensor | None = None,
    sizes=None,
    backward: str = "unrolled",
    return_info: bool = False,
):
    """Log of the Sinkhorn normalisation of ``log_alpha / tau``.

    >>> import torch
    >>> P = log_sinkhorn(torch.randn(3, 3), n_iter=50).exp()
    >>> torch.allclose(P.sum(-1), torch.ones(3), atol=1e-4)
    True
    >>> log_P, info = log_sinkhorn(torch.randn(8, 5, 5), n_iter=500, tol=1e-6, return_info=True)
    >>> info.n_iter < 500, bool(info.converged.all())
    (True, True)

    Shapes: ``(..., N, M)`` in and out with ``N <= M``, same device and dtype (float16 and
    bfloat16 are computed in float32, also inside ``torch.autocast``). Options:

    - ``tol``: stop once every item's largest row/column marginal error is below it (checked
      every 10 iterations); a ``SinkhornConvergenceWarning`` if ``n_iter`` runs out first.
    - ``mask`` (bool, broadcastable to the input) or ``sizes`` (ints of the batch shape, or a
      pair ``(rows, cols)``): entries outside the mask are forbidden, and rows or columns with
      no allowed entry are padding: exactly 0 in ``P`` (``-inf`` here), with zero gradient.
      ``-inf`` scores act like a masked-out entry.
    - ``backward``: ``"unrolled"`` differentiates the ``n_iter`` iterations exactly;
      ``"implicit"`` differentiates the fixed point (exact at convergence, memory and time
      independent of ``n_iter``). Both have second derivatives (``create_graph=True``, e.g. for
      a gradient penalty): that backward recomputes the iterations under autograd, slower.
    - ``return_info``: also return a ``SinkhornInfo`` (iterations run, error, converged flag).

    On CPU (float32 / float64) the iterations and both backwards run in native kernels, compiled
    with the system C compiler at first use (``tol`` keeps the torch operators for the forward);
    without a compiler, or with ``GUMBEL_SINKHORN_NATIVE=0``, the torch operators compute the
    same function.

    Maths: with ``X = log_alpha / tau``, alternately ``X -= logsumexp(X, -1)`` (rows) and
    ``X -= logsumexp(X, -2)`` (columns), ``n_iter`` times each (the seed's iteration). When
    ``N < M`` (or an item has fewer rows than columns) a slack row of constant score takes each
    column's unassigned mass: rows sum to 1 and columns to at most 1.
    """
    return _sinkhorn(
        log_alpha,
        n_iter,
        tau=tau,
        log=True,
        tol=tol,
        mask=mask,
        sizes=sizes,
        backward=backward,
        return_info=return_info,
    )


@deprecated_positional("n_iter")
def sinkhorn(
    log_alpha: torch.Tensor,
    *,
    n_iter: int = 20,
    tau: float = 1.0,
    tol: float | None = None,
    mask: torch.Tensor | None = None,
    sizes=None,
    backward: str = "unrolled",
    return_info: bool = False,
):
    """Sinkhorn operator S(log_alpha / tau): a doubly stochastic matrix.

    >>> import torch
    >>> P = sinkhorn(torch.tensor([[3.0, 0.0], [0.0, 3.0]]), tau=0.1)
    >>> P.round(decimals=3)
    tensor([[1., 0.],
            [0., 1.]])
    >>> P = sinkhorn(torch.randn(2, 4, 4), n_iter=100, sizes=torch.tensor([4, 2]))   # padded batch
    >>> P[1].sum(-1)
    tensor([1., 1., 0., 0.])

    Shapes: ``(..., N, M)`` in and out (``N <= M``). ``exp(log_sinkhorn(...))`` with the same
    options (see ``log_sinkhorn``), computed without the final exponential; columns sum to
    exactly 1 (at most 1 when ``N < M``) after the last (column) step, rows converge to 1 as
    ``n_iter`` grows.
    """
    return _sinkhorn(
        log_alpha,
        n_iter,
        tau=tau,
        log=False,
        tol=tol,
        mask=mask,
        sizes=sizes,
        backward=backward,
        return_info=return_info,
    )


@dataclass(frozen=True)
class _Settings:
    n_iter: int
    tau: float
    tol: float | None
    backward: str
    log: bool


def _sinkhorn(
    log_alpha,
    n_iter,
    *,
    tau,
    log,
    tol: float | None = None,
    mask: torch.Tensor | None = None,
    sizes=None,
    backward: str = "unrolled",
    return_info: bool = False,
):
    settings = _Settings(
        _checks.count(n_iter, "n_iter"),
        _checks.positive(tau, "tau"),
        None if tol is None else _checks.positive(tol, "tol"),
        _choice(backward),
        log,
    )
    _checks.scores(log_alpha, square=False, posinf=False)
    _checks.not_tall(log_alpha, "sinkhorn")
    n, m = log_alpha.shape[-2:]
    mask = _full_mask(log_alpha, mask, sizes)
    batch_shape = log_alpha.shape[:-2]
    flat = log_alpha.reshape(-1, n, m)
    if flat.shape[0] == 0 or log_alpha.is_meta:  # nothing to compute (meta: shapes only)
        out = log_alpha * 0.0
        error = log_alpha.new_zeros(batch_shape)
        info = SinkhornInfo(0, error, error == 0, tol or REPORT_TOL)
        return (out, info) if return_info else out
    report = []
    flat_mask = None if mask is None else mask.reshape(-1, n, m)
    out = _SinkhornFunction.apply(flat, flat_mask, settings, report).reshape(log_alpha.shape)
    if tol is None and not return_info:
        return out
    info = _info(report[0], batch_shape, tol)
    if tol is not None and not bool(info.converged.all()):
        _warn(
            f"sinkhorn: {settings.n_iter} iterations ran out before the marginal error fell "
            f"below tol={tol}; raise n_iter (or tau), or loosen tol",
        )
    return (out, info) if return_info else out


def _choice(backward) -> str:
    if backward not in BACKWARDS:
        raise InvalidValueError(f"backward must be one of {BACKWARDS}, got {backward!r}")
    return backward


def _full_mask(log_alpha, mask, sizes) -> torch.Tensor | None:
    """The boolean mask from ``mask`` and ``sizes``, broadcast to ``log_alpha``'s shape."""
    n, m = log_alpha.shape[-2:]
    masks = []
    if mask is not None:
        _checks.tensor(mask, "mask")
        if mask.dtype != torch.bool:
            raise InvalidTypeError(f"mask must be a bool tensor, got dtype {mask.dtype}")
        masks.append(mask.to(log_alpha.device))
    if sizes is not None:
        masks.append(size_mask(sizes, n, m, log_alpha.device))
    if not masks:
        return None
    full = masks[0] if len(masks) == 1 else masks[0] & masks[1]
    try:
        return full.expand(log_alpha.shape)
    except RuntimeError as err:
        raise InvalidValueError(
            f"mask/sizes give shape {tuple(full.shape)}, which does not broadcast to "
            f"log_alpha's {tuple(log_alpha.shape)}"
        ) from err


def _info(solution: Solution, batch_shape, tol) -> SinkhornInfo:
    error = solution.error().reshape(batch_shape)
    judge = REPORT_TOL if tol is None else tol
    return SinkhornInfo(solution.n_iter, error, error < judge, judge)


def _warn(message: str) -> None:
    """Warn at the first frame outside this package's ops (once per call site, by default)."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, SinkhornConvergenceWarning, stacklevel=level)


class _SinkhornFunction(torch.autograd.Function):
    """log P (or P) of a flat batch (B, N, M); the backward is unrolled or implicit."""

    @staticmethod
    def forward(ctx, log_alpha, mask, settings: _Settings, report: list):
        with _full_precision(log_alpha.device):
            return _SinkhornFunction._forward(ctx, log_alpha, mask, settings, report)

    @staticmethod
    def _forward(ctx, log_alpha, mask, settings: _Settings, report: list):
        problem = _problem(log_alpha, mask, settings)
        unrolled = settings.backward == "unrolled"
        record = unrolled and ctx.needs_input_grad[0]
        # decided here for the backward too (the switch may change in between); the native
        # kernels run a fixed number of iterations: with tol, the torch solver
        ctx.native = _native.usable(problem.x)
        if ctx.native and settings.tol is None:
            want_plan = not settings.log or (not unrolled and ctx.needs_input_grad[0])
            solution = _native.solve(
                problem, settings.n_iter, record=record, log=settings.log, plan=want_plan
            )
        else:
            solution = solve(problem, settings.n_iter, tol=settings.tol, record=record)
        report.append(solution)
        full = solution.log_plan() if settings.log else solution.plan()
        out = full[:, : problem.n_rows]
        ctx.settings, ctx.n_rows = settings, problem.n_rows
        if ctx.needs_input_grad[0]:
            ctx.solution = solution if unrolled else None
            ctx.mask, ctx.n_iter = mask, solution.n_iter
            plan = None if unrolled else (full if not settings.log else solution.plan())
            ctx.save_for_backward(out, plan, log_alpha)
        return out.to(log_alpha.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        with _full_precision(grad_out.device):
            return _SinkhornFunction._backward(ctx, grad_out)

    @staticmethod
    def _backward(ctx, grad_out):
        out, plan, log_alpha = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: the gradient must be differentiable too
            return _differentiable_grad(ctx, log_alpha, grad_out), None, None, None
        grad = grad_out.to(out.dtype)
        # the gradient with respect to log P; 0 where P is exactly 0
        grad = torch.where(out > float("-inf"), grad, 0.0) if ctx.settings.log else grad * out
        grad = _pad_rows(grad, (plan if plan is not None else ctx.solution.problem.x).shape[-2])
        if plan is None:
            native = isinstance(ctx.solution, _native.Solution)
            dx = (_native.reverse if native else reverse)(ctx.solution, grad)
        else:
            dx = (_native.implicit_grad if ctx.native else implicit_grad)(plan, grad)
        if ctx.settings.tau != 1:
            dx.div_(ctx.settings.tau)
        return dx[:, : ctx.n_rows].to(grad_out.dtype), None, None, None


def _full_precision(device: torch.device):
    """Autocast off on ``device``: under it the solver's matrix products would run in bfloat16 /
    float16, and the plan's marginals would be off by about 1e-2."""
    if torch.is_autocast_enabled(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def _differentiable_grad(ctx, log_alpha: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    """The backward's result computed with autograd-tracked operations, for double backward.

    The forward is recomputed from ``log_alpha`` by the same number of log-domain iterations (the
    same function as the fast solver's); the unrolled gradient is autograd's through them, the
    implicit one ``implicit_grad`` (with a dense solve) on the recomputed plan. Slow and
    memory-hungry, like any differentiation through the iterations, but exact: higher derivatives
    exist as they should.
    """
    settings = ctx.settings
    with torch.enable_grad():
        log_plan = log_iterations(_problem(log_alpha, ctx.mask, settings), ctx.n_iter)
        out = log_plan[:, : ctx.n_rows]
        grad = grad_out.to(out.dtype)
        if settings.log:
            grad = torch.where(out > float("-inf"), grad, 0.0)
        if settings.backward == "unrolled":
            result = out if settings.log else out.exp()
            (dx,) = torch.autograd.grad(result, log_alpha, grad, create_graph=True)
            return dx
        grad_log_plan = _pad_rows(grad if settings.log else grad * out.exp(), log_plan.shape[-2])
        dx = implicit_grad(log_plan.exp(), grad_log_plan, differentiable=True)[:, : ctx.n_rows]
        return (dx / settings.tau if settings.tau != 1 else dx).to(grad_out.dtype)


def _problem(log_alpha: torch.Tensor, mask, settings: _Settings):
    """The solver's problem for ``log_alpha / tau`` (float16 and bfloat16 in float32)."""
    work = torch.float64 if log_alpha.dtype == torch.float64 else torch.float32
    scores = log_alpha.to(work)
    if settings.tau == 1:
        return build(scores, mask)
    return build(scores / settings.tau, mask, unscaled=scores)


def _pad_rows(grad: torch.Tensor, rows: int) -> torch.Tensor:
    """``grad`` with zero rows appended up to ``rows``: the slack row is not an output."""
    missing = rows - grad.shape[-2]
    if not missing:
        return grad
    return torch.cat([grad, grad.new_zeros(grad.shape[0], missing, grad.shape[-1])], dim=-2)
