import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gumbel_sinkhorn import log_sinkhorn, matching, sinkhorn


def seed_log_sinkhorn(log_alpha, n_iter):
    """The tutorial's formula: alternate row and column log-sum-exp normalisation."""
    for _ in range(n_iter):
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-1, keepdim=True)
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-2, keepdim=True)
    return log_alpha


@pytest.mark.parametrize("n_iter", [1, 2, 7, 20])
@pytest.mark.parametrize("tau", [1.0, 0.3, 5.0])
def test_agrees_with_seed_formula(n_iter, tau):
    log_alpha = torch.randn(
        5, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    expected = seed_log_sinkhorn(log_alpha / tau, n_iter)
    torch.testing.assert_close(log_sinkhorn(log_alpha, n_iter=n_iter, tau=tau), expected)
    torch.testing.assert_close(sinkhorn(log_alpha, n_iter=n_iter, tau=tau), expected.exp())


@given(
    shape=st.tuples(st.integers(1, 3), st.integers(2, 12)),
    log_tau=st.floats(-3, 1),
    spread=st.floats(0, 5),
    n_iter=st.integers(1, 45),
    seed=st.integers(0, 2**16),
)
def test_plan_and_gradient_are_the_seed_formulas_at_any_temperature(
    shape, log_tau, spread, n_iter, seed
):
    # tau from 1e-3 to 10 and n_iter across chunk boundaries: the scaling form, its absorptions
    # and its log-domain redos must all compute the seed's function and its autograd gradient.
    (b, n), tau = shape, 10.0**log_tau
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(b, n, n, dtype=torch.float64, generator=gen) * 10**spread).requires_grad_()
    weights = torch.randn(b, n, n, dtype=torch.float64, generator=gen)
    ours = sinkhorn(x, n_iter=n_iter, tau=tau)
    (grad,) = torch.autograd.grad((ours * weights).sum(), x)
    expected = seed_log_sinkhorn(x / tau, n_iter).exp()
    (expected_grad,) = torch.autograd.grad((expected * weights).sum(), x)
    torch.testing.assert_close(ours, expected, atol=1e-9, rtol=1e-7)
    scale = expected_grad.abs().max().item()
    torch.testing.assert_close(grad, expected_grad, atol=1e-8 * max(scale, 1.0), rtol=1e-6)


def test_scores_that_overflow_to_minus_inf_divided_by_tau():
    # single entries may (their plan entries are 0 either way); a whole row would silently have
    # become padding, P = [[0.5, 0.5], [0, 0]] instead of 0.5 everywhere
    diagonal = torch.tensor([[0.0, -1e38], [-1e38, 0.0]])
    torch.testing.assert_close(sinkhorn(diagonal, n_iter=5, tau=1e-30), torch.eye(2))
    with pytest.raises(ValueError, match="overflows to -inf along a whole row or column"):
        sinkhorn(torch.tensor([[0.0, 0.0], [-1e38, -1e38]]), n_iter=5, tau=1e-30)
    with pytest.raises(ValueError, match="overflows to -inf along a whole row or column"):
        sinkhorn(torch.tensor([[0.0, -1e38], [0.0, -1e38]]), n_iter=5, tau=1e-30)  # a column
    padded = torch.tensor([[0.0, 0.0], [-math.inf, -math.inf]])  # the caller's own padding row
    torch.testing.assert_close(
        sinkhorn(padded, n_iter=5, tau=1e-30), torch.tensor([[0.5, 0.5], [0, 0]])
    )


def test_doubly_stochastic_after_enough_iterations():
    gen = torch.Generator().manual_seed(2)
    P = sinkhorn(torch.randn(8, 10, 10, dtype=torch.float64, generator=gen) * 3, n_iter=1000)
    ones = torch.ones(8, 10, dtype=torch.float64)
    torch.testing.assert_close(P.sum(-1), ones, atol=1e-6, rtol=0)
    torch.testing.assert_close(P.sum(-2), ones, atol=1e-12, rtol=0)
    assert (P >= 0).all()


def test_leading_batch_dimensions_are_independent():
    log_alpha = torch.randn(2, 3, 4, 4)
    batched = sinkhorn(log_alpha)
    for i, j in itertools.product(range(2), range(3)):
        torch.testing.assert_close(batched[i, j], sinkhorn(log_alpha[i, j]))


def test_keeps_dtype_and_2d_shape():
    for dtype in (torch.float32, torch.float64):
        out = sinkhorn(torch.randn(3, 3, dtype=dtype))
        assert out.dtype == dtype and out.shape == (3, 3)


@given(
    n=st.integers(2, 6),
    row=st.integers(0, 5),
    col=st.integers(0, 5),
    shift=st.floats(-50, 50),
    seed=st.integers(0, 2**16),
)
def test_invariant_to_constant_added_to_a_row_or_column(n, row, col, shift, seed):
    log_alpha = torch.randn(
        n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )
    P = sinkhorn(log_alpha, n_iter=200)
    shifted_row = log_alpha.clone()
    shifted_row[row % n] += shift
    shifted_col = log_alpha.clone()
    shifted_col[:, col % n] += shift
    torch.testing.assert_close(sinkhorn(shifted_row, n_iter=200), P, atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(sinkhorn(shifted_col, n_iter=200), P, atol=1e-8, rtol=1e-6)


@given(n=st.integers(2, 7), seed=st.integers(0, 2**16))
def test_equivariant_to_row_and_column_permutations(n, seed):
    gen = torch.Generator().manual_seed(seed)
    log_alpha = torch.randn(n, n, dtype=torch.float64, generator=gen)
    rows, cols = torch.randperm(n, generator=gen), torch.randperm(n, generator=gen)
    P = sinkhorn(log_alpha, n_iter=100)
    torch.testing.assert_close(sinkhorn(log_alpha[rows][:, cols], n_iter=100), P[rows][:, cols])


def test_gradcheck_float64():
    log_alpha = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: sinkhorn(x, n_iter=10, tau=0.7), (log_alpha,))
    assert torch.autograd.gradcheck(lambda x: log_sinkhorn(x, n_iter=10, tau=0.7), (log_alpha,))


def test_low_temperature_limit_is_the_matching():
    # M(X) = lim S(X / tau): checked where the best assignment beats the runner-up by a margin
    # (with a near-tie Sinkhorn at finite tau and n_iter may settle between the two).
    log_alpha = torch.randn(
        60, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    perms = torch.tensor(list(itertools.permutations(range(5))))
    totals = log_alpha[:, torch.arange(5), perms].sum(-1)  # (items, 120)
    best_two = totals.topk(2, dim=-1).values
    clear = best_two[:, 0] - best_two[:, 1] > 0.05
    assert clear.sum() >= 40
    P = sinkhorn(log_alpha[clear], n_iter=2000, tau=0.01)
    assert torch.equal(P.argmax(-1), matching(log_alpha[clear]))


def test_forbidden_entries_stay_zero():
    log_alpha = torch.randn(4, 4)
    log_alpha[0, 1] = float("-inf")
    P = sinkhorn(log_alpha, n_iter=50)
    assert P[0, 1] == 0 and P.isfinite().all()


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (([[1.0, 2.0], [3.0, 4.0]],), {}, TypeError, "torch.Tensor"),
        ((torch.randn(4),), {}, ValueError, "at least 2 dimensions"),
        ((torch.randn(4, 3),), {}, ValueError, "N <= M"),  # N < M: a partial permutation
        ((torch.randn(3, 3),), {"tau": 0.0}, ValueError, "tau must be a finite number > 0"),
        ((torch.randn(3, 3),), {"tau": -1.0}, ValueError, "tau"),
        ((torch.randn(3, 3),), {"n_iter": 0}, ValueError, "n_iter must be >= 1"),
        ((torch.randn(3, 3),), {"n_iter": 2.5}, TypeError, "n_iter must be an integer"),
        ((torch.ones(3, 3, dtype=torch.int64),), {}, TypeError, "floating-point"),
        ((torch.tensor([[0.0, float("nan")], [1.0, 2.0]]),), {}, ValueError, "NaN"),
        ((torch.randn(2, 0, 0),), {}, ValueError, "N >= 1"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(args, kwargs, error, message):
    for fn in (sinkhorn, log_sinkhorn):
        with pytest.raises(error, match=message):
            fn(*args, **kwargs)


def test_tau_and_n_iter_given_by_position_still_work_with_a_deprecation_warning():
    from gumbel_sinkhorn import gumbel_sinkhorn
    from gumbel_sinkhorn.errors import InvalidTypeError

    x = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(0))
    with pytest.warns(DeprecationWarning, match="n_iter by keyword"):
        old = sinkhorn(x, 7)
    torch.testing.assert_close(old, sinkhorn(x, n_iter=7), atol=0, rtol=0)
    with pytest.warns(DeprecationWarning, match="n_iter by keyword"):
        torch.testing.assert_close(log_sinkhorn(x, 7), log_sinkhorn(x, n_iter=7), atol=0, rtol=0)
    with pytest.warns(DeprecationWarning, match="tau, n_iter by keyword"):
        old = gumbel_sinkhorn(x, 0.5, 7, generator=torch.Generator().manual_seed(1))
    new = gumbel_sinkhorn(x, tau=0.5, n_iter=7, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(old, new, atol=0, rtol=0)
    with pytest.raises(InvalidTypeError, match="two values for 'n_iter'"):
        sinkhorn(x, 7, n_iter=8)
    with pytest.raises(InvalidTypeError, match="by keyword"):
        sinkhorn(x, 7, 0.5)
