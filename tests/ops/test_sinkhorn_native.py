"""The native CPU kernels (ops/_native) against the torch operators they stand in for."""

import shlex

import pytest
import torch

from gumbel_sinkhorn import log_sinkhorn, sinkhorn
from gumbel_sinkhorn.ops import _native, _sinkhorn_solver

pytestmark = pytest.mark.skipif(_native.library() is None, reason="no C compiler here")


def randn(*shape, seed=0, dtype=torch.float64, scale=1.0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed)) * scale


@pytest.fixture
def native_calls(monkeypatch):
    """Counts the native kernels' calls (so a silent fallback cannot pass for agreement)."""
    counts = {}
    for name in ("solve", "reverse", "implicit_grad"):
        original = getattr(_native, name)

        def counted(*args, name=name, original=original, **kwargs):
            counts[name] = counts.get(name, 0) + 1
            return original(*args, **kwargs)

        monkeypatch.setattr(_native, name, counted)
    return counts


@pytest.fixture
def solutions(monkeypatch):
    """The native forward's solutions, as they are made."""
    made, solve = [], _native.solve
    monkeypatch.setattr(_native, "solve", lambda *a, **k: made.append(solve(*a, **k)) or made[-1])
    return made


def run(monkeypatch, native: bool, x, weights, *, log, **options):
    """The output and the gradient of ``(output * weights).sum()``, on the chosen path."""
    monkeypatch.setenv(_native.ENV_VAR, "1" if native else "0")
    x = x.detach().clone().requires_grad_()
    out = (log_sinkhorn if log else sinkhorn)(x, **options)
    (grad,) = torch.autograd.grad((out.nan_to_num(neginf=0.0) * weights).sum(), x)
    return out.detach(), grad


def with_forbidden_entries(x, seed):
    """``x`` with about a quarter of its off-diagonal entries at -inf."""
    gen = torch.Generator().manual_seed(seed)
    drop = (torch.rand(x.shape, generator=gen) < 0.25) & ~torch.eye(*x.shape[-2:], dtype=bool)
    return x.masked_fill(drop, float("-inf"))


def mask_of(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < 0.7) | torch.eye(*shape[-2:], dtype=bool)


CASES = {
    "square": lambda dtype: (randn(3, 6, 6, seed=1, dtype=dtype), {}),
    "rectangular": lambda dtype: (randn(3, 4, 7, seed=2, dtype=dtype), {}),
    "sizes": lambda dtype: (
        randn(4, 6, 6, seed=3, dtype=dtype),
        {"sizes": torch.tensor([6, 3, 1, 5])},
    ),
    "rows and cols": lambda dtype: (
        randn(3, 5, 7, seed=4, dtype=dtype),
        {"sizes": (torch.tensor([5, 2, 3]), torch.tensor([7, 6, 3]))},
    ),
    "mask": lambda dtype: (randn(3, 6, 6, seed=5, dtype=dtype), {"mask": mask_of((3, 6, 6), 5)}),
    "-inf": lambda dtype: (with_forbidden_entries(randn(3, 6, 6, seed=6, dtype=dtype), 6), {}),
    # scores spanning hundreds of nats at tau 1/30: the kernels re-base and fall back to the log
    # domain (test_low_temperature_takes_the_log_domain_and_new_bases checks that they do)
    "low tau": lambda dtype: (randn(4, 8, 8, seed=7, dtype=dtype, scale=10.0), {"tau": 1 / 30}),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("n_iter", [1, 7, 20, 100])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("backward", ["unrolled", "implicit"])
@pytest.mark.parametrize("log", [False, True])
def test_native_equals_torch(monkeypatch, native_calls, case, n_iter, dtype, backward, log):
    x, options = CASES[case](dtype)
    weights = randn(*x.shape, seed=99, dtype=dtype)
    options = dict(options, n_iter=n_iter, backward=backward, log=log)
    out, grad = run(monkeypatch, True, x, weights, **options)
    assert native_calls["solve"] == 1
    assert native_calls["reverse" if backward == "unrolled" else "implicit_grad"] == 1
    expected_out, expected_grad = run(monkeypatch, False, x, weights, **options)
    assert native_calls["solve"] == 1  # the torch path ran the second time
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    # log P is a sum of potentials of the size of the scores / tau: rounding is relative to those
    tau = options.get("tau", 1.0)
    spread = x[x.isfinite()].abs().max().item() / tau if log else 1.0
    torch.testing.assert_close(out, expected_out, atol=tol * spread, rtol=tol)
    # rounding differences in P reach the gradient divided by tau; near a permutation (low tau)
    # the implicit backward's system is nearly singular (conditioned ~1 / DAMPING)
    scale = max(expected_grad.abs().max().item(), 1.0) / tau
    if backward == "implicit" and case == "low tau":
        scale *= 1e4
    torch.testing.assert_close(grad, expected_grad, atol=tol * scale, rtol=tol * 10)


@pytest.mark.parametrize("budget", [0, _native.TRANSPOSED_UP_TO])
@pytest.mark.parametrize("shape", [(3, 6, 6), (2, 9, 40), (2, 130, 150)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_both_kernel_layouts(monkeypatch, native_calls, solutions, budget, shape, dtype):
    # K alone (budget 0) and K with its transpose (every shape here fits 1 MiB): rows padded to
    # whole vectors, one or several tiles of sums (150 columns: 2 tiles in float32, 3 in float64)
    monkeypatch.setattr(_native, "TRANSPOSED_UP_TO", budget)
    x = randn(*shape, seed=12, dtype=dtype, scale=3.0)
    weights = randn(*shape, seed=13, dtype=dtype)
    out, grad = run(monkeypatch, True, x, weights, n_iter=30, log=False)
    expected_out, expected_grad = run(monkeypatch, False, x, weights, n_iter=30, log=False)
    assert native_calls["reverse"] == 1
    # scores of this size stay in the scaling form: a wrong sum would overflow into log-domain
    # redos, which compute the right answer slowly
    record = solutions[0].record
    assert (record.chunks[:, :3, 0] == 10).all() and (record.n_chunks == 3).all()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, expected_out, atol=tol, rtol=tol)
    scale = max(expected_grad.abs().max().item(), 1.0)
    torch.testing.assert_close(grad, expected_grad, atol=tol * scale, rtol=tol * 10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_large_kernels_add_their_terms_in_several_passes(monkeypatch, native_calls, dtype):
    # (400, 400) at 60 iterations: 120 rank-one terms of 800 values, more than the 256 KiB the
    # reverse pass lets them take, so they are added to dx in passes; K alone (no transpose)
    x, weights = randn(1, 400, 400, seed=14, dtype=dtype), randn(1, 400, 400, seed=15, dtype=dtype)
    _, grad = run(monkeypatch, True, x, weights, n_iter=60, log=False)
    _, expected = run(monkeypatch, False, x, weights, n_iter=60, log=False)
    assert native_calls["reverse"] == 1
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(grad, expected, atol=tol * expected.abs().max().item(), rtol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conjugate_gradient_of_large_matrices(monkeypatch, native_calls, dtype):
    x, weights = randn(2, 70, 70, seed=8, dtype=dtype), randn(2, 70, 70, seed=9, dtype=dtype)
    options = dict(n_iter=30, backward="implicit", log=False)
    _, grad = run(monkeypatch, True, x, weights, **options)
    _, expected = run(monkeypatch, False, x, weights, **options)
    assert native_calls["implicit_grad"] == 1
    tol = 1e-6 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(grad, expected, atol=tol * expected.abs().max().item(), rtol=0)


@pytest.mark.parametrize("budget", [0, _native.TRANSPOSED_UP_TO])
@pytest.mark.parametrize("limit", [0.0, 3.0])
def test_log_domain_redos_and_new_bases(monkeypatch, solutions, limit, budget):
    monkeypatch.setattr(_native, "TRANSPOSED_UP_TO", budget)
    # a lower limit on the scalings (both paths read it): chunks overflow and are redone in the
    # log domain (every one at 0), kernels are re-based
    monkeypatch.setattr(_sinkhorn_solver, "_limit", lambda dtype: limit)
    x = randn(8, 36, 36, seed=5, dtype=torch.float32, scale=10.0)
    weights = randn(8, 36, 36, seed=6, dtype=torch.float32)
    out, grad = run(monkeypatch, True, x, weights, n_iter=23, log=False)
    expected_out, expected_grad = run(monkeypatch, False, x, weights, n_iter=23, log=False)
    torch.testing.assert_close(out, expected_out, atol=1e-6, rtol=1e-6)
    # log-domain iterations round their exponents, of the size of the scores (here ~40)
    scale = max(expected_grad.abs().max().item(), 1.0) * x.abs().max().item()
    torch.testing.assert_close(grad, expected_grad, atol=1e-7 * scale, rtol=1e-5)
    record = solutions[0].record
    steps, bases = record.chunks[..., 0], record.chunks[..., 1]
    used = torch.arange(steps.shape[1]) < record.n_chunks.unsqueeze(-1)
    assert (steps.abs() * used).sum(-1).eq(23).all()  # every iteration in exactly one chunk
    assert (steps[used] == -1).any() and (steps[used] == -10).any()
    assert (limit > 0) == bool((steps[used] > 0).any())  # at 0, no chunk stays in scaling form
    assert (bases[used] > 0).any()


@pytest.mark.parametrize("backward", ["unrolled", "implicit"])
def test_gradcheck_through_the_native_kernels(native_calls, backward):
    x = randn(2, 4, 4, seed=10).requires_grad_()
    rect = randn(2, 3, 5, seed=11).requires_grad_()
    n_iter = 12 if backward == "unrolled" else 3000  # implicit: exact at the fixed point
    padded = {"tau": 0.7, "sizes": torch.tensor([4, 3])}  # log P is -inf there: P only
    for fn, t, options in ((sinkhorn, x, padded), (log_sinkhorn, x, {}), (log_sinkhorn, rect, {})):
        call = lambda t, fn=fn, options=options: fn(  # noqa: E731
            t, n_iter=n_iter, backward=backward, **options
        )
        assert torch.autograd.gradcheck(call, (t,))
    assert native_calls["reverse" if backward == "unrolled" else "implicit_grad"] > 0


@pytest.mark.parametrize("backward", ["unrolled", "implicit"])
def test_the_same_bits_at_one_and_two_threads(backward):
    x, weights = randn(5, 30, 30, seed=12, dtype=torch.float32), randn(5, 30, 30, seed=13)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            t = x.clone().requires_grad_()
            out = sinkhorn(t, n_iter=20, tau=0.2, backward=backward)
            (out * weights.float()).sum().backward()
            results.append((out.detach(), t.grad))
    finally:
        torch.set_num_threads(before)
    for one, two in zip(*results, strict=True):
        torch.testing.assert_close(one, two, atol=0, rtol=0)


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """An empty cache folder and no library loaded yet (restored afterwards)."""
    monkeypatch.setattr(_native, "_loaded", {})
    monkeypatch.setenv(_native.CACHE_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("problem", ["no compiler", "failing compiler", "unwritable folder"])
def test_without_a_library_the_torch_path_runs(monkeypatch, fresh_build, tmp_path, problem):
    if problem == "no compiler":
        monkeypatch.setenv("CC", str(tmp_path / "missing-cc"))
    elif problem == "failing compiler":
        monkeypatch.setenv("CC", "false")
    else:
        (tmp_path / "file").write_text("")
        monkeypatch.setenv(_native.CACHE_VAR, str(tmp_path / "file" / "cache"))
    x = randn(3, 5, 5, seed=14).requires_grad_()
    out = sinkhorn(x, n_iter=10)
    out.sum().backward()
    assert _native.library() is None and not _native.usable(x)
    monkeypatch.setenv(_native.ENV_VAR, "0")
    torch.testing.assert_close(out, sinkhorn(x, n_iter=10), atol=0, rtol=0)


def test_the_switch_turns_the_native_path_off(monkeypatch, native_calls):
    monkeypatch.setenv(_native.ENV_VAR, "0")
    sinkhorn(randn(2, 4, 4), n_iter=5)
    assert not native_calls


def test_a_corrupt_cached_library_is_rebuilt(monkeypatch, fresh_build):
    monkeypatch.delenv("CC", raising=False)
    compiler = shlex.split("cc")
    fresh_build.mkdir(parents=True)
    path = fresh_build / f"sinkhorn-{_native._key(compiler, _native.FLAGS + _native.OPENMP)}.so"
    path.write_bytes(b"not a shared library")
    assert _native.library() is not None
    assert path.read_bytes().startswith(b"\x7fELF")
    assert [p.name for p in fresh_build.iterdir()] == [path.name]  # no temporary file left
