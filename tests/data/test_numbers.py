import pytest
import torch

from gumbel_sinkhorn.data.numbers import Distribution, sample_lists


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "dist", [Distribution(), Distribution(low=1000, high=1001), Distribution("normal", std=3)]
)
def test_lists_sorted_copies_and_permutation(dist):
    lists = sample_lists(50, 7, dist, generator=gen())
    assert lists.random.shape == lists.ordered.shape == lists.order.shape == (50, 7)
    assert lists.random.dtype == torch.float64 and lists.order.dtype == torch.int64
    assert torch.equal(lists.ordered, lists.random.gather(-1, lists.order))
    # positions: the other direction, the rank of each number (where it goes when sorted)
    assert lists.positions.dtype == torch.int64
    assert torch.equal(lists.ordered.gather(-1, lists.positions), lists.random)
    assert torch.equal(lists.ordered, lists.random.sort(-1).values)
    assert (lists.ordered.diff(dim=-1) > 0).all()  # float64: no ties, even at 1000


def test_uniform_range_and_normal_moments():
    u = sample_lists(2000, 10, Distribution(low=-5, high=5), generator=gen()).random
    assert u.min() >= -5 and u.max() < 5 and abs(u.mean()) < 0.1
    z = sample_lists(2000, 10, Distribution("normal", mean=3, std=2), generator=gen()).random
    assert abs(z.mean() - 3) < 0.05 and abs(z.std() - 2) < 0.05


def test_seeded():
    a = sample_lists(3, 5, generator=gen(1))
    b = sample_lists(3, 5, generator=gen(1))
    c = sample_lists(3, 5, generator=gen(2))
    assert torch.equal(a.random, b.random) and not torch.equal(a.random, c.random)


def test_shifted_ranges_are_affine_images_of_the_same_draws():
    u = sample_lists(4, 6, generator=gen(3)).random
    v = sample_lists(4, 6, Distribution(low=1000, high=1001), generator=gen(3)).random
    assert torch.allclose(v - 1000, u, atol=1e-9)


def test_no_lists():
    assert sample_lists(0, 5).random.shape == (0, 5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_lists": 3, "n": 1}, "n \\(numbers per list\\) must be >= 2"),
        ({"n_lists": -1, "n": 5}, "n_lists must be >= 0"),
        ({"n_lists": 2.5, "n": 5}, "n_lists must be an integer"),
    ],
)
def test_bad_counts(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        sample_lists(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"low": 1, "high": 1}, "low < high"),
        ({"low": 2, "high": 1}, "low < high"),
        ({"kind": "normal", "std": 0}, "std > 0"),
        ({"kind": "beta"}, "distribution must be one of"),
        ({"low": float("nan")}, "low must be a finite number"),
        ({"high": float("inf")}, "high must be a finite number"),
    ],
)
def test_bad_distributions(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Distribution(**kwargs)


def test_distribution_type_checked():
    with pytest.raises(TypeError, match="Distribution"):
        sample_lists(2, 3, {"low": 0, "high": 1})
