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
