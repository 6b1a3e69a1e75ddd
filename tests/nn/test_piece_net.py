import pytest
import torch

from gumbel_sinkhorn import ops
from gumbel_sinkhorn.configs import SamplingConfig
from gumbel_sinkhorn.configs.jigsaw import JigsawConfig
from gumbel_sinkhorn.errors import InvalidTypeError
from gumbel_sinkhorn.nn import SinkhornPieceNet
from gumbel_sinkhorn.tasks.jigsaw import JigsawTask


def pieces(b=5, n=9, c=1, size=6, seed=0):
    return torch.rand(b, n, c, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("n_context", [0, 2])
@pytest.mark.parametrize("channels", [1, 3])
def test_scores_sample_soft_permutations_in_training_and_match_hard_ones_in_eval(
    n_context, channels
):
    torch.manual_seed(0)
    net = SinkhornPieceNet(9, 6, channels, n_context=n_context, d_model=16, n_heads=2, pool=False)
    x = pieces(c=channels)
    log_alpha = net(x)  # train mode: the scores, row i = piece i
    assert log_alpha.shape == (5, 9, 9)
    P = ops.gumbel_sinkhorn(log_alpha, tau=1.0, n_iter=60)
    assert torch.allclose(P.sum(-1), torch.ones(5, 9), atol=2e-2)
    assert torch.allclose(P.sum(-2), torch.ones(5, 9), atol=2e-2)
    assert not torch.equal(P, P.round())
    net.eval()
    scores = net(x)  # eval mode: scores too, never a sample
    assert scores.shape == (5, 9, 9) and not torch.equal(scores, scores.round())
    assert torch.equal(net(x), scores)
    perm = ops.matching(scores)
    assert torch.equal(perm.sort(-1).values, torch.arange(9).expand(5, 9))
    with pytest.warns(DeprecationWarning, match="solve"):
        assert torch.equal(net.solve(x), perm)  # the old name, for one release


def test_samples_are_stacked_first_and_noise_factor_zero_is_deterministic():
    # the task samples the network's scores, as its config's sampling says
    def task(**sampling):
        config = JigsawConfig(dataset="digits", grid=2, image_shape=(1, 14, 14), mean=(0.1,),
                              std=(0.3,), sampling=SamplingConfig(**sampling))  # fmt: skip
        return JigsawTask(config)

    net = SinkhornPieceNet(4, 7)
    x = pieces(n=4, size=7)
    P = task(n_samples=3, noise_factor=0.0).sample(net(x))
    assert P.shape == (3, 5, 4, 4)
    assert torch.equal(P[0], P[1])
    assert not torch.equal(P[0], P[0].round())
    assert not torch.equal(*task(n_samples=2).sample(net(x)).unbind(0))
    assert task().sample(net(x)).shape == (1, 5, 4, 4)  # one sample: still stacked first
    with pytest.raises(InvalidTypeError, match="no longer samples"):
        SinkhornPieceNet(4, 7, n_samples=3, noise_factor=0.0)
    with pytest.raises(InvalidTypeError, match=r"\['n_iter', 'tau'\]"):
        SinkhornPieceNet(4, 7, tau=0.5, n_iter=60)


def test_scores_are_equivariant_to_the_order_of_the_pieces():
    net = SinkhornPieceNet(9, 6, n_context=2, d_model=16, n_heads=2).eval()
    x = pieces()
    perm = ops.random_permutation(5, 9, generator=torch.Generator().manual_seed(1))
    scores = net(x)
    assert torch.allclose(net(ops.permute(x, perm)), ops.permute(scores, perm), atol=1e-5)
    with pytest.warns(DeprecationWarning, match="scores"):
        assert torch.equal(net.scores(x), scores)  # the old name, for one release


def test_the_tutorial_configuration_has_the_tutorial_size():
    # REFERENCES §2: 7,168 parameters at 2x2 on MNIST (pieces of 14 pixels).
    net = SinkhornPieceNet(4, 14, hidden=32, kernel=5, g2_bias=False)
    assert sum(p.numel() for p in net.parameters()) == 7168


def test_gradients_flow_to_every_parameter():
    net = SinkhornPieceNet(4, 6, n_context=1, d_model=16, n_heads=2)
    x = pieces(n=4)
    (net(x).transpose(-1, -2) @ x.flatten(2)).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


@pytest.mark.parametrize("n_context", [0, 1])
@pytest.mark.parametrize("pool", [True, False])
def test_scores_as_with_nn_flatten_and_batchnorm_gets_a_channels_last_gradient(pool, n_context):
    # g1 flattens channels-last maps without a copy and the next linear layer reorders its
    # weight instead: a checkpoint must score exactly as with nn.Flatten + nn.Linear, and
    # BatchNorm's CPU backward is several times slower with a channels-first gradient.
    torch.manual_seed(0)
    net = SinkhornPieceNet(4, 6, hidden=8, pool=pool, n_context=n_context, d_model=8, n_heads=2)
    net = net.double()
    first = net.g2 if n_context == 0 else net.context[0]
    plain_linear = torch.nn.Linear(first.in_features, first.out_features, first.bias is not None)
    plain_linear.load_state_dict(first.state_dict())
    rest = [plain_linear] if n_context == 0 else [plain_linear, *list(net.context)[1:], net.g2]
    plain = torch.nn.Sequential(*list(net.g1)[:-1], torch.nn.Flatten()).double()
    x = pieces(b=2, n=4).double()
    seen = []
    net.g1[-2].register_full_backward_hook(lambda m, g_in, g_out: seen.append(g_out[0]))
    ours = net(x)
    expected = plain(x.flatten(0, 1)).reshape(2, 4, -1)
    for layer in rest:
        expected = layer.double()(expected)
    torch.testing.assert_close(ours, expected)
    weights = torch.randn_like(ours)
    grads = torch.autograd.grad((ours * weights).sum(), [*net.g1.parameters(), first.weight])
    plain_params = [*plain.parameters(), plain_linear.weight]
    want = torch.autograd.grad((expected * weights).sum(), plain_params)
    for got, w in zip(grads, want, strict=True):
        torch.testing.assert_close(got, w)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)


def test_bad_input_is_a_clear_error():
    net = SinkhornPieceNet(4, 6)
    with pytest.raises(ValueError, match=r"pieces must have shape \(batch, 4, 1, 6, 6\)"):
        net(torch.rand(2, 9, 1, 6, 6))
    with pytest.raises(ValueError, match="kernel must be odd"):
        SinkhornPieceNet(4, 6, kernel=4)
    with pytest.raises(ValueError, match="n_pieces must be >= 2"):
        SinkhornPieceNet(1, 6)
    with pytest.raises(ValueError, match="input_power"):
        SinkhornPieceNet(4, 6, input_power=-1.0)


def test_input_power_lets_g1_see_faint_pixels_that_a_linear_g1_barely_does():
    mean, std = 0.13, 0.31
    net = SinkhornPieceNet(4, 6, input_power=0.25, pixel_mean=mean, pixel_std=std).eval()
    assert net.g1[0].in_channels == 2
    blank = torch.zeros(1, 4, 1, 6, 6)
    faint = blank.clone()
    faint[0, 0, 0, 0, :2] = 0.0016  # two pixels at 0.0016: 0.2 after the fourth root
    seen = {}

    def capture(module, args, out):
        seen[len(seen)] = args[0]

    net.g1[0].register_forward_hook(capture)
    net((blank - mean) / std)
    net((faint - mean) / std)
    raw, powered = (seen[1] - seen[0]).abs().amax((0, 2, 3))
    torch.testing.assert_close(powered, torch.tensor(0.2))
    torch.testing.assert_close(raw, torch.tensor(0.0016 / std))


def test_load_smaller_adds_neutral_layers_and_power_channels_and_refuses_the_rest():
    torch.manual_seed(0)
    small = SinkhornPieceNet(9, 6, n_context=1, d_model=16, n_heads=2, pool=False).eval()
    with torch.no_grad():  # trained-looking statistics, so that eval mode uses them
        small.g1[-2].running_mean.uniform_(-1, 1)
        small.g1[-2].running_var.uniform_(0.5, 2)
    big = SinkhornPieceNet(
        9, 6, n_context=3, d_model=16, n_heads=2, pool=False, input_power=0.5, pixel_mean=0.2
    ).eval()
    big.load_smaller(small)
    x = pieces()
    torch.testing.assert_close(big(x), small(x))
    from_state = SinkhornPieceNet(
        9, 6, n_context=3, d_model=16, n_heads=2, pool=False, input_power=0.5, pixel_mean=0.2
    ).eval()
    from_state.load_smaller(small.state_dict())  # a state dict (a weights file's) will do too
    torch.testing.assert_close(from_state(x), small(x))
    big.train()
    (big(x).transpose(-1, -2) @ x.flatten(2)).square().sum().backward()
    assert big.g1[0].weight.grad[:, 1].abs().sum() > 0  # the power channel learns from here
    with pytest.raises(ValueError, match="3 context layers into one with 1"):
        small.load_smaller(big)
    wider = SinkhornPieceNet(9, 6, n_context=1, d_model=32, n_heads=2, pool=False)
    with pytest.raises(ValueError, match="does not fit this network"):
        wider.load_smaller(small)
    with pytest.raises(ValueError, match="0 context layers into one with 1"):
        small.load_smaller(SinkhornPieceNet(9, 6, pool=False))
