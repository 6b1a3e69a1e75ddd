import itertools

import pytest
import torch
from scipy import stats
from torch.distributions import Distribution

from gumbel_sinkhorn.distributions import (
    GumbelMatching,
    GumbelSinkhorn,
    doubly_stochastic,
    permutation_matrix,
)

NEG_INF = float("-inf")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_shapes_follow_torch_distributions():
    q = GumbelSinkhorn(torch.randn(2, 3, 4, 4), tau=0.5)
    assert q.batch_shape == (2, 3) and q.event_shape == (4, 4)
    assert q.rsample().shape == (2, 3, 4, 4)
    assert q.rsample((5,)).shape == (5, 2, 3, 4, 4)
    assert q.sample((5, 1)).shape == (5, 1, 2, 3, 4, 4)
    assert not q.sample().requires_grad
    # a tensor tau broadcasts with the scores' batch shape
    q = GumbelSinkhorn(torch.randn(4, 4), tau=torch.tensor([0.1, 1.0, 10.0]))
    assert q.batch_shape == (3,) and q.tau.shape == (3,) and q.log_alpha.shape == (3, 4, 4)
    hard = GumbelMatching(torch.randn(2, 4, 4))
    assert hard.sample((3,)).shape == (3, 2, 4, 4)
    assert hard.sample_indices((3,)).shape == (3, 2, 4)


def test_expand_keeps_parameters_and_samples():
    q = GumbelSinkhorn(torch.randn(4, 4), tau=0.3, n_iter=7)
    e = q.expand((2, 3))
    assert isinstance(e, GumbelSinkhorn) and e.batch_shape == (2, 3)
    assert e.n_iter == 7 and e.tau.shape == (2, 3) and float(e.tau[1, 2]) == pytest.approx(0.3)
    assert torch.equal(e.log_alpha[1, 2], q.log_alpha)
    assert e.rsample((4,)).shape == (4, 2, 3, 4, 4)
    m = GumbelMatching(torch.randn(4, 4)).expand(torch.Size([5]))
    assert m.batch_shape == (5,) and m.sample().shape == (5, 4, 4)


def test_same_generator_same_samples():
    q = GumbelSinkhorn(torch.randn(3, 5, 5), tau=0.2)
    assert torch.equal(q.rsample((2,), generator=gen(1)), q.rsample((2,), generator=gen(1)))
    assert not torch.equal(q.rsample(generator=gen(1)), q.rsample(generator=gen(2)))
    m = GumbelMatching(torch.zeros(6, 6))
    assert torch.equal(m.sample((9,), generator=gen(3)), m.sample((9,), generator=gen(3)))


def test_soft_samples_are_doubly_stochastic_and_sharpen_as_tau_falls():
    log_alpha = torch.randn(8, 6, 6, generator=gen())
    q = GumbelSinkhorn(log_alpha, tau=1.0, n_iter=200)
    assert doubly_stochastic.check(q.rsample(generator=gen())).all()
    sharpness = [
        GumbelSinkhorn(log_alpha, tau=tau, n_iter=200)
        .rsample((20,), generator=gen())
        .max(-1)
        .values.mean()
        .item()
        for tau in (10.0, 1.0, 0.1)
    ]
    assert sharpness[0] < sharpness[1] < sharpness[2]


def test_matching_a_soft_sample_gives_the_hard_sample_of_the_same_noise():
    """Sinkhorn only subtracts row and column constants from the scores, which no matching sees:
    at any tau and any n_iter the soft sample rounds to the hard one."""
    log_alpha = torch.randn(16, 6, 6, dtype=torch.float64, generator=gen(1))
    for tau, n_iter in ((1.0, 1), (0.3, 5), (3.0, 20)):
        soft = GumbelSinkhorn(log_alpha, tau=tau, n_iter=n_iter).rsample((4,), generator=gen(7))
        hard = GumbelMatching(log_alpha).sample((4,), generator=gen(7))
        assert torch.equal(GumbelMatching(soft.log()).mode, hard)


def _forbidden_mask(n=5):
    mask = torch.ones(n, n, dtype=torch.bool)
    mask[0, :3] = False  # row 0 may only take columns 3, 4
    mask[2, 1] = mask[n - 1, n - 1] = False
    return mask


def test_forbidden_entries_never_get_mass_nor_gradient():
    mask = _forbidden_mask()
    log_alpha = torch.randn(5, 5, dtype=torch.float64, requires_grad=True)
    q = GumbelSinkhorn(log_alpha, tau=0.5, mask=mask)
    P = q.rsample((64,), generator=gen())
    assert (P[:, ~mask] == 0).all() and (P[:, mask] > 0).all()
    (P * torch.randn(5, 5, dtype=torch.float64)).sum().backward()
    assert log_alpha.grad.isfinite().all() and (log_alpha.grad[~mask] == 0).all()
    # -inf in the scores is the same as a mask
    scores = log_alpha.detach().masked_fill(~mask, NEG_INF)
    same = GumbelSinkhorn(scores, tau=0.5).rsample((64,), generator=gen())
    assert torch.allclose(same, P.detach())
    # hard samples obey the constraints and are permutation matrices
    hard = GumbelMatching(scores).sample((500,), generator=gen())
    assert permutation_matrix.check(hard).all() and (hard[:, ~mask] == 0).all()


def test_uniform_scores_give_uniform_permutations_within_the_constraints():
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[0, 0] = False  # 4 of the 6 permutations of 3 remain allowed
    perms = GumbelMatching(torch.zeros(3, 3), mask=mask).sample_indices((4000,), generator=gen())
    counts = {p: 0 for p in itertools.permutations(range(3)) if p[0] != 0}
    for p in map(tuple, perms.tolist()):
        counts[p] += 1  # a KeyError would mean a forbidden permutation
    assert stats.chisquare(list(counts.values())).pvalue > 1e-3


def test_gradcheck_rsample_float64():
    log_alpha = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    mask = _forbidden_mask(4)

    def sample(la, t):
        return GumbelSinkhorn(la, t, n_iter=5, mask=mask).rsample((3,), generator=gen(5))

    assert torch.autograd.gradcheck(sample, (log_alpha, tau))


def test_hard_and_mode():
    log_alpha = torch.tensor([[0.0, 5.0, 1.0], [1.0, 0.0, 9.0], [4.0, 0.0, 0.0]])
    q = GumbelSinkhorn(log_alpha, tau=0.1)
    assert isinstance(q.hard, GumbelMatching)
    assert q.hard.mode.argmax(-1).tolist() == [1, 2, 0]


@pytest.mark.parametrize(
    "scores, error",
    [
        (torch.tensor([[0.0, float("nan")], [0.0, 0.0]]), ValueError),
        (torch.tensor([[0.0, float("inf")], [0.0, 0.0]]), ValueError),
        (torch.tensor([[NEG_INF, NEG_INF], [0.0, 0.0]]), ValueError),  # a row with no choice
        (torch.tensor([[NEG_INF, 0.0], [NEG_INF, 0.0]]), ValueError),  # a column nobody takes
    ],
)
def test_validate_args_refuses_bad_scores(scores, error):
    for cls in (GumbelSinkhorn, GumbelMatching):
        with pytest.raises(error, match="log_alpha"):
            cls(scores, validate_args=True)


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match=r"square \(..., N, N\)"):
        GumbelSinkhorn(torch.zeros(3, 4))
    with pytest.raises(TypeError, match="floating-point"):
        GumbelSinkhorn(torch.zeros(3, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="log_alpha must be a torch.Tensor"):
        GumbelMatching([[0.0]])
    with pytest.raises(ValueError, match="tau"):
        GumbelSinkhorn(torch.zeros(3, 3), tau=-1.0, validate_args=True)
    with pytest.raises(TypeError, match="tau must be a number"):
        GumbelSinkhorn(torch.zeros(3, 3), tau="hot")
    with pytest.raises(TypeError, match="mask must be a bool"):
        GumbelSinkhorn(torch.zeros(3, 3), mask=torch.ones(3, 3))
    with pytest.raises(ValueError, match="does not broadcast"):
        GumbelSinkhorn(torch.zeros(3, 3), mask=torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="n_iter"):
        GumbelSinkhorn(torch.zeros(3, 3), n_iter=0)
    for dist in (GumbelSinkhorn(torch.zeros(3, 3)), GumbelMatching(torch.zeros(3, 3))):
        with pytest.raises(NotImplementedError, match="no tractable density.*kl_divergence"):
            dist.log_prob(torch.eye(3))
    # validation can be turned off, as for any torch distribution
    Distribution.set_default_validate_args(False)
    try:
        GumbelSinkhorn(torch.zeros(3, 3), tau=-1.0)
    finally:
        Distribution.set_default_validate_args(True)


def test_no_complete_assignment_is_an_error_when_sampling():
    mask = torch.tensor([[True, False, False], [True, False, False], [True, True, True]])
    with pytest.raises(ValueError, match="no assignment"):
        GumbelMatching(torch.zeros(3, 3), mask=mask).sample()
