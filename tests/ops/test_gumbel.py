import itertools
import math

import pytest
import torch
from scipy import stats

from gumbel_sinkhorn import gumbel_matching, gumbel_sinkhorn, sample_gumbel, sinkhorn


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_gumbel_moments():
    g = sample_gumbel((400_000,), generator=gen(), dtype=torch.float64)
    euler_gamma = 0.5772156649
    assert g.mean().item() == pytest.approx(euler_gamma, abs=0.01)
    assert g.var().item() == pytest.approx(math.pi**2 / 6, abs=0.02)
    assert stats.kstest(g[:20_000].numpy(), "gumbel_r").pvalue > 0.001


@pytest.mark.parametrize("extreme", [0.0, 1.0 - 2**-24, 1.0])
def test_gumbel_is_finite_whatever_rand_returns(monkeypatch, extreme):
    real_rand = torch.rand
    monkeypatch.setattr(torch, "rand", lambda *a, **k: real_rand(*a, **k).fill_(extreme))
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        assert sample_gumbel((10,), dtype=dtype).isfinite().all()


def test_gumbel_dtype_shape_and_errors():
    assert sample_gumbel((2, 3), dtype=torch.float64).dtype == torch.float64
    assert sample_gumbel([4]).shape == (4,)
    with pytest.raises(TypeError, match="floating-point"):
        sample_gumbel((2,), dtype=torch.int32)


def test_noise_is_added_before_dividing_by_tau():
    log_alpha = torch.randn(3, 5, 5, dtype=torch.float64)
    tau = 0.3
    noise = sample_gumbel(log_alpha.shape, generator=gen(7), dtype=torch.float64)
    expected = sinkhorn((log_alpha + noise), n_iter=20, tau=tau)
    got = gumbel_sinkhorn(log_alpha, tau=tau, n_iter=20, generator=gen(7))
    torch.testing.assert_close(got, expected)


def test_noise_factor_scales_the_noise_and_zero_is_plain_sinkhorn():
    log_alpha = torch.randn(5, 5, dtype=torch.float64)
    noise = sample_gumbel(log_alpha.shape, generator=gen(3), dtype=torch.float64)
    torch.testing.assert_close(
        gumbel_sinkhorn(log_alpha, noise_factor=0.5, generator=gen(3)),
        sinkhorn(log_alpha + 0.5 * noise),
    )
    torch.testing.assert_close(gumbel_sinkhorn(log_alpha, noise_factor=0), sinkhorn(log_alpha))


def test_samples_get_a_leading_dimension():
    log_alpha = torch.randn(4, 6, 6)
    assert gumbel_sinkhorn(log_alpha).shape == (4, 6, 6)
    samples = gumbel_sinkhorn(log_alpha, n_samples=3, generator=gen())
    assert samples.shape == (3, 4, 6, 6)
    assert not torch.allclose(samples[0], samples[1])
    assert gumbel_matching(log_alpha, n_samples=5).shape == (5, 4, 6)


def test_gradcheck_with_fixed_generator():
    log_alpha = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    fn = lambda x: gumbel_sinkhorn(x, tau=0.8, n_iter=10, n_samples=2, generator=gen(1))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (log_alpha,))


def test_gumbel_matching_of_zero_scores_is_uniform():
    perms = gumbel_matching(torch.zeros(6000, 3, 3), generator=gen(5))
    index = {p: i for i, p in enumerate(itertools.permutations(range(3)))}
    counts = torch.bincount(torch.tensor([index[tuple(p)] for p in perms.tolist()]), minlength=6)
    assert stats.chisquare(counts.numpy()).pvalue > 0.001


def test_gumbel_matching_follows_strong_scores():
    log_alpha = torch.eye(5) * 100
    assert torch.equal(gumbel_matching(log_alpha, generator=gen()), torch.arange(5))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_samples": 0}, ValueError, "n_samples must be >= 1"),
        ({"noise_factor": -1.0}, ValueError, "noise_factor must be a finite number >= 0"),
        ({"tau": 0}, ValueError, "tau"),
    ],
)
def test_bad_options(kwargs, error, message):
    with pytest.raises(error, match=message):
        gumbel_sinkhorn(torch.randn(3, 3), **kwargs)
