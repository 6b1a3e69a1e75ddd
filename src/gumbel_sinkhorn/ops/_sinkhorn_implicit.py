"""The implicit gradient of the Sinkhorn fixed point (Eisenberger et al., CVPR 2022).

At ``P = exp(x + f 1^T + 1 g^T)`` with row sums ``r`` and column sums ``c``, a change ``dx`` moves
the potentials so that the sums stay put. For ``H = dL/dlog P`` this gives::

    dL/dx = H - P * (alpha 1^T + 1 beta^T),   [diag(r)  P     ] [alpha]   [H 1  ]
                                              [P^T      diag(c)] [beta ] = [H^T 1]

solved here by eliminating ``alpha`` and running conjugate gradient on the Schur complement
``S = diag(c) - P^T diag(1/r) P`` (positive semi-definite, null space along ``1``, which the
right-hand side never touches): two batched matrix-vector products per step, never the dense
``(N + M)^2`` system. Up to ``M = DENSE_UP_TO`` columns ``S`` is formed and solved directly
instead: its O(M^3) cost is then below that of the tens to hundreds of steps conjugate gradient
takes near a permutation, and about equal elsewhere (one CPU thread, (64, 25) / (64, 64): 0.8 / 6.9
ms dense against 1.3 / 6.1 ms at tau = 1 and 5.6 / 21.6 ms at tau = 1/30).

As ``P`` nears a permutation ``S`` becomes ill-conditioned: the solve runs in float64 on
``S + 1e-9 I``, conjugate gradient with a bounded number of steps, so it stays finite and bounded
there (exact to about 1e-9 relative elsewhere), preconditioned by the inverse of its diagonal (at
tau = 1/30, (64, 100): 90 steps to 2e-10 of a dense solve, where plain conjugate gradient stopped at
its 220-step bound 2e-5 away).
"""

from __future__ import annotations

import torch

from ._sinkhorn_solver import _mv, _vm

CHECK_EVERY = 10
CG_TOL = 1e-10  # conjugate gradient stops once the residual is below this fraction of the rhs
DAMPING = 1e-9  # Tikhonov term added to S (see implicit_grad)
DENSE_UP_TO = 64  # columns up to which S is solved directly rather than by conjugate gradient


def implicit_grad(
    plan: torch.Tensor, grad_log_plan: torch.Tensor, *, differentiable: bool = False
) -> torch.Tensor:
    """``dL/dx`` (B, R, M) from the plan ``P`` and ``H = dL/dlog P`` (zero where ``P`` is 0).

    ``differentiable``: solve ``S`` densely (O(M^3)) at any size, so that autograd
    differentiates the exact solution (second derivatives), not the steps of an iteration whose
    stopping point moves with its input.
    """
    # Near a permutation (low tau, large scores) S is nearly singular in many directions: alpha
    # and beta grow like 1 / (smallest coupling) while the gradient stays bounded, so the solve
    # runs in float64 and on S + DAMPING * I, which bounds them by |rhs| / DAMPING.
    P, H = plan.double(), grad_log_plan.double()
    rows, cols = P.sum(-1), P.sum(-2)
    rows = torch.where(rows > 0, rows, 1.0)  # padding: decoupled, and its right-hand side is 0
    cols = torch.where(cols > 0, cols, 1.0)
    h_rows = H.sum(-1)
    rhs = H.sum(-2) - _vm(h_rows / rows, P)
    diagonal = cols + DAMPING
    if differentiable or P.shape[-1] <= DENSE_UP_TO:
        S = torch.diag_embed(diagonal) - P.mT @ (P / rows.unsqueeze(-1))
        beta = torch.linalg.solve(S, rhs)
    else:
        # S's own diagonal for the preconditioner (at least DAMPING, as in exact terms)
        own = (diagonal - (P * P).div_(rows.unsqueeze(-1)).sum(-2)).clamp_(min=DAMPING)
        beta = _conjugate_gradient(lambda y: diagonal * y - _vm(_mv(P, y) / rows, P), rhs, 1 / own)
    alpha = (h_rows - _mv(P, beta)) / rows
    grad = torch.addcmul(H, P, alpha.unsqueeze(-1) + beta.unsqueeze(-2), value=-1.0)
    return grad.to(grad_log_plan.dtype)


def _conjugate_gradient(apply, rhs: torch.Tensor, inverse_diagonal: torch.Tensor) -> torch.Tensor:
    """Solve ``apply(y) = rhs`` for a batch (B, M) of symmetric semi-definite systems.

    Conjugate gradient preconditioned by ``inverse_diagonal`` (Jacobi); each item stops once its
    residual is below 1e-10 of its right-hand side.
    """
    tol = CG_TOL
    max_iter = 2 * rhs.shape[-1] + 20
    y = torch.zeros_like(rhs)
    residual = rhs.clone()
    direction = residual * inverse_diagonal
    power = (residual * direction).sum(-1)
    size = (residual * residual).sum(-1)
    stop = (tol**2) * size
    for step in range(1, max_iter + 1):
        applied = apply(direction)
        curvature = (direction * applied).sum(-1)
        ok = (curvature > 0) & (size > stop)
        alpha = torch.where(ok, power / torch.where(ok, curvature, 1.0), 0.0)
        y = y + alpha.unsqueeze(-1) * direction
        residual = residual - alpha.unsqueeze(-1) * applied
        size = (residual * residual).sum(-1)
        if step % CHECK_EVERY == 0 and not bool((size > stop).any()):
            break
        preconditioned = residual * inverse_diagonal
        new_power = (residual * preconditioned).sum(-1)
        ratio = torch.where(power > 0, new_power / torch.where(power > 0, power, 1.0), 0.0)
        direction = preconditioned + ratio.unsqueeze(-1) * direction
        power = new_power
    return y
