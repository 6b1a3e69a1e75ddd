import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gumbel_sinkhorn import matching
from gumbel_sinkhorn.nn import AnchorSortingNet, SortingMLP, standardize


def ranks(x):
    return x.argsort(-1).argsort(-1)


def increasing_anchor_net(n):
    net = AnchorSortingNet(n)
    with torch.no_grad():
        net.anchors.copy_(torch.linspace(-2, 2, n))
        net.log_scale.fill_(3.0)
    return net


def test_standardize_removes_location_and_scale():
    x = torch.rand(4, 9, dtype=torch.float64)
    z = standardize(x)
    assert torch.allclose(z.mean(-1), torch.zeros(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(z.square().mean(-1), torch.ones(4, dtype=torch.float64))
    assert torch.allclose(standardize(1000 + 0.01 * x), z, atol=1e-9)
    assert torch.equal(standardize(torch.ones(2, 3)), torch.zeros(2, 3, dtype=torch.float64))


@given(
    st.lists(
        st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 3)),
        min_size=2,
        max_size=40,
        unique=True,
    ),
    st.floats(1e-3, 1e3),
    st.floats(-1e4, 1e4),
)
def test_increasing_anchors_sort_any_list_exactly(values, scale, shift):
    """Rearrangement inequality: increasing anchors + hard matching = the ranks, for any list."""
    x = torch.tensor(values, dtype=torch.float64)
    net = increasing_anchor_net(len(values))
    with torch.no_grad():
        assert torch.equal(matching(net(x)), ranks(x))
        assert torch.equal(matching(net(scale * x + shift)), ranks(x))


def test_anchor_scores_do_not_depend_on_location_or_scale():
    net = AnchorSortingNet(6)
    x = torch.rand(3, 6, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(net(x), net(1000 + 7 * x), atol=1e-9)


def test_close_numbers_far_from_zero_are_told_apart():
    """Numbers 1e-9 apart near 1000: float64 all the way to the scores keeps them ordered."""
    x = 1000 + 1e-9 * torch.randperm(120, generator=torch.Generator().manual_seed(0)).double()
    with torch.no_grad():
        assert torch.equal(matching(increasing_anchor_net(120)(x)), ranks(x))


def test_mlp_standardize_switch():
    torch.manual_seed(0)
    x = torch.rand(2, 5, dtype=torch.float64)
    with torch.no_grad():
        invariant, original = SortingMLP(5, 8), SortingMLP(5, 8, standardize=False)
        assert torch.allclose(invariant(x), invariant(3 * x - 1), atol=1e-9)
        assert not torch.allclose(original(x), original(3 * x - 1))
        assert invariant(x).shape == (2, 5, 5) and invariant(x).dtype == torch.float64


@pytest.mark.parametrize("net", [AnchorSortingNet(5), SortingMLP(5, 4)])
def test_gradients_reach_every_parameter(net):
    net(torch.rand(3, 5)).logsumexp((-1, -2)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


@pytest.mark.parametrize("make", [AnchorSortingNet, SortingMLP])
def test_bad_input(make):
    with pytest.raises(ValueError, match="n \\(numbers per list\\) must be >= 2"):
        make(1)
    net = make(5)
    with pytest.raises(ValueError, match="expected lists of 5 numbers"):
        net(torch.rand(2, 4))
    with pytest.raises(TypeError, match="floating-point"):
        net(torch.arange(5))
    with pytest.raises(TypeError, match="torch.Tensor"):
        net([0.1, 0.2, 0.3, 0.4, 0.5])
