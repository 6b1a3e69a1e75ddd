import pytest
import torch

from gumbel_sinkhorn.data import load_mnist
from gumbel_sinkhorn.data.multidigit import (
    DigitSplit,
    compose,
    distinct_numbers,
    load_split,
    sample_sets,
)


def toy_split(labels) -> DigitSplit:
    """A split whose image i is filled with the value i (so pictures tell which image they are)."""
    labels = torch.as_tensor(labels)
    images = torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1).expand(-1, 28, 28)
    return DigitSplit(images.clone(), labels)


TOY = toy_split([d for d in range(10) for _ in range(3)])  # three images of every digit


def test_splits_are_the_protocols_and_disjoint(data_root):
    images, labels = load_mnist("train", root=data_root)
    train, val = load_split("train", root=data_root), load_split("val", root=data_root)
    assert torch.equal(train.images, images[:55_000]) and torch.equal(val.images, images[55_000:])
    assert torch.equal(torch.cat([train.labels, val.labels]), labels)
    test = load_split("test", root=data_root)
    assert torch.equal(test.images, load_mnist("test", root=data_root)[0])
    with pytest.raises(ValueError, match="split must be one of"):
        load_split("validation", root=data_root)


def test_sets_show_distinct_numbers_made_of_their_digits():
    sets = sample_sets(TOY, 200, 7, 3, generator=torch.Generator().manual_seed(0))
    assert sets.index.shape == (200, 7, 3)
    digits = TOY.labels[sets.index]
    assert torch.equal(sets.numbers, digits[..., 0] * 100 + digits[..., 1] * 10 + digits[..., 2])
    assert (sets.numbers.sort(-1).values.diff(dim=-1) > 0).all()  # distinct within every set
    in_order = sets.numbers.gather(-1, sets.ranks.argsort(-1))
    assert torch.equal(in_order, sets.numbers.sort(-1).values)


def test_sets_are_reproducible_from_the_seed_and_cover_the_split():
    a = sample_sets(TOY, 300, 5, 2, generator=torch.Generator().manual_seed(3))
    b = sample_sets(TOY, 300, 5, 2, generator=torch.Generator().manual_seed(3))
    c = sample_sets(TOY, 300, 5, 2, generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a.index, c.index)
    assert set(a.index.unique().tolist()) == set(range(30))  # every image gets used
    assert set(a.numbers.unique().tolist()) <= set(range(100))
    assert len(a.numbers.unique()) > 90


def test_every_distinct_number_when_a_set_holds_them_all():
    sets = sample_sets(TOY, 4, 10, 1, generator=torch.Generator().manual_seed(0))
    assert (sets.numbers.sort(-1).values == torch.arange(10)).all()
    big = sample_sets(TOY, 3, 32, 6, generator=torch.Generator().manual_seed(0))  # 10**6 numbers
    assert (big.numbers.sort(-1).values.diff(dim=-1) > 0).all()


@pytest.mark.parametrize(
    ("n", "digits", "message"),
    [
        (1, 4, "n \\(items per set\\) must be >= 2"),
        (5, 0, "digits \\(per number\\) must be >= 1"),
        (11, 1, "needs at least 11 distinct numbers.*only 10"),
        (101, 2, "only 100"),
    ],
)
def test_bad_requests_are_one_clear_error(n, digits, message):
    with pytest.raises(ValueError, match=message):
        sample_sets(TOY, 2, n, digits)


def test_a_split_missing_digits_holds_fewer_numbers():
    split = toy_split([1, 1, 4, 7])
    assert distinct_numbers(split.labels, 2) == 9
    sets = sample_sets(split, 5, 9, 2, generator=torch.Generator().manual_seed(0))
    assert set(sets.numbers.flatten().tolist()) == {11, 14, 17, 41, 44, 47, 71, 74, 77}
    with pytest.raises(ValueError, match="only 9"):
        sample_sets(split, 1, 10, 2)


def test_compose_puts_digit_p_in_columns_28p():
    index = torch.tensor([[4, 17, 29]])
    pictures = compose(TOY, index, normalize=False)
    assert pictures.shape == (1, 28, 84)
    for p, i in enumerate(index[0].tolist()):
        assert (pictures[0, :, 28 * p : 28 * p + 28] == i / 255).all()
    mean, std = 0.1307, 0.3081
    assert torch.allclose(compose(TOY, index), (pictures - mean) / std)
