"""Sinkhorn at scale: both backward modes, tolerance and report, padding, rectangles, numerics."""

import warnings

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from gumbel_sinkhorn import gumbel_sinkhorn, log_sinkhorn, sinkhorn
from gumbel_sinkhorn.ops import _sinkhorn_implicit, _sinkhorn_problem, _sinkhorn_solver
from gumbel_sinkhorn.ops.sinkhorn import SinkhornConvergenceWarning

F64 = torch.float64


def randn(*shape, seed=0, dtype=F64, scale=1.0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed)) * scale


def seed_log_sinkhorn(log_alpha, n_iter):
    """The tutorial's formula, differentiated by autograd: the reference for both outputs."""
    for _ in range(n_iter):
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-1, keepdim=True)
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-2, keepdim=True)
    return log_alpha


def grad_of(fn, x, weights):
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    (torch.where(out.isfinite(), out, 0.0) * weights).sum().backward()
    return out.detach(), x.grad


# tau = 1: scores within a few nats; 0.05 and 0.005: spanning tens to hundreds of nats
@pytest.mark.parametrize("tau", [1.0, 0.05, 0.005])
@pytest.mark.parametrize("log", [False, True])
def test_unrolled_gradient_equals_autograd_through_the_seed(tau, log):
    x, w = randn(3, 6, 6, seed=1), randn(3, 6, 6, seed=2)
    ours = log_sinkhorn if log else sinkhorn

    def seed(t):
        out = seed_log_sinkhorn(t / tau, 25)
        return out if log else out.exp()

    out, grad = grad_of(lambda t: ours(t, n_iter=25, tau=tau), x, w)
    expected_out, expected_grad = grad_of(seed, x, w)
    torch.testing.assert_close(out, expected_out, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(grad, expected_grad, atol=1e-8, rtol=1e-7)


def test_log_domain_fallback_gives_the_same_function(monkeypatch):
    x, w = randn(4, 7, 7, seed=3), randn(4, 7, 7, seed=4)
    fast = grad_of(lambda t: sinkhorn(t, n_iter=23, tau=0.3), x, w)
    monkeypatch.setattr(_sinkhorn_solver, "_limit", lambda dtype: 0.0)  # every chunk falls back
    slow = grad_of(lambda t: sinkhorn(t, n_iter=23, tau=0.3), x, w)
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


def chunk_kinds(x, n_iter):
    problem = _sinkhorn_problem.build(x, None)
    solution = _sinkhorn_solver.solve(problem, n_iter, tol=None, record=True)
    kinds = [("scaling" if c.base else "log", len(c.rows)) for c in solution.chunks]
    return kinds, solution.log_plan()


def test_low_temperatures_stay_in_the_scaling_form_from_a_balanced_first_kernel():
    """Scores spanning ~200 nats: with g = 0 as its base the first kernel overflowed."""
    x = randn(8, 36, 36, seed=5, dtype=torch.float32, scale=30.0)
    kinds, log_plan = chunk_kinds(x, 20)
    assert kinds == [("scaling", 10), ("scaling", 10)]
    expected = seed_log_sinkhorn(x.double(), 20)
    torch.testing.assert_close(log_plan.double(), expected, atol=2e-3, rtol=1e-4)


def test_an_overflowing_chunk_is_redone_one_log_step_first_then_whole(monkeypatch):
    monkeypatch.setattr(_sinkhorn_solver, "_limit", lambda dtype: 3.0)  # overflows sooner
    x = randn(8, 36, 36, seed=5, dtype=torch.float32, scale=10.0)
    kinds, log_plan = chunk_kinds(x, 20)
    assert kinds == [("log", 1), ("log", 10), ("scaling", 9)]
    expected = seed_log_sinkhorn(x.double(), 20)
    torch.testing.assert_close(log_plan.double(), expected, atol=2e-3, rtol=1e-4)


def converged(fn, **options):
    return lambda t: fn(t, n_iter=5000, tol=1e-13, **options)


@pytest.fixture(params=["dense", "conjugate gradient"])
def implicit_solver(request, monkeypatch):
    """Both ways the implicit backward solves its system (small sizes go dense by default)."""
    if request.param == "conjugate gradient":
        monkeypatch.setattr(_sinkhorn_implicit, "DENSE_UP_TO", 0)
    return request.param


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape", [(3, 5, 5), (2, 4, 7)])
def test_implicit_gradient_equals_unrolled_at_convergence(log, shape, implicit_solver):
    x, w = randn(*shape, seed=5), randn(*shape, seed=6)
    fn = log_sinkhorn if log else sinkhorn
    out, unrolled = grad_of(converged(fn, tau=0.5), x, w)
    out_i, implicit = grad_of(converged(fn, tau=0.5, backward="implicit"), x, w)
    torch.testing.assert_close(out_i, out)
    torch.testing.assert_close(implicit, unrolled, atol=1e-8, rtol=1e-6)


@given(
    n=st.integers(2, 7),
    extra=st.integers(0, 3),
    log_tau=st.floats(-0.5, 0.5),
    dense=st.booleans(),
    log=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_implicit_equals_unrolled_at_convergence_for_any_shape(n, extra, log_tau, dense, log, seed):
    x, w = randn(2, n, n + extra, seed=seed), randn(2, n, n + extra, seed=seed + 1)
    fn, tau = (log_sinkhorn if log else sinkhorn), 10.0**log_tau
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SinkhornConvergenceWarning)
        _, info = sinkhorn(x, n_iter=5000, tau=tau, tol=1e-13, return_info=True)
    assume(bool(info.converged.all()))  # near a permutation it may not: then they differ
    out, unrolled = grad_of(converged(fn, tau=tau), x, w)
    default = _sinkhorn_implicit.DENSE_UP_TO
    _sinkhorn_implicit.DENSE_UP_TO = default if dense else 0  # else conjugate gradient
    try:
        out_i, implicit = grad_of(converged(fn, tau=tau, backward="implicit"), x, w)
    finally:
        _sinkhorn_implicit.DENSE_UP_TO = default
    torch.testing.assert_close(out_i, out)
    torch.testing.assert_close(implicit, unrolled, atol=1e-7, rtol=1e-6)


def test_implicit_solve_converges_near_a_permutation(implicit_solver):
    # tau = 1/30 on (8, 49): plain conjugate gradient stopped at its step bound 1e-5 away from the
    # solution; preconditioned, it gets there. Reference: a dense solve of the same damped system.
    from gumbel_sinkhorn.ops._sinkhorn_implicit import DAMPING, implicit_grad

    P = sinkhorn(randn(8, 49, 49, seed=23, scale=30.0), n_iter=20)
    H = randn(8, 49, 49, seed=24) * P
    rows, cols = P.sum(-1), P.sum(-2)
    S = torch.diag_embed(cols + DAMPING) - P.mT @ (P / rows.unsqueeze(-1))
    rhs = H.sum(-2) - ((H.sum(-1) / rows).unsqueeze(-2) @ P).squeeze(-2)
    beta = torch.linalg.solve(S, rhs)
    alpha = (H.sum(-1) - (P @ beta.unsqueeze(-1)).squeeze(-1)) / rows
    expected = H - P * (alpha.unsqueeze(-1) + beta.unsqueeze(-2))
    got = implicit_grad(P, H)
    assert (got - expected).abs().max() <= 1e-8 * expected.abs().max()


def test_implicit_passes_gradcheck(implicit_solver):
    x = randn(2, 4, 4, seed=7).requires_grad_()
    rect = randn(2, 3, 5, seed=8).requires_grad_()
    sizes = torch.tensor([4, 3])
    for fn in (sinkhorn, log_sinkhorn):
        assert torch.autograd.gradcheck(converged(fn, tau=0.7, backward="implicit"), (x,))
        assert torch.autograd.gradcheck(converged(fn, backward="implicit"), (rect,))
    assert torch.autograd.gradcheck(converged(sinkhorn, backward="implicit", sizes=sizes), (x,))


def test_unrolled_passes_gradcheck_with_padding_and_rectangles():
    x = randn(3, 4, 6, seed=9).requires_grad_()
    sizes = (torch.tensor([4, 2, 3]), torch.tensor([6, 5, 3]))
    assert torch.autograd.gradcheck(lambda t: sinkhorn(t, n_iter=12, tau=0.7, sizes=sizes), (x,))


@pytest.mark.parametrize("backward", ["unrolled", "implicit"])
@pytest.mark.parametrize("log", [False, True])
def test_padded_items_equal_the_items_run_alone(backward, log):
    fn = log_sinkhorn if log else sinkhorn
    x, w = randn(3, 6, 6, seed=10), randn(3, 6, 6, seed=11)
    sizes = torch.tensor([6, 4, 1])
    opts = {"tau": 0.6, "backward": backward, "tol": 1e-12}
    out, grad = grad_of(lambda t: fn(t, n_iter=400, sizes=sizes, **opts), x, w)
    padding = 0.0 if not log else float("-inf")
    assert grad.isfinite().all()
    for item, n in enumerate(sizes.tolist()):
        alone, alone_grad = grad_of(
            lambda t: fn(t, n_iter=400, **opts), x[item, :n, :n], w[item, :n, :n]
        )
        torch.testing.assert_close(out[item, :n, :n], alone)
        torch.testing.assert_close(grad[item, :n, :n], alone_grad)
        assert (out[item, n:] == padding).all() and (out[item, :, n:] == padding).all()
        assert (grad[item, n:] == 0).all() and (grad[item, :, n:] == 0).all()


@given(
    data=st.data(),
    n=st.integers(2, 7),
    log_tau=st.floats(-2, 1),
    n_iter=st.integers(1, 30),
    backward=st.sampled_from(["unrolled", "implicit"]),
    seed=st.integers(0, 2**16),
)
def test_any_padding_gives_each_item_its_own_result(data, n, log_tau, n_iter, backward, seed):
    rows = data.draw(st.lists(st.integers(1, n), min_size=1, max_size=3))
    cols = [data.draw(st.integers(r, n)) for r in rows]  # rectangular items: rows <= columns
    opts = {"tau": 10.0**log_tau, "backward": backward}
    x, w = randn(len(rows), n, n, seed=seed), randn(len(rows), n, n, seed=seed + 1)
    sizes = (torch.tensor(rows), torch.tensor(cols))
    out, grad = grad_of(lambda t: sinkhorn(t, n_iter=n_iter, sizes=sizes, **opts), x, w)
    for item, (r, c) in enumerate(zip(rows, cols, strict=True)):
        alone = grad_of(
            lambda t: sinkhorn(t, n_iter=n_iter, **opts), x[item, :r, :c], w[item, :r, :c]
        )
        torch.testing.assert_close(out[item, :r, :c], alone[0], atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(grad[item, :r, :c], alone[1], atol=1e-8, rtol=1e-6)
        assert (out[item, r:] == 0).all() and (out[item, :, c:] == 0).all()
        assert (grad[item, r:] == 0).all() and (grad[item, :, c:] == 0).all()


def test_mask_and_minus_inf_padding_agree_with_sizes():
    x, w = randn(2, 5, 5, seed=12), randn(2, 5, 5, seed=13)
    sizes = torch.tensor([5, 3])
    mask = torch.ones(2, 5, 5, dtype=torch.bool)
    mask[1, 3:], mask[1, :, 3:] = False, False
    padded = x.masked_fill(~mask, float("-inf"))  # what users of other libraries do
    by_sizes = grad_of(lambda t: sinkhorn(t, n_iter=30, sizes=sizes), x, w)
    by_mask = grad_of(lambda t: sinkhorn(t, n_iter=30, mask=mask), x, w)
    by_inf = grad_of(lambda t: sinkhorn(t, n_iter=30), padded, w)
    for other in (by_mask, by_inf):
        torch.testing.assert_close(other[0], by_sizes[0])
        torch.testing.assert_close(other[1], by_sizes[1])


@pytest.mark.parametrize("backward", ["unrolled", "implicit"])
def test_rectangular_rows_sum_to_one_and_columns_to_at_most_one(backward):
    x = randn(4, 5, 9, seed=14, scale=2.0).requires_grad_()
    P, info = sinkhorn(x, n_iter=2000, tol=1e-10, backward=backward, return_info=True)
    assert bool(info.converged.all())
    torch.testing.assert_close(P.sum(-1), torch.ones(4, 5, dtype=F64), atol=1e-9, rtol=0)
    assert (P.sum(-2) <= 1 + 1e-12).all() and (P >= 0).all()
    torch.testing.assert_close(P.sum((-1, -2)), torch.full((4,), 5.0, dtype=F64))
    P.pow(2).sum().backward()
    assert x.grad.isfinite().all()


def test_rectangular_is_square_with_constant_rows_added():
    x = randn(3, 7, seed=15)
    square = torch.cat([x, torch.zeros(4, 7, dtype=F64)])  # the value of the rows is irrelevant
    torch.testing.assert_close(sinkhorn(x, n_iter=60), sinkhorn(square, n_iter=60)[:3])


def test_tolerance_stops_early_reports_and_is_the_same_function():
    x = randn(8, 6, 6, seed=16)
    P, info = sinkhorn(x, n_iter=1000, tol=1e-8, return_info=True)
    assert info.n_iter < 1000 and info.n_iter % 10 == 0
    assert info.error.shape == (8,) and (info.error < 1e-8).all() and info.converged.all()
    assert info.tol == 1e-8
    # the same iterations (with tol the torch solver runs them, without it the native kernels:
    # equal up to rounding)
    torch.testing.assert_close(P, sinkhorn(x, n_iter=info.n_iter), atol=1e-15, rtol=0)
    torch.testing.assert_close(P.sum(-1), torch.ones(8, 6, dtype=F64), atol=1e-8, rtol=0)
    # without tol: judged at the report tolerance
    _, plain = sinkhorn(x, n_iter=3, return_info=True)
    assert plain.n_iter == 3 and plain.tol == 1e-3


def call_unconverged(log_alpha):
    return sinkhorn(log_alpha, n_iter=10, tau=0.01, tol=1e-9)


def test_warns_once_per_call_site_when_n_iter_runs_out():
    x = randn(2, 8, 8, seed=17)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            call_unconverged(x)
        gumbel_sinkhorn(x, tau=0.01, n_iter=10, tol=1e-9, generator=torch.Generator())
    ours = [w for w in caught if issubclass(w.category, SinkhornConvergenceWarning)]
    assert len(ours) == 2  # one per call site, each pointing at the caller's line
    assert all(w.filename == __file__ for w in ours)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sinkhorn(x, n_iter=1000, tol=1e-6)  # converges: no warning


@pytest.mark.parametrize("backward", ["unrolled", "implicit"])
@pytest.mark.parametrize("tau", [1e-4, 1e-2, 1.0])
def test_no_nan_at_low_temperature_and_large_scores_in_float32(backward, tau):
    x = randn(4, 12, 12, seed=18, dtype=torch.float32, scale=1e4).clamp(-1e4, 1e4)
    x[0] = x[0].sign() * 1e4  # ties at the largest magnitude
    for fn in (sinkhorn, log_sinkhorn):
        out, grad = grad_of(
            lambda t, fn=fn: fn(t, n_iter=50, tau=tau, backward=backward), x, x / 1e4
        )
        assert not out.isnan().any() and grad.isfinite().all()
    P = sinkhorn(x, n_iter=50, tau=tau)
    assert ((P >= 0) & (P <= 1)).all()
    torch.testing.assert_close(P.sum(-2), torch.ones(4, 12), atol=1e-4, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_round_trip(dtype):
    x = randn(3, 8, 8, seed=19, dtype=torch.float32).to(dtype).requires_grad_()
    P = sinkhorn(x, n_iter=30)
    assert P.dtype == dtype
    reference = sinkhorn(x.detach().float(), n_iter=30)
    torch.testing.assert_close(P.float(), reference, atol=2e-2, rtol=0)
    P.float().pow(2).sum().backward()
    assert x.grad.dtype == dtype and x.grad.isfinite().all()


@pytest.mark.parametrize("backward", ["unrolled", "implicit"])
def test_autocast_does_not_lower_the_solver_precision(backward):
    # under autocast the solver's bmm would run in bfloat16: column sums off by ~5e-3
    x = randn(8, 6, 6, seed=21, dtype=torch.float32, scale=3.0)
    weights = randn(8, 6, 6, seed=22, dtype=torch.float32)
    for fn in (sinkhorn, log_sinkhorn):

        def solve(t, fn=fn):
            return fn(t, n_iter=50, tau=0.5, backward=backward)

        expected = grad_of(solve, x, weights)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = grad_of(solve, x, weights)
        for a, b in zip(got, expected, strict=True):
            assert a.dtype == torch.float32
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def test_gumbel_sinkhorn_passes_the_options_through():
    x = randn(2, 5, 5, seed=20)
    gen = torch.Generator().manual_seed(0)
    P, info = gumbel_sinkhorn(
        x,
        tau=1.0,
        n_iter=2000,
        n_samples=3,
        generator=gen,
        tol=1e-6,
        sizes=torch.tensor([5, 3]),
        return_info=True,
    )
    assert P.shape == (3, 2, 5, 5) and info.error.shape == (3, 2) and info.converged.all()
    assert (P[:, 1, 3:] == 0).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"backward": "autograd"}, ValueError, "backward must be one of"),
        ({"tol": 0.0}, ValueError, "tol must be a finite number > 0"),
        ({"mask": torch.ones(2, 3, 3)}, TypeError, "bool"),
        ({"mask": torch.ones(4, 3, 3, dtype=torch.bool)}, ValueError, "broadcast"),
        ({"sizes": torch.tensor([3, 0])}, ValueError, r"sizes \(rows\) must lie in 1..3"),
        ({"sizes": torch.tensor([3.0, 1.0])}, TypeError, "integers"),
    ],
)
def test_bad_options_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        sinkhorn(torch.randn(2, 3, 3), **kwargs)


def test_impossible_shapes_are_refused():
    with pytest.raises(ValueError, match="N <= M"):
        sinkhorn(torch.randn(4, 3))
    with pytest.raises(ValueError, match="more rows"):
        sinkhorn(torch.randn(3, 3), mask=torch.tensor([True, True, False]))
    with pytest.raises(ValueError, match="no allowed entry"):
        sinkhorn(torch.full((2, 2), float("-inf")))
    with pytest.raises(ValueError, match=r"\+inf"):
        sinkhorn(torch.tensor([[0.0, float("inf")], [0.0, 0.0]]))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16])
def test_implicit_log_gradient_stays_bounded_near_a_permutation(dtype):
    # scores 30 / tau 0.3: P is close to a permutation, the linear system nearly singular
    x, w = randn(2, 7, 7, seed=21, scale=30.0, dtype=dtype), randn(2, 7, 7, seed=22)
    out, implicit = grad_of(
        lambda t: log_sinkhorn(t, n_iter=300, tau=0.3, backward="implicit"), x, w
    )
    _, unrolled = grad_of(lambda t: log_sinkhorn(t, n_iter=300, tau=0.3), x, w)
    assert implicit.isfinite().all()
    assert implicit.abs().max() <= 3 * unrolled.abs().max()


def test_backward_leaves_the_output_alone():
    x = randn(2, 5, 5, seed=23).requires_grad_()
    for backward in ("unrolled", "implicit"):
        P = sinkhorn(x, n_iter=50, backward=backward)
        kept = P.detach().clone()
        P.pow(2).sum().backward()
        assert torch.equal(P.detach(), kept)


@pytest.mark.parametrize("backward", ["unrolled", "implicit"])
@pytest.mark.parametrize("log", [False, True])
def test_the_differentiable_backward_gives_the_fast_backward_s_gradient(backward, log):
    # create_graph=True takes another path (autograd through recomputed iterations): same result
    fn = log_sinkhorn if log else sinkhorn
    sizes = (torch.tensor([4, 2, 3]), torch.tensor([6, 5, 3]))
    for tau, options in ((1.0, {"tol": 1e-12}), (0.05, {}), (0.7, {"sizes": sizes})):
        x, w = randn(3, 4, 6, seed=24), randn(3, 4, 6, seed=25)
        x = x.requires_grad_()
        out = fn(x, n_iter=300, tau=tau, backward=backward, **options)
        loss = (torch.where(out.isfinite(), out, 0.0) * w).sum()
        (fast,) = torch.autograd.grad(loss, x, retain_graph=True)
        (graph,) = torch.autograd.grad(loss, x, create_graph=True)
        assert graph.requires_grad
        torch.testing.assert_close(graph, fast, atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("log", [False, True])
def test_second_derivatives_pass_gradgradcheck(log):
    fn = log_sinkhorn if log else sinkhorn
    x = randn(2, 4, 4, seed=20).requires_grad_()
    rect = randn(2, 3, 5, seed=21).requires_grad_()
    sizes = torch.tensor([4, 3])
    # the unrolled gradient, differentiated again (tau 1 and 0.05, padding, a rectangle)
    for tau in (1.0, 0.05):
        assert torch.autograd.gradgradcheck(lambda t, tau=tau: fn(t, n_iter=12, tau=tau), (x,))
    assert torch.autograd.gradgradcheck(lambda t: fn(t, n_iter=12, tau=0.7, sizes=sizes), (x,))
    assert torch.autograd.gradgradcheck(lambda t: fn(t, n_iter=12), (rect,))
    # the implicit gradient at convergence
    assert torch.autograd.gradgradcheck(converged(fn, tau=0.7, backward="implicit"), (x,))
    assert torch.autograd.gradgradcheck(converged(fn, backward="implicit"), (rect,))


def test_gumbel_sinkhorn_has_second_derivatives():
    x = randn(3, 5, 5, seed=22).requires_grad_()

    def sample(t):
        return gumbel_sinkhorn(t, tau=0.5, generator=torch.Generator().manual_seed(0))

    assert torch.autograd.gradgradcheck(sample, (x,))
    # a gradient penalty: d/dx |d loss/dx|^2 runs and is finite
    (grad,) = torch.autograd.grad((sample(x) * randn(3, 5, 5, seed=23)).sum(), x, create_graph=True)
    grad.square().sum().backward()
    assert x.grad.isfinite().all() and x.grad.abs().sum() > 0
