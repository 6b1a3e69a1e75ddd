"""Batched hard matching: both solver paths optimal (vs SciPy, vs brute force), rectangles."""

import importlib
import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from gumbel_sinkhorn import matching

matching_module = importlib.import_module("gumbel_sinkhorn.ops.matching")  # not the function


@pytest.fixture(params=["lapx", "scipy"])
def solver(request, monkeypatch):
    """Run a test through lapx's batched solver and through the SciPy fallback."""
    if request.param == "scipy":
        monkeypatch.setattr(matching_module, "lapjvh_batch", None)
    elif matching_module.lapjvh_batch is None:
        pytest.skip("lapx is not installed")
    return request.param


def totals(scores, perm):
    return scores.gather(-1, perm.unsqueeze(-1)).squeeze(-1).sum(-1)


def scipy_totals(scores):
    out = []
    for s in scores.reshape(-1, *scores.shape[-2:]).numpy():
        rows, cols = linear_sum_assignment(s, maximize=True)
        out.append(s[rows, cols].sum())
    return torch.tensor(out, dtype=scores.dtype).reshape(scores.shape[:-2])


def valid(perm, m):
    distinct = perm.sort(-1).values.diff(dim=-1) > 0
    return bool(distinct.all() and (perm >= 0).all() and (perm < m).all())


SCORES = {
    "normal": lambda gen, shape: torch.randn(shape, generator=gen, dtype=torch.float64),
    "ties": lambda gen, shape: torch.randint(0, 3, shape, generator=gen).double(),
    "huge": lambda gen, shape: torch.randn(shape, generator=gen, dtype=torch.float64) * 1e12,
    "float32": lambda gen, shape: torch.randn(shape, generator=gen) * 100,
}


@pytest.mark.parametrize("kind", SCORES)
@pytest.mark.parametrize(("batch", "n", "m"), [(64, 16, 16), (8, 64, 64), (16, 10, 13)])
def test_total_equals_scipy_optimum(solver, kind, batch, n, m):
    scores = SCORES[kind](torch.Generator().manual_seed(n + m), (batch, n, m))
    perm = matching(scores)
    assert perm.shape == (batch, n) and perm.dtype == torch.int64 and valid(perm, m)
    expected = scipy_totals(scores.double())
    torch.testing.assert_close(totals(scores.double(), perm), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize(("n", "m"), [(1, 1), (1, 4), (2, 5), (3, 3), (3, 6), (5, 5), (4, 7)])
def test_rectangular_and_square_equal_brute_force(solver, n, m):
    scores = torch.randn(20, n, m, dtype=torch.float64, generator=torch.Generator().manual_seed(m))
    perm = matching(scores)
    assignments = torch.tensor(list(itertools.permutations(range(m), n)))  # (K, n)
    best = scores[:, torch.arange(n), assignments].sum(-1).amax(-1)  # over all K assignments
    assert valid(perm, m)
    torch.testing.assert_close(totals(scores, perm), best, rtol=1e-12, atol=0)


def test_forbidden_entries_in_rectangles(solver):
    scores = torch.randn(30, 4, 6, generator=torch.Generator().manual_seed(1))
    scores[:, :, 0] = float("-inf")
    scores[:, 2, 1:4] = float("-inf")
    perm = matching(scores)
    assert valid(perm, 6) and (perm != 0).all() and (perm[:, 2] >= 4).all()
    torch.testing.assert_close(totals(scores.double(), perm), scipy_totals(scores.double()))


def test_batch_shapes_empty_batches_and_wide_matrices_are_refused():
    assert matching(torch.randn(0, 3, 5)).shape == (0, 3)
    assert matching(torch.randn(2, 3, 4, 4)).shape == (2, 3, 4)
    with pytest.raises(ValueError, match="N <= M"):
        matching(torch.randn(5, 4))


def test_solvers_agree_on_a_large_batch(monkeypatch):
    if matching_module.lapjvh_batch is None:
        pytest.skip("lapx is not installed")
    scores = torch.randn(256, 32, 32, generator=torch.Generator().manual_seed(3)).double()
    fast = matching(scores)
    monkeypatch.setattr(matching_module, "lapjvh_batch", None)
    slow = matching(scores)
    np.testing.assert_allclose(totals(scores, fast), totals(scores, slow), rtol=1e-12)
