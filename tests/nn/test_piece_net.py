import pytest
import torch

from gumbel_sinkhorn import ops
from gumbel_sinkhorn.nn import SinkhornPieceNet


def pieces(b=5, n=9, c=1, size=6, seed=0):
    return torch.rand(b, n, c, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("n_context", [0, 2])
@pytest.mark.parametrize("channels", [1, 3])
def test_train_mode_gives_soft_permutations_and_eval_mode_hard_ones(n_context, channels):
    torch.manual_seed(0)
    net = SinkhornPieceNet(
        9, 6, channels, n_context=n_context, d_model=16, n_heads=2, pool=False, n_iter=60
    )
    x = pieces(c=channels)
    P = net(x)
    assert P.shape == (5, 9, 9)
    assert torch.allclose(P.sum(-1), torch.ones(5, 9), atol=2e-2)
    assert torch.allclose(P.sum(-2), torch.ones(5, 9), atol=2e-2)
    assert not torch.equal(P, P.round())
    net.eval()
    hard = net(x)
    perm = net.solve(x)
    assert torch.equal(hard, ops.permutation_matrix(perm))
    assert torch.equal(perm.sort(-1).values, torch.arange(9).expand(5, 9))


def test_samples_are_stacked_first_and_noise_factor_zero_is_deterministic():
    net = SinkhornPieceNet(4, 7, n_samples=3, noise_factor=0.0)
    x = pieces(n=4, size=7)
    P = net(x)
    assert P.shape == (3, 5, 4, 4)
    assert torch.equal(P[0], P[1])
    noisy = SinkhornPieceNet(4, 7, n_samples=2)
    assert not torch.equal(*noisy(x).unbind(0))


def test_scores_are_equivariant_to_the_order_of_the_pieces():
    net = SinkhornPieceNet(9, 6, n_context=2, d_model=16, n_heads=2).eval()
    x = pieces()
    perm = ops.random_permutation(5, n=9, generator=torch.Generator().manual_seed(1))
    scores = net.scores(x)
    assert torch.allclose(net.scores(ops.permute(x, perm)), ops.permute(scores, perm), atol=1e-5)


def test_the_tutorial_configuration_has_the_tutorial_size():
    # REFERENCES §2: 7,168 parameters at 2x2 on MNIST (pieces of 14 pixels).
    net = SinkhornPieceNet(4, 14, hidden=32, kernel=5, g2_bias=False)
    assert sum(p.numel() for p in net.parameters()) == 7168


def test_gradients_flow_to_every_parameter():
    net = SinkhornPieceNet(4, 6, n_context=1, d_model=16, n_heads=2)
    x = pieces(n=4)
    (net(x).transpose(-1, -2) @ x.flatten(2)).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_bad_input_is_a_clear_error():
    net = SinkhornPieceNet(4, 6)
    with pytest.raises(ValueError, match=r"pieces must have shape \(batch, 4, 1, 6, 6\)"):
        net.scores(torch.rand(2, 9, 1, 6, 6))
    with pytest.raises(ValueError, match="kernel must be odd"):
        SinkhornPieceNet(4, 6, kernel=4)
    with pytest.raises(ValueError, match="n_pieces must be >= 2"):
        SinkhornPieceNet(1, 6)
