import pytest
import torch

from gumbel_sinkhorn.data import load_mnist
from gumbel_sinkhorn.data.multidigit import (
    DigitSplit,
    compose,
    distinct_numbers,
    load_split,
    sample_sets,
    translate,
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


def test_translate_moves_every_pixel_and_lets_zeros_in():
    g = torch.Generator().manual_seed(0)
    image = torch.randint(1, 256, (2, 3, 28, 28), dtype=torch.uint8, generator=g)
    shifts = torch.tensor([[[2, -1], [0, 0], [-3, 3]], [[1, 1], [0, -2], [5, 0]]])
    moved = translate(image, shifts)
    assert moved.shape == image.shape and moved.dtype == torch.uint8
    for idx in [(a, b) for a in range(2) for b in range(3)]:
        down, right = shifts[idx].tolist()
        expected = torch.zeros(28, 28, dtype=torch.uint8)
        for r in range(28):
            for c in range(28):
                if 0 <= r - down < 28 and 0 <= c - right < 28:
                    expected[r, c] = image[idx][r - down, c - right]
        assert torch.equal(moved[idx], expected), idx


def test_compose_with_shifts_moves_each_digit_in_its_own_cell():
    index = torch.tensor([[4, 17, 29]])
    assert torch.equal(compose(TOY, index, shifts=torch.zeros(1, 3, 2, dtype=torch.long)),
                       compose(TOY, index))  # fmt: skip
    shifts = torch.tensor([[[0, 2], [0, 0], [-1, 0]]])
    pictures = compose(TOY, index, shifts=shifts, normalize=False)[0]
    assert (pictures[:, 0:2] == 0).all() and (pictures[:, 2:28] == 4 / 255).all()
    assert (pictures[:, 28:56] == 17 / 255).all()
    assert (pictures[27, 56:] == 0).all() and (pictures[:27, 56:] == 29 / 255).all()


@pytest.mark.parametrize(
    "shifts, message",
    [(torch.zeros(1, 3, dtype=torch.long), "shifts must have shape"),
     (torch.zeros(1, 3, 2), "shifts must be integers")],
)  # fmt: skip
def test_bad_shifts_are_one_clear_error(shifts, message):
    from gumbel_sinkhorn.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match=message):
        compose(TOY, torch.tensor([[4, 17, 29]]), shifts=shifts)
