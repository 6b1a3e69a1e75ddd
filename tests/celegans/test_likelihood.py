import pytest
import torch
from worm_fixtures import single_thread

from gumbel_sinkhorn.celegans.likelihood import Stats, expected_sq_error
from gumbel_sinkhorn.ops import sinkhorn


@pytest.fixture(autouse=True)
def one_thread():
    with single_thread():
        yield


def test_expected_error_over_weights_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    Y = torch.randn(2, 4, 30, dtype=torch.float64, generator=g)
    stats = Stats.from_traces(Y, dtype=torch.float64)
    Q = sinkhorn(torch.randn(2, 4, 4, dtype=torch.float64, generator=g), n_iter=50)
    mean = torch.randn(4, 4, dtype=torch.float64, generator=g)
    var = torch.rand(4, 4, dtype=torch.float64, generator=g)
    W = mean + var.sqrt() * torch.randn(20_000, 1, 4, 4, dtype=torch.float64, generator=g)
    direct = (Y[..., 1:] - Q @ W @ Q.mT @ Y[..., :-1]).square().sum((-1, -2))
    expected = expected_sq_error(Q, stats, mean, var)
    assert expected.shape == (2,)
    assert torch.allclose(direct.mean(0), expected, rtol=0.01)
    # batches of samples of Q broadcast in front of the worms
    assert expected_sq_error(Q.expand(3, 2, 4, 4), stats, mean, var).shape == (3, 2)


def test_expected_error_with_antisymmetric_weights_matches_monte_carlo():
    g = torch.Generator().manual_seed(1)
    Y = torch.randn(2, 4, 30, dtype=torch.float64, generator=g)
    stats = Stats.from_traces(Y, dtype=torch.float64)
    Q = sinkhorn(torch.randn(2, 4, 4, dtype=torch.float64, generator=g), n_iter=50)
    upper = torch.ones(4, 4, dtype=torch.float64).triu(1)
    mean = torch.randn(4, 4, dtype=torch.float64, generator=g) * upper
    std = (2 * torch.rand(4, 4, dtype=torch.float64, generator=g) + 1) * upper
    noise = std * torch.randn(40_000, 1, 4, 4, dtype=torch.float64, generator=g)
    W = (mean - mean.mT) + (noise - noise.mT)  # W_lk = -W_kl, sample by sample
    direct = (Y[..., 1:] - Q @ W @ Q.mT @ Y[..., :-1]).square().sum((-1, -2)).mean(0)
    var = std.square() + std.square().mT
    expected = expected_sq_error(Q, stats, mean - mean.mT, var, antisymmetric=True)
    assert torch.allclose(direct, expected, rtol=0.01)
    independent = expected_sq_error(Q, stats, mean - mean.mT, var)  # the pairs' correlation ignored
    assert not torch.allclose(direct, independent, rtol=0.05)
