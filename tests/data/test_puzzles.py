import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gumbel_sinkhorn.data import (
    assemble_pieces,
    cut_pieces,
    fit_image,
    fit_to_grid,
    make_puzzles,
    random_shift,
    scramble,
    unfit_image,
    unscramble,
)
from gumbel_sinkhorn.ops import permutation_matrix


@st.composite
def images_and_grid(draw):
    batch = draw(st.lists(st.integers(0, 3), min_size=0, max_size=2))
    grid = draw(st.integers(1, 5))
    c = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 4)) * grid, draw(st.integers(1, 4)) * grid
    seed = draw(st.integers(0, 2**31))
    images = torch.rand(*batch, c, h, w, generator=torch.Generator().manual_seed(seed))
    return images, grid


@settings(max_examples=60, deadline=None)
@given(images_and_grid())
def test_cut_is_row_major_and_assemble_inverts_it(case):
    images, grid = case
    pieces = cut_pieces(images, grid)
    *batch, c, h, w = images.shape
    ph, pw = h // grid, w // grid
    assert pieces.shape == (*batch, grid * grid, c, ph, pw)
    for k in range(grid * grid):
        r, col = divmod(k, grid)
        block = images[..., r * ph : (r + 1) * ph, col * pw : (col + 1) * pw]
        assert torch.equal(pieces[..., k, :, :, :], block)
    assert torch.equal(assemble_pieces(pieces), images)


@settings(max_examples=60, deadline=None)
@given(images_and_grid(), st.integers(0, 2**31))
def test_scramble_then_unscramble_round_trips(case, seed):
    images, grid = case
    pieces = cut_pieces(images, grid)
    scrambled, perm = scramble(pieces, generator=torch.Generator().manual_seed(seed))
    assert scrambled.shape == pieces.shape
    assert perm.shape == pieces.shape[:-3] and perm.dtype == torch.int64
    assert torch.equal(perm.sort(-1).values, torch.arange(grid * grid).expand_as(perm))
    flat_pieces, flat_scrambled = pieces.flatten(-3), scrambled.flatten(-3)
    for index in itertools.product(*map(range, perm.shape[:-1])):
        for j in range(grid * grid):
            assert torch.equal(flat_scrambled[index][j], flat_pieces[index][perm[index][j]])
    assert torch.equal(unscramble(scrambled, perm), pieces)
    # The matrix form: scrambled = P @ pieces, pieces = P^T @ scrambled.
    P = permutation_matrix(perm, dtype=pieces.dtype)
    assert torch.allclose(P @ flat_pieces, flat_scrambled)
    assert torch.allclose(P.transpose(-1, -2) @ flat_scrambled, flat_pieces)


def test_scramble_is_seeded_and_gives_each_image_its_own_permutation():
    pieces = torch.rand(64, 9, 1, 3, 3)
    a = scramble(pieces, generator=torch.Generator().manual_seed(1))
    b = scramble(pieces, generator=torch.Generator().manual_seed(1))
    c = scramble(pieces, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    assert len({tuple(p) for p in a[1].tolist()}) > 60


def test_scramble_is_uniform_over_permutations_and_positions():
    # 3 pieces: each of the 6 permutations should come up 1/6 of the time.
    n_draws = 60_000
    pieces = torch.zeros(n_draws, 3, 1, 1, 1)
    _, perm = scramble(pieces, generator=torch.Generator().manual_seed(0))
    codes = perm[:, 0] * 9 + perm[:, 1] * 3 + perm[:, 2]
    counts = torch.bincount(codes, minlength=27).double()
    counts = counts[counts > 0]
    assert len(counts) == 6
    expected = n_draws / 6
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 30  # 5 degrees of freedom: P(chi2 > 30) ~ 1.5e-5
    # 16 pieces: every piece lands in every position about 1/16 of the time.
    _, perm = scramble(torch.zeros(16_000, 16, 1, 1, 1), generator=torch.Generator().manual_seed(0))
    freq = torch.nn.functional.one_hot(perm, 16).double().mean(0)
    assert (freq - 1 / 16).abs().max() < 0.01


def test_generator_on_cpu_with_pieces_elsewhere_keeps_the_pieces_device():
    pieces = torch.rand(2, 4, 1, 2, 2, device="meta")
    scrambled, perm = scramble(pieces, generator=torch.Generator().manual_seed(0))
    assert scrambled.device.type == "meta" and perm.device.type == "meta"


@pytest.mark.parametrize("grid", [2, 3, 4, 5, 6])
def test_fit_to_grid_on_mnist_sized_images(grid):
    images = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    padded = fit_to_grid(images, grid, mode="pad")
    cropped = fit_to_grid(images, grid, mode="crop")
    resized = fit_to_grid(images, grid, mode="resize")
    for fitted in (padded, cropped, resized):
        assert fitted.dtype == torch.uint8
        assert fitted.shape[:2] == (3, 1)
        assert fitted.shape[-1] % grid == 0 and fitted.shape[-2] % grid == 0
        cut_pieces(fitted, grid)
    if grid in (2, 4):  # 28 is a multiple: nothing to do
        assert padded is images and cropped is images and resized is images
        return
    side = -(-28 // grid) * grid
    top = (side - 28) // 2
    assert padded.shape[-1] == side
    assert torch.equal(padded[..., top : top + 28, top : top + 28], images)
    assert padded.sum() == images.sum()  # the border is 0
    side = 28 // grid * grid
    top = (28 - side) // 2
    assert torch.equal(cropped, images[..., top : top + side, top : top + side])
    assert resized.shape[-1] == round(28 / grid) * grid


def test_fit_to_grid_pads_with_a_value_and_resizes_smoothly():
    images = torch.full((1, 2, 5, 7), 0.5)
    padded = fit_to_grid(images, 3, mode="pad", value=-1.0)
    assert padded.shape == (1, 2, 6, 9)
    border = torch.ones(6, 9, dtype=torch.bool)
    border[:5, 1:8] = False  # one row at the bottom (the odd pixel), one column each side
    assert padded[..., border].eq(-1).all() and padded[..., ~border].eq(0.5).all()
    resized = fit_to_grid(images, 3, mode="resize")
    assert resized.shape == (1, 2, 6, 6)
    assert torch.allclose(resized, torch.full_like(resized, 0.5))


def test_make_puzzles_with_and_without_fit():
    images = torch.rand(4, 3, 28, 28)
    puzzles = make_puzzles(images, 5, fit="pad", generator=torch.Generator().manual_seed(0))
    assert puzzles.pieces.shape == (4, 25, 3, 6, 6)
    assert torch.equal(unscramble(puzzles.scrambled, puzzles.perm), puzzles.pieces)
    with pytest.raises(ValueError, match="fit_to_grid"):
        make_puzzles(images, 5)


def test_bad_arguments_give_clear_errors():
    images = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="not a multiple of the grid 3"):
        cut_pieces(images, 3)
    with pytest.raises(ValueError, match="grid must be >= 1"):
        cut_pieces(images, 0)
    with pytest.raises(TypeError, match="grid must be an integer"):
        cut_pieces(images, 2.0)
    with pytest.raises(TypeError, match="images must be a torch.Tensor"):
        cut_pieces(images.numpy(), 2)
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        cut_pieces(torch.rand(28, 28), 2)
    with pytest.raises(ValueError, match="must be a square"):
        assemble_pieces(torch.rand(2, 6, 1, 4, 4))
    with pytest.raises(ValueError, match="mode must be one of"):
        fit_to_grid(images, 3, mode="stretch")
    with pytest.raises(ValueError, match="cannot crop a 2×2 image"):
        fit_to_grid(torch.rand(1, 2, 2), 3, mode="crop")
    pieces = cut_pieces(images, 2)
    with pytest.raises(ValueError, match=r"perm must have shape \(2, 4\)"):
        unscramble(pieces, torch.arange(4))
    with pytest.raises(TypeError, match="integer dtype"):
        unscramble(pieces, torch.zeros(2, 4))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 3), st.integers(0, 2**31), st.sampled_from([torch.uint8, torch.float32]))
def test_random_shift_moves_each_image_within_its_background_border(max_shift, seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    images = torch.zeros(6, 2, 12, 11, dtype=dtype)
    images[:, :, 3:9, 3:8] = torch.randint(1, 200, (6, 2, 6, 5), generator=gen).to(dtype)
    moved = random_shift(images, max_shift, gen)
    assert moved.shape == images.shape and moved.dtype == dtype
    for image, out in zip(images, moved, strict=True):
        offsets = [
            (dy, dx)
            for dy, dx in itertools.product(range(-max_shift, max_shift + 1), repeat=2)
            if torch.equal(out, image.roll((dy, dx), (-2, -1)))  # exact: the border is blank
        ]
        assert offsets, "not a translate of its image"
    if max_shift:
        assert len({tuple(o.flatten().tolist()) for o in moved}) > 1  # not one offset for all


def test_random_shift_repeats_the_border_and_refuses_a_negative_shift():
    image = torch.arange(9.0).reshape(1, 1, 3, 3)
    moved = random_shift(image.expand(200, 1, 3, 3), 1, torch.Generator().manual_seed(0))
    corners = {tuple(m.flatten().tolist()) for m in moved}
    assert (0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 3.0, 3.0, 4.0) in corners  # moved down-right
    assert len(corners) == 9
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(image, -1)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 6),
    st.integers(2, 40),
    st.integers(2, 40),
    st.sampled_from(["pad", "crop"]),
    st.integers(0, 2**31),
)
def test_fit_image_is_the_training_fit_and_unfit_gives_the_image_back(grid, h, w, mode, seed):
    # what solve does to one image: the same pixels as the training images got, and back
    image = torch.randint(
        0, 256, (2, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )
    if mode == "crop" and min(h, w) < grid:
        return
    trained = fit_to_grid(image, grid, mode=mode)
    fitted, fit = fit_image(image, grid, trained.shape[-2:], mode=mode)
    assert torch.equal(fitted, trained) and fit.exact
    assert torch.equal(unfit_image(fitted, fit), image)
    # the solved puzzle differs from the fitted image: only the puzzle's pixels change
    solved = fitted.flip(-1)
    back = unfit_image(solved, fit)
    assert back.shape == image.shape and back.dtype == image.dtype
    if mode == "pad":
        assert torch.equal(
            fit_to_grid(back, grid, mode="pad")[
                ..., fit.top : fit.top + h, fit.left : fit.left + w
            ],
            back,
        )
    else:
        assert torch.equal(fit_to_grid(back, grid, mode="crop"), solved)


def test_fit_image_resizes_only_other_sizes_and_says_so():
    digit = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    same, fit = fit_image(digit, 3, (28, 28))
    assert same is digit and fit.how == "none" and unfit_image(same, fit) is same
    big = torch.full((1, 56, 56), 200, dtype=torch.uint8)
    fitted, fit = fit_image(big, 3, (30, 30), mode="pad")
    assert fitted.shape == (1, 30, 30) and fit.how == "resize" and not fit.exact
    assert unfit_image(fitted, fit).shape == (1, 56, 56)
    assert fit_image(digit, 3, (27, 27), mode="resize")[1].how == "resize"
    with pytest.raises(ValueError, match="mode must be one of"):
        fit_image(digit, 3, (30, 30), mode="stretch")
    with pytest.raises(ValueError, match="shape must be"):
        fit_image(digit, 3, (30, 30, 30))
