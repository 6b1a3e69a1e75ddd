"""The solver's exp / logsumexp: torch's values, exact zeros for what underflows."""

import pytest
import torch

from gumbel_sinkhorn.ops import _exp

# above these, ours equals torch.exp bit for bit (below, it is lowered by at most ~3e-38 / 7e-308)
EXACT_ABOVE = {torch.float32: 1e-30, torch.float64: 1e-290}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exp_equals_torch_above_the_floor_and_is_zero_below(dtype):
    g = torch.Generator().manual_seed(0)
    low = torch.finfo(dtype).min
    t = torch.cat(
        [
            torch.randn(5000, generator=g, dtype=dtype) * 300,
            torch.tensor([0.0, -1.0, float("-inf"), low, float("nan")], dtype=dtype),
        ]
    )
    expected = torch.exp(t)
    for got in (_exp.exp(t), _exp.exp_(t.clone())):
        big = expected > EXACT_ABOVE[dtype]
        assert torch.equal(got[big], expected[big])
        small = ~big & ~expected.isnan()  # lowered by the shift (+ rounding), never below 0
        assert (got[small] >= 0).all()
        assert ((expected[small] - got[small]).abs() <= 4 * _exp._shift(_exp.FLOOR[dtype])).all()
        assert (got[t < _exp.FLOOR[dtype]] == 0).all()  # -inf and the most negative: exactly 0
        assert got[-1].isnan()
        assert got.dtype == dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logsumexp_matches_torch_with_inf_rows_and_huge_spreads(dtype):
    g = torch.Generator().manual_seed(1)
    t = torch.randn(6, 7, 8, generator=g, dtype=dtype) * 200
    t[0, 0] = float("-inf")  # a row of -inf: -inf, as torch gives
    t[1, :, 3] = float("-inf")
    for dim in (-1, -2):
        torch.testing.assert_close(_exp.logsumexp(t, dim), torch.logsumexp(t, dim))


def test_logsumexp_gradient_is_softmax_and_has_a_second_derivative():
    t = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda x: _exp.logsumexp(x, -1), (t,))
    torch.autograd.gradgradcheck(lambda x: _exp.logsumexp(x, -1), (t,))
    (grad,) = torch.autograd.grad(_exp.logsumexp(t, -1).sum(), t)
    torch.testing.assert_close(grad, t.softmax(-1))
