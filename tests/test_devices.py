"""The ops, the network and the training loop on every device this machine has.

Here that is the CPU alone; on a machine with CUDA the same tests run there too, each result
compared with the CPU's.
"""

import pytest
import torch

import gumbel_sinkhorn as gs
from gumbel_sinkhorn.nn import SinkhornPieceNet
from gumbel_sinkhorn.train import autocast, fit
from toy import LineTask

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def scores(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backward", ["unrolled", "implicit"])
@pytest.mark.parametrize("scale", [1.0, 30.0])  # 30: most exponentials underflow
def test_sinkhorn_forward_and_backward_agree_with_the_cpu(device, backward, scale):
    x, w = scores(6, 9, 9, scale=scale), scores(6, 9, 9, seed=1)

    def run(on):
        t = x.to(on).requires_grad_()
        P = gs.sinkhorn(t, 30, backward=backward)
        (P * w.to(on)).sum().backward()
        return P.detach().cpu(), t.grad.cpu()

    for a, b in zip(run(device), run("cpu"), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_autocast_on_the_device_keeps_the_solver_in_float32(device):
    x = scores(4, 7, 7, scale=3.0).to(device)
    expected = gs.sinkhorn(x, 40)
    dtype = torch.bfloat16 if device == "cpu" else torch.float16
    with torch.autocast(torch.device(device).type, dtype=dtype):
        got = gs.sinkhorn(x, 40)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_matching_noise_and_permutations_stay_on_the_device(device):
    x = scores(5, 8, 8).to(device)
    perm = gs.matching(x)
    assert perm.device == x.device and torch.equal(perm.cpu(), gs.matching(x.cpu()))
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
        P = net(pieces)
    loss = (P.float().mT @ pieces.flatten(2) - pieces.flatten(2)).pow(2).mean()
    loss.backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in net.parameters())
    perm = net.eval().solve(pieces)
    assert perm.device == pieces.device and perm.shape == (8, 4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_fit_on_the_device(device, precision, tmp_path):
    history = fit(
        LineTask(), tmp_path, epochs=6, lr=0.1, progress=False, device=device, precision=precision
    )
    assert history[-1]["mse"] < 0.05
