import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from gumbel_sinkhorn import (
    invert_permutation,
    permutation_indices,
    permutation_matrix,
    permute,
    random_permutation,
)


@given(batch=st.lists(st.integers(1, 3), max_size=2), n=st.integers(1, 8), seed=st.integers(0, 999))
def test_matrix_and_indices_round_trip(batch, n, seed):
    perm = random_permutation(*batch, n=n, generator=torch.Generator().manual_seed(seed))
    P = permutation_matrix(perm)
    assert P.shape == (*batch, n, n)
    assert (P.sum(-1) == 1).all() and (P.sum(-2) == 1).all()
    assert torch.equal(permutation_indices(P), perm)
    inverse = invert_permutation(perm)
    assert torch.equal(permute(perm, inverse), torch.arange(n).expand_as(perm))
    assert torch.equal(permutation_matrix(inverse), P.transpose(-1, -2))


def test_permute_matches_its_definition_along_any_axis():
    x = torch.randn(2, 3, 4, 5)
    perm = random_permutation(2, n=4, generator=torch.Generator().manual_seed(0))
    out = permute(x, perm, dim=2)
    for b, j in itertools.product(range(2), range(4)):
        assert torch.equal(out[b, :, j], x[b, :, perm[b, j]])
    shared = torch.tensor([2, 0, 1])
    assert torch.equal(permute(x, shared, dim=1), x[:, shared])


def test_permute_equals_multiplying_by_the_permutation_matrix():
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    perm = random_permutation(4, n=6)
    torch.testing.assert_close(permute(x, perm), permutation_matrix(perm, dtype=x.dtype) @ x)


def test_random_permutation_is_uniform():
    perms = random_permutation(6000, n=3, generator=torch.Generator().manual_seed(1))
    index = {p: i for i, p in enumerate(itertools.permutations(range(3)))}
    counts = torch.bincount(torch.tensor([index[tuple(p)] for p in perms.tolist()]), minlength=6)
    assert stats.chisquare(counts.numpy()).pvalue > 0.001


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: permutation_matrix(torch.tensor([0.0, 1.0])), TypeError, "integer dtype"),
        (lambda: permutation_indices(torch.ones(2, 3)), ValueError, "square"),
        (lambda: permute(torch.ones(4), torch.tensor([0, 1, 2])), ValueError, "length 3"),
        (lambda: permute(torch.ones(2, 3), torch.tensor([[0, 1, 2]] * 3)), ValueError, "broadcast"),
        (lambda: permute(torch.ones(3), torch.tensor([0, 1, 2]), dim=4), ValueError, "dim"),
        (lambda: random_permutation(2, n=0), ValueError, "n must be >= 1"),
        (lambda: invert_permutation([1, 0]), TypeError, "torch.Tensor"),
    ],
)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()
