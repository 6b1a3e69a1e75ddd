import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from gumbel_sinkhorn import (
    kendall_tau,
    l1_error,
    l2_error,
    prop_any_wrong,
    prop_wrong,
    random_permutation,
)


@given(n=st.integers(2, 30), seed=st.integers(0, 9999))
def test_kendall_tau_equals_scipy(n, seed):
    gen = torch.Generator().manual_seed(seed)
    pred, true = random_permutation(2, 3, n, generator=gen).unbind(0)
    ours = kendall_tau(pred, true)
    assert ours.shape == (3,)
    for p, t, k in zip(pred, true, ours, strict=True):
        assert k.item() == pytest.approx(stats.kendalltau(p, t).statistic, abs=1e-6)


def test_kendall_tau_with_ties_equals_scipy_tau_b():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, 4, (2, 20, 9), generator=gen)
    for x, y, k in zip(a, b, kendall_tau(a, b), strict=True):
        assert k.item() == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-6)


def test_kendall_tau_extremes():
    perm = torch.arange(10)
    assert kendall_tau(perm, perm).item() == 1.0
    assert kendall_tau(perm.flip(0), perm).item() == -1.0


def test_proportions():
    true = torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3], [3, 2, 1, 0]])
    pred = torch.tensor([[0, 1, 2, 3], [1, 0, 2, 3], [0, 1, 2, 3]])
    torch.testing.assert_close(prop_wrong(pred, true), torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(prop_any_wrong(pred, true), torch.tensor([0.0, 1.0, 1.0]))


def test_reconstruction_errors_per_item():
    x = torch.zeros(2, 3, 2, 2)
    x_hat = x.clone()
    x_hat[1, 0, 0, 0] = 2.0
    torch.testing.assert_close(l1_error(x_hat, x), torch.tensor([0.0, 2 / 12]))
    torch.testing.assert_close(l2_error(x_hat, x), torch.tensor([0.0, 4 / 12]))
    assert l1_error(x_hat, x, batch_dims=2).shape == (2, 3)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: kendall_tau(torch.arange(3), torch.arange(4)), ValueError, "same shape"),
        (lambda: kendall_tau(torch.arange(1), torch.arange(1)), ValueError, "N >= 2"),
        (lambda: prop_wrong(torch.rand(3), torch.rand(3)), TypeError, "integer dtype"),
        (lambda: l1_error(torch.rand(2, 3), torch.rand(3, 2)), ValueError, "same shape"),
        (lambda: l2_error(torch.rand(2), torch.rand(2), batch_dims=3), ValueError, "batch_dims"),
    ],
)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()
