import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.distributions import Gumbel, kl_divergence

from gumbel_sinkhorn.distributions import GumbelMatching, GumbelSinkhorn, gumbel_score_kl

NEG_INF = float("-inf")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _entry_gumbels(log_alpha, tau):
    return Gumbel(log_alpha / tau, torch.full_like(log_alpha, 1 / tau))


@pytest.mark.parametrize("tau_q, tau_p", [(1.0, 1.0), (0.3, 1.0), (2.0, 0.5), (0.05, 0.1)])
def test_closed_form_matches_torch_gumbel_kl_entrywise(tau_q, tau_p):
    a = torch.randn(3, 4, 4, dtype=torch.float64, generator=gen(1))
    b = torch.randn(4, 4, dtype=torch.float64, generator=gen(2))
    expected = kl_divergence(_entry_gumbels(a, tau_q), _entry_gumbels(b, tau_p)).sum((-1, -2))
    got = kl_divergence(GumbelSinkhorn(a, tau_q), GumbelSinkhorn(b, tau_p))
    assert got.shape == (3,)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_closed_form_matches_monte_carlo():
    a = torch.randn(3, 3, dtype=torch.float64, generator=gen(3))
    b = torch.randn(3, 3, dtype=torch.float64, generator=gen(4))
    tau_q, tau_p = 0.5, 0.8
    q, p = _entry_gumbels(a, tau_q), _entry_gumbels(b, tau_p)
    torch.manual_seed(0)
    x = q.sample((200_000,))
    log_ratio = (q.log_prob(x) - p.log_prob(x)).sum((-1, -2))
    mc, se = log_ratio.mean().item(), log_ratio.std().item() / math.sqrt(len(log_ratio))
    closed = gumbel_score_kl(a, tau_q, b, tau_p).item()
    assert abs(mc - closed) < 4 * se, (mc, closed, se)


def test_surrogate_bounds_the_kl_between_hard_permutation_distributions():
    """Data processing: KL of the permutations (estimated) <= KL of the scores."""
    a = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5]])
    q, p = GumbelMatching(a), GumbelMatching(torch.zeros(3, 3))
    codes = torch.tensor([9, 3, 1])
    n = 60_000
    fq = torch.bincount(q.sample_indices((n,), generator=gen()) @ codes, minlength=27) / n
    fp = torch.bincount(p.sample_indices((n,), generator=gen(1)) @ codes, minlength=27) / n
    seen = fq > 0
    empirical = (fq[seen] * (fq[seen] / fp[seen]).log()).sum().item()
    assert 0 < empirical < kl_divergence(q, p).item()


@given(
    st.integers(1, 5),
    st.floats(0.01, 10.0),
    st.floats(0.01, 10.0),
    st.integers(0, 2**31 - 1),
)
def test_kl_is_zero_for_itself_and_never_negative(n, tau_q, tau_p, seed):
    g = gen(seed)
    a = 3 * torch.randn(n, n, dtype=torch.float64, generator=g)
    b = 3 * torch.randn(n, n, dtype=torch.float64, generator=g)
    assert gumbel_score_kl(a, tau_q, a, tau_q).item() == pytest.approx(0.0, abs=1e-9)
    kl = gumbel_score_kl(a, tau_q, b, tau_p).item()
    assert kl >= -1e-9 and not math.isnan(kl)


def test_gradcheck_float64():
    a = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    tau_q = torch.tensor([0.4, 1.5], dtype=torch.float64, requires_grad=True)
    tau_p = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(4, 4, generator=gen()) > 0.3
    mask |= torch.eye(4, dtype=torch.bool)

    def kl(a, tau_q, b, tau_p):
        return gumbel_score_kl(
            a.masked_fill(~mask, NEG_INF), tau_q, b.masked_fill(~mask, NEG_INF), tau_p
        )

    assert torch.autograd.gradcheck(kl, (a, tau_q, b, tau_p))


def test_forbidden_entries_shared_add_nothing_and_differing_ones_make_it_infinite():
    mask = ~torch.eye(3, dtype=torch.bool)
    a = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    q = GumbelSinkhorn(a, 0.5, mask=mask)
    p = GumbelSinkhorn(torch.zeros(3, 3, dtype=torch.float64), 0.5, mask=mask)
    kl = kl_divergence(q, p)
    by_hand = (a + torch.exp(-a) - 1)[mask].sum()
    assert torch.allclose(kl, by_hand)
    kl.backward()
    assert a.grad.isfinite().all() and (a.grad.diagonal() == 0).all()
    everything = GumbelSinkhorn(torch.zeros(3, 3, dtype=torch.float64), 0.5)
    assert kl_divergence(q, everything).item() == math.inf
    assert kl_divergence(everything, q).item() == math.inf


def test_matching_kl_has_no_temperature():
    a = torch.randn(4, 4, dtype=torch.float64)
    got = kl_divergence(GumbelMatching(a), GumbelMatching(torch.zeros(4, 4, dtype=torch.float64)))
    assert torch.allclose(got, (a + torch.exp(-a) - 1).sum())
