"""The ops, the network and the training loop on every device this machine has.

Here that is the CPU alone; on a machine with CUDA the same tests run there too. References are
computed independently on the CPU: the seed's formula in float64, SciPy's assignment solver.
"""

import pytest
import torch
from scipy.optimize import linear_sum_assignment

import gumbel_sinkhorn as gs
from gumbel_sinkhorn.nn import SinkhornPieceNet
from gumbel_sinkhorn.train import autocast, fit
from toy import LineTask

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def scores(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def seed_sinkhorn(x: torch.Tensor, n_iter: int) -> torch.Tensor:
    """The seed's formula: alternate row and column log-normalisation (float64, autograd)."""
    for _ in range(n_iter):
        x = x - torch.logsumexp(x, -1, keepdim=True)
        x = x - torch.logsumexp(x, -2, keepdim=True)
    return x.exp()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "backward, scale",  # 30: most exponentials underflow (too slow to converge for the implicit)
    [("unrolled", 1.0), ("unrolled", 30.0), ("implicit", 1.0)],
)
def test_sinkhorn_on_the_device_matches_the_seeds_formula(device, backward, scale):
    x, w = scores(6, 9, 9, scale=scale), scores(6, 9, 9, seed=1)
    n_iter = 30 if backward == "unrolled" else 3000  # implicit: the fixed point's gradient
    t = x.to(device, copy=True).requires_grad_()
    P = gs.sinkhorn(t, n_iter=n_iter, backward=backward)
    (P * w.to(device)).sum().backward()
    t64 = x.double().requires_grad_()
    P64 = seed_sinkhorn(t64, n_iter)
    (P64 * w.double()).sum().backward()
    torch.testing.assert_close(P.detach().cpu().double(), P64.detach(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(t.grad.cpu().double(), t64.grad, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_autocast_on_the_device_keeps_the_solver_in_float32(device):
    x = scores(4, 7, 7, scale=3.0).to(device)
    expected = gs.sinkhorn(x, n_iter=40)
    dtype = torch.bfloat16 if device == "cpu" else torch.float16
    with torch.autocast(torch.device(device).type, dtype=dtype):
        got = gs.sinkhorn(x, n_iter=40)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_matching_noise_and_permutations_stay_on_the_device(device):
    x = scores(5, 8, 8).to(device)
    perm = gs.matching(x)
    rows, cols = linear_sum_assignment(x.cpu().numpy()[0], maximize=True)
    assert perm.device == x.device and perm[0].tolist() == cols.tolist()
    generator = torch.Generator(device).manual_seed(0)
    P = gs.gumbel_sinkhorn(x, tau=0.5, n_samples=3, generator=generator)
    assert P.device == x.device and P.shape == (3, 5, 8, 8)
    torch.testing.assert_close(P.sum(-2), torch.ones(3, 5, 8, device=device))
    items = torch.arange(40.0, device=device).reshape(5, 8)
    back = gs.permute(gs.permute(items, perm), gs.invert_permutation(perm))
    assert torch.equal(back, items)
    assert gs.permutation_matrix(perm).device == x.device


@pytest.mark.parametrize("device", DEVICES)
def test_the_piece_network_trains_and_solves_on_the_device(device):
    torch.manual_seed(0)
    net = SinkhornPieceNet(4, 7, n_context=1, d_model=16).to(device)
    pieces = torch.rand(8, 4, 1, 7, 7, device=device)
    with autocast(torch.device(device), "bfloat16"):
        P = gs.gumbel_sinkhorn(net(pieces), tau=1.0)  # the network scores, the task samples
    loss = (P.float().mT @ pieces.flatten(2) - pieces.flatten(2)).pow(2).mean()
    loss.backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in net.parameters())
    perm = gs.matching(net.eval()(pieces))
    assert perm.device == pieces.device and perm.shape == (8, 4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_fit_on_the_device(device, precision, tmp_path):
    result = fit(
        LineTask.create(), tmp_path, epochs=6, lr=0.1, progress=False, device=device,
        precision=precision,
    )  # fmt: skip
    assert result.metrics["mse"] < 0.05
    assert next(result.model.parameters()).device.type == torch.device(device).type
