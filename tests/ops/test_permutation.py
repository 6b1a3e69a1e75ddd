import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import gumbel_sinkhorn as gs
from gumbel_sinkhorn import (
    invert_permutation,
    permutation_indices,
    permutation_matrix,
    permute,
    random_permutation,
)


@given(batch=st.lists(st.integers(1, 3), max_size=2), n=st.integers(1, 8), seed=st.integers(0, 999))
def test_matrix_and_indices_round_trip(batch, n, seed):
    perm = random_permutation(*batch, n, generator=torch.Generator().manual_seed(seed))
    P = permutation_matrix(perm)
    assert P.shape == (*batch, n, n)
    assert (P.sum(-1) == 1).all() and (P.sum(-2) == 1).all()
    assert torch.equal(permutation_indices(P), perm)
    inverse = invert_permutation(perm)
    assert torch.equal(permute(perm, inverse), torch.arange(n).expand_as(perm))
    assert torch.equal(permutation_matrix(inverse), P.transpose(-1, -2))


def test_permute_matches_its_definition_along_any_axis():
    x = torch.randn(2, 3, 4, 5)
    perm = random_permutation(2, 4, generator=torch.Generator().manual_seed(0))
    out = permute(x, perm, dim=2)
    for b, j in itertools.product(range(2), range(4)):
        assert torch.equal(out[b, :, j], x[b, :, perm[b, j]])
    shared = torch.tensor([2, 0, 1])
    assert torch.equal(permute(x, shared, dim=1), x[:, shared])


def test_permute_equals_multiplying_by_the_permutation_matrix():
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    perm = random_permutation(4, 6)
    torch.testing.assert_close(permute(x, perm), permutation_matrix(perm, dtype=x.dtype) @ x)


def test_random_permutation_is_uniform():
    perms = random_permutation(6000, 3, generator=torch.Generator().manual_seed(1))
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
        (lambda: random_permutation(2, 0), ValueError, "n must be >= 1"),
        (lambda: invert_permutation([1, 0]), TypeError, "torch.Tensor"),
    ],
)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_place_puts_items_where_the_matching_sends_them():
    gen = torch.Generator().manual_seed(3)
    target = random_permutation(5, 6, generator=gen)  # item i belongs in slot target[i]
    scores = permutation_matrix(target) * 10 + torch.rand(5, 6, 6, generator=gen)
    perm = gs.matching(scores)
    assert torch.equal(perm, target)
    x = torch.randn(5, 6, 3, dtype=torch.float64, generator=gen)
    placed = gs.place(x, perm)
    for b, i in itertools.product(range(5), range(6)):
        assert torch.equal(placed[b, target[b, i]], x[b, i])
    assert torch.equal(placed, permutation_matrix(perm, dtype=x.dtype).transpose(-1, -2) @ x)
    assert torch.equal(gs.permute(placed, perm), x)  # permute reads the other way: undoes it
    with pytest.raises(ValueError, match="permutations"):
        gs.place(x, torch.zeros(5, 6, dtype=torch.int64))


def test_random_permutation_takes_its_size_like_torch():
    assert sorted(random_permutation(8).tolist()) == list(range(8))  # as torch.randperm(8)
    assert random_permutation((2, 3, 4)).shape == (2, 3, 4)
    new = random_permutation(2, 4, generator=torch.Generator().manual_seed(0))
    with pytest.warns(DeprecationWarning, match=r"random_permutation\(2, 4\)"):
        old = random_permutation(2, n=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(old, new)
    with pytest.raises(TypeError, match="needs a size"):
        random_permutation()
    with pytest.raises(TypeError, match="integer"):
        random_permutation(2.5)


def test_every_permutation_function_says_which_way_it_points():
    from gumbel_sinkhorn import data

    functions = [
        gs.matching,
        gs.gumbel_matching,
        gs.permutation_matrix,
        gs.permutation_indices,
        gs.invert_permutation,
        gs.permute,
        gs.place,
        gs.random_permutation,
        data.scramble,
        data.unscramble,
    ]
    for function in functions:
        doc = " ".join(function.__doc__.split())
        assert "goes" in doc or "which way" in doc.lower(), function.__name__
