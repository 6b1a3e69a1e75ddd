import json
import os

import pytest
import torch

from gumbel_sinkhorn.tasks.jigsaw import METRICS, JigsawTask, score
from gumbel_sinkhorn.train import fit

DATA_ROOT = os.environ.get("GUMBEL_SINKHORN_DATA")
needs_mnist = pytest.mark.skipif(not DATA_ROOT, reason="GUMBEL_SINKHORN_DATA is not set")


def digits(**options):
    return JigsawTask(dataset="digits", grid=2, train_size=128, test_size=32, **options)


def test_config_round_trips_through_json():
    task = digits(model={"n_context": 1, "d_model": 16})
    config = json.loads(json.dumps(task.config()))
    again = JigsawTask.from_config(config)
    assert again.config() == task.config()
    assert again.image_shape == [1, 8, 8] and again.model["n_context"] == 1


@needs_mnist
def test_mnist_is_padded_to_the_grid_without_losing_a_pixel():
    task = JigsawTask(grid=6, data_root=DATA_ROOT, test_size=10)
    images = task.images("test")
    assert images.shape == (10, 1, 30, 30)
    raw = task.normalize(task.dataset_split("test").images)
    assert torch.equal(images[..., 1:29, 1:29], raw)
    assert task.build_model().scores(task.puzzles(images).scrambled).shape == (10, 36, 36)


def test_batches_are_fresh_scrambles_drawn_from_the_generator():
    task = digits(images_per_batch=50)
    batches = task.train_batches(0, torch.Generator().manual_seed(0))
    assert len(batches) == 2
    first = list(batches)
    again = list(task.train_batches(0, torch.Generator().manual_seed(0)))
    other = list(task.train_batches(0, torch.Generator().manual_seed(1)))
    assert len(first) == 2 and all(len(b) == 2 for b in first)  # (scrambled, pieces): no perm
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0][0], other[0][0])


def test_shift_augmentation_draws_moved_images_from_the_generator():
    plain, moved = digits(images_per_batch=128), digits(images_per_batch=128, augment_shift=1)
    assert JigsawTask.from_config(moved.config()).augment_shift == 1

    def first_batch(task, seed=0):
        return next(iter(task.train_batches(0, torch.Generator().manual_seed(seed))))

    a, b = first_batch(moved), first_batch(moved)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))  # the same seed, the same
    assert not torch.equal(first_batch(plain)[1], a[1])  # the same images, moved


def test_metrics_count_swapped_identical_pieces_as_exact():
    task = digits()
    puzzles = task.puzzles(task.images("test"), torch.Generator().manual_seed(0))
    perfect = score(puzzles, puzzles.perm)
    assert all(perfect[k].eq(1).all() for k in ("kendall_tau", "prop_exact"))
    assert all(perfect[k].eq(0).all() for k in ("prop_wrong", "prop_any_wrong", "l1", "l2"))
    # A blank image: every piece is identical, any answer reconstructs it exactly.
    blank = puzzles._replace(
        scrambled=torch.zeros_like(puzzles.scrambled), pieces=torch.zeros_like(puzzles.pieces)
    )
    swapped = blank.perm.flip(-1)
    result = score(blank, swapped)
    assert result["prop_exact"].eq(1).all() and result["prop_wrong"].eq(1).all()


def test_loss_is_lowest_for_the_true_permutation():
    task = digits()
    puzzles = task.puzzles(task.images("train")[:8], torch.Generator().manual_seed(0))

    class Fixed(torch.nn.Module):
        def __init__(self, perm):
            super().__init__()
            self.P = torch.eye(4)[perm].float()

        def forward(self, x):
            return self.P

    right = task.loss(Fixed(puzzles.perm), (puzzles.scrambled, puzzles.pieces))
    wrong = task.loss(Fixed(puzzles.perm.roll(1, -1)), (puzzles.scrambled, puzzles.pieces))
    assert right.item() == 0 < wrong.item()


@needs_mnist
def test_a_short_training_run_learns_2x2_mnist(tmp_path):
    task = JigsawTask(
        grid=2,
        data_root=DATA_ROOT,
        train_size=4096,
        test_size=500,
        model={"d_model": 32, "n_context": 1},
    )
    history = fit(task, tmp_path, epochs=2, lr=3e-3, seed=0, progress=False)
    assert history[-1]["kendall_tau"] >= 0.9, history
    assert set(METRICS) <= set(history[-1])


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="dataset must be one of"):
        JigsawTask(dataset="cifar")
    with pytest.raises(ValueError, match="grid must be >= 2"):
        JigsawTask(dataset="digits", grid=1)
    with pytest.raises(ValueError, match="unknown model options"):
        JigsawTask(dataset="digits", model={"depth": 3})
    with pytest.raises(ValueError, match="augment_shift must be >= 0"):
        JigsawTask(dataset="digits", augment_shift=-1)
