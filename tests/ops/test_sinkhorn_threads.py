"""The threaded path (batch blocks on threads, ops/_blocks.py) computes what one thread does."""

import os
import subprocess
import sys
import threading

import pytest
import torch

from gumbel_sinkhorn import gumbel_sinkhorn, log_sinkhorn, matching, sinkhorn
from gumbel_sinkhorn.ops import _blocks, _sinkhorn_solver

F64, F32 = torch.float64, torch.float32


@pytest.fixture
def threads(monkeypatch):
    """Run the body at a given thread count, with blocks however small the problem."""
    monkeypatch.setattr(_blocks, "MIN_BLOCK_ENTRIES", 1)
    before = torch.get_num_threads()

    def at(count, fn):
        torch.set_num_threads(count)
        try:
            return fn()
        finally:
            torch.set_num_threads(before)

    return at


def randn(*shape, seed=0, dtype=F64, scale=1.0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed)) * scale


def value_and_grad(fn, x, weights):
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    (torch.where(out.isfinite(), out, 0.0) * weights).sum().backward()
    return out.detach(), x.grad


def test_split_gives_one_block_per_thread_and_none_on_one_thread(monkeypatch):
    monkeypatch.setattr(_blocks, "MIN_BLOCK_ENTRIES", 100)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        cpu = torch.device("cpu")
        assert _blocks.split(7, 100, cpu) == [slice(0, 2), slice(2, 4), slice(4, 7)]
        assert _blocks.split(2, 100, cpu) == [slice(0, 1), slice(1, 2)]
        assert _blocks.split(7, 20, cpu) == [slice(0, 7)]  # too little work for two blocks
        assert _blocks.split(7, 100, torch.device("meta")) == [slice(0, 7)]  # not a CPU
        torch.set_num_threads(1)
        assert _blocks.split(64, 10**4, cpu) == [slice(0, 64)]
    finally:
        torch.set_num_threads(before)


def test_run_hands_back_results_in_order_and_raises_a_blocks_error():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        names = _blocks.run(lambda i: (i, threading.current_thread().name), [0, 1])
        assert [i for i, _ in names] == [0, 1]
        assert all(name == "gumbel-sinkhorn-block" for _, name in names)
        # the workers compute on one intra-op thread each; the caller's setting is its own
        assert _blocks.run(lambda _: torch.get_num_threads(), [0, 1]) == [1, 1]
        assert torch.get_num_threads() == 2

        def fail(i):
            if i == 1:
                raise ValueError("block 1")
            return i

        with pytest.raises(ValueError, match="block 1"):
            _blocks.run(fail, [0, 1])
        with torch.no_grad():  # the caller's grad mode holds in the workers
            assert _blocks.run(lambda _: torch.is_grad_enabled(), [0, 1]) == [False, False]
        with torch.inference_mode():
            assert _blocks.run(lambda _: torch.is_inference_mode_enabled(), [0, 1]) == [True] * 2
    finally:
        torch.set_num_threads(before)


CASES = {
    # name: (scores, keyword arguments)
    "odd batch": (lambda: randn(7, 9, 9, seed=1), {}),
    "float32": (lambda: randn(5, 12, 12, seed=2, dtype=F32), {}),
    "padding sizes": (lambda: randn(5, 8, 8, seed=3), {"sizes": torch.tensor([8, 3, 5, 1, 7])}),
    "rectangles and mask": (
        lambda: randn(5, 6, 9, seed=4),
        {"mask": randn(5, 6, 9, seed=5) > -1.0, "sizes": (torch.tensor([6, 2, 4, 5, 3]), 9)},
    ),
    "one item rectangular": (
        lambda: randn(3, 5, 5, seed=6),
        {"sizes": (torch.tensor([5, 2, 5]), torch.tensor([5, 5, 5]))},
    ),
    "low temperature": (lambda: randn(5, 10, 10, seed=7), {"tau": 0.005}),
    "tolerance": (lambda: randn(5, 10, 10, seed=8), {"tol": 1e-7, "n_iter": 300}),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("backward", ["unrolled", "implicit"])
@pytest.mark.parametrize("fn", [sinkhorn, log_sinkhorn])
@pytest.mark.parametrize("count", [2, 3])
def test_threads_give_the_one_thread_value_and_gradient(threads, case, backward, fn, count):
    make, kwargs = CASES[case]
    x = make()
    w = randn(*x.shape, seed=99, dtype=x.dtype)
    kwargs = {"n_iter": 30, **kwargs, "backward": backward}

    def call(t):
        return fn(t, **kwargs)

    one = threads(1, lambda: value_and_grad(call, x, w))
    many = threads(count, lambda: value_and_grad(call, x, w))
    for a, b in zip(one, many, strict=True):
        # blocks of the batch are solved by the same operations: equal up to rounding
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6 if x.dtype == F32 else 1e-12)
    assert torch.equal(one[0] == 0, many[0] == 0)  # padding and forbidden entries stay exact


def test_threads_report_and_tolerance_stop_together(threads):
    x = randn(6, 10, 10, seed=9)
    x[4] *= 4.0  # converges in 100 iterations, the others in 20: every block runs 100

    def call():
        return sinkhorn(x, n_iter=500, tol=1e-8, return_info=True)

    (p1, info1), (p3, info3) = threads(1, call), threads(3, call)
    assert info1.n_iter == info3.n_iter == 100
    torch.testing.assert_close(p3, p1, rtol=0, atol=1e-12)
    torch.testing.assert_close(info3.error, info1.error, rtol=1e-6, atol=1e-15)
    assert bool(info3.converged.all())


def test_threaded_gumbel_sinkhorn_and_second_derivatives(threads):
    x = randn(5, 7, 7, seed=10)
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    one = threads(1, lambda: gumbel_sinkhorn(x, tau=0.3, n_iter=20, generator=gen()))
    two = threads(2, lambda: gumbel_sinkhorn(x, tau=0.3, n_iter=20, generator=gen()))
    torch.testing.assert_close(two, one, rtol=0, atol=1e-12)

    def hessian_row():
        y = x.clone().requires_grad_()
        (g,) = torch.autograd.grad((sinkhorn(y, n_iter=10) ** 2).sum(), y, create_graph=True)
        return torch.autograd.grad(g[0, 0, 0], y)[0]

    torch.testing.assert_close(threads(2, hessian_row), threads(1, hessian_row))


def test_threads_under_inference_mode_and_no_grad(threads):
    x = randn(4, 8, 8, seed=11)
    expected = threads(1, lambda: sinkhorn(x, n_iter=15))
    with torch.inference_mode():
        torch.testing.assert_close(threads(2, lambda: sinkhorn(x, n_iter=15)), expected)
    with torch.no_grad():
        torch.testing.assert_close(threads(2, lambda: log_sinkhorn(x, n_iter=15).exp()), expected)


def test_a_blocks_solve_is_the_whole_batchs(threads):
    """Below the public API: each block's potentials are those of the whole batch's solve."""
    from gumbel_sinkhorn.ops._sinkhorn_problem import build

    problem = build(randn(7, 9, 9, seed=12), None)
    whole = _sinkhorn_solver.solve(problem, 25, tol=None, record=False)
    blocks = [slice(0, 3), slice(3, 7)]
    parts = threads(2, lambda: _sinkhorn_solver.solve_blocks(problem, blocks, 25, tol=None,
                                                             record=False))
    torch.testing.assert_close(torch.cat([p.f for p in parts]), whole.f, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.cat([p.g for p in parts]), whole.g, rtol=0, atol=1e-12)


def test_matching_is_the_same_on_threads():
    x = randn(33, 12, 12, seed=13)
    x[5, 0, 3] = float("-inf")  # the SciPy fallback on threads
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = matching(x), matching(x[:4].isfinite().float() * x[:4])
        torch.set_num_threads(2)
        two = matching(x), matching(x[:4].isfinite().float() * x[:4])
    finally:
        torch.set_num_threads(before)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)


def test_workers_are_made_again_after_a_fork(tmp_path):
    script = (
        "import os, torch\n"
        "from gumbel_sinkhorn import sinkhorn\n"
        "from gumbel_sinkhorn.ops import _blocks\n"
        "_blocks.MIN_BLOCK_ENTRIES = 1\n"
        "torch.set_num_threads(2)\n"
        "x = torch.randn(4, 6, 6, dtype=torch.float64)\n"
        "p = sinkhorn(x, n_iter=20)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    torch.set_num_threads(2)\n"
        "    os._exit(0 if torch.allclose(sinkhorn(x, n_iter=20), p) else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "raise SystemExit(os.waitstatus_to_exitcode(status))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], timeout=120, env=dict(os.environ))
    assert result.returncode == 0
