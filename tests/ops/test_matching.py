import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gumbel_sinkhorn import matching


def brute_force_best_score(scores):
    n = scores.shape[-1]
    return max(
        sum(scores[i, p[i]].item() for i in range(n)) for p in itertools.permutations(range(n))
    )


def total(scores, perm):
    return scores.gather(-1, perm.unsqueeze(-1)).sum().item()


def is_permutation(perm):
    n = perm.shape[-1]
    return torch.equal(perm.sort(-1).values, torch.arange(n).expand_as(perm))


@pytest.mark.parametrize("n", range(1, 8))
def test_equals_brute_force(n):
    gen = torch.Generator().manual_seed(n)
    scores = torch.randn(30 if n < 7 else 8, n, n, dtype=torch.float64, generator=gen)
    perms = matching(scores)
    assert perms.shape == (len(scores), n) and perms.dtype == torch.int64
    for s, p in zip(scores, perms, strict=True):
        assert is_permutation(p)
        assert total(s, p) == pytest.approx(brute_force_best_score(s), abs=1e-9)


@given(
    n=st.integers(1, 5),
    extra=st.integers(0, 2),
    values=st.lists(
        st.one_of(st.integers(-3, 3).map(float), st.floats(-1e6, 1e6), st.just(-math.inf)),
        min_size=35,
        max_size=35,
    ),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_best_assignment_or_a_clear_error_for_any_scores(n, extra, values, dtype):
    # ties, large scores and forbidden (-inf) entries, square and rectangular: the total of the
    # assignment is the best over all injections of rows into columns, or none exists and the
    # error says so
    m = n + extra
    scores = torch.tensor(values[: n * m], dtype=dtype).reshape(n, m)
    exact = scores.double()
    totals = [
        sum(exact[i, cols[i]].item() for i in range(n))
        for cols in itertools.permutations(range(m), n)
    ]
    best = max(totals)
    if best == -math.inf:
        with pytest.raises(ValueError, match="forbidden"):
            matching(scores)
        return
    perm = matching(scores)
    assert perm.shape == (n,) and len(set(perm.tolist())) == n and (perm < m).all()
    assert total(exact, perm) == pytest.approx(best, rel=1e-12, abs=1e-9)


def test_ties_and_equal_rows_give_valid_permutations():
    for scores in (torch.zeros(5, 5), torch.ones(5, 1) * torch.arange(5.0), torch.ones(4, 4)):
        assert is_permutation(matching(scores))
    integer_scores = torch.randint(0, 2, (50, 5, 5)).double()
    perms = matching(integer_scores)
    for s, p in zip(integer_scores, perms, strict=True):
        assert is_permutation(p) and total(s, p) == brute_force_best_score(s)


def test_forbidden_entries_are_avoided():
    scores = torch.randn(6, 6)
    scores.fill_diagonal_(float("-inf"))
    perm = matching(scores)
    assert is_permutation(perm) and (perm != torch.arange(6)).all()


def test_infeasible_forbidden_pattern_is_a_clear_error():
    scores = torch.zeros(3, 3)
    scores[:, 0] = float("-inf")
    with pytest.raises(ValueError, match="forbidden"):
        matching(scores)


def test_batch_shape_dtype_and_large_batches():
    scores = torch.randn(3, 70, 4, 4, dtype=torch.float32)
    perms = matching(scores)
    assert perms.shape == (3, 70, 4)
    for idx in [(0, 0), (1, 33), (2, 69)]:
        assert torch.equal(perms[idx], matching(scores[idx]))


def test_does_not_need_gradients_and_refuses_nan():
    scores = torch.randn(3, 3, requires_grad=True)
    assert is_permutation(matching(scores))
    with pytest.raises(ValueError, match="NaN"):
        matching(torch.full((2, 2), float("nan")))
