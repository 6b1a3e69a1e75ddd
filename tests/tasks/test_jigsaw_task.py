import json
import os

import pytest
import torch

from gumbel_sinkhorn.configs import SamplingConfig
from gumbel_sinkhorn.configs.jigsaw import PRESETS, JigsawConfig
from gumbel_sinkhorn.errors import InvalidValueError
from gumbel_sinkhorn.tasks.jigsaw import METRICS, JigsawTask, score
from gumbel_sinkhorn.train import fit

DATA_ROOT = os.environ.get("GUMBEL_SINKHORN_DATA")
needs_mnist = pytest.mark.skipif(not DATA_ROOT, reason="GUMBEL_SINKHORN_DATA is not set")


def digits(**options):
    return JigsawTask.create(dataset="digits", grid=2, train_size=128, test_size=32, **options)


def test_config_round_trips_through_json():
    task = digits(model=PRESETS["ours"].replace(n_context=1, d_model=16))
    config = json.loads(json.dumps(task.config.to_dict()))
    again = JigsawTask.from_config(config)
    assert again.config == task.config
    # read from the data once, then kept: a saved config rebuilds the model without the data
    assert again.config.image_shape == (1, 8, 8) and again.config.model.n_context == 1
    assert len(again.config.mean) == len(again.config.std) == 1


def test_configs_of_earlier_releases_still_load():
    task = digits(sampling=SamplingConfig(tau=0.5, n_samples=2), batch_size=50)
    new = task.config.to_dict()
    # as an earlier release stored it: sampling inside the model options, images_per_batch,
    # and where the data was
    old = {k: v for k, v in new.items() if k not in ("sampling", "batch_size")}
    old |= {"model": {**new["model"], **new["sampling"]}, "images_per_batch": 50,
            "data_root": "/somewhere"}  # fmt: skip
    assert JigsawTask.from_config(old).config == task.config


@needs_mnist
def test_mnist_is_padded_to_the_grid_without_losing_a_pixel():
    task = JigsawTask(JigsawConfig(grid=6, test_size=10), data_root=DATA_ROOT)
    assert task.config.image_shape == (1, 30, 30)
    images = task.images.split("test")
    assert images.shape == (10, 1, 30, 30)
    raw = task.images.normalize(task.images.dataset("test").images)
    assert torch.equal(images[..., 1:29, 1:29], raw)
    assert task.build_model()(task.puzzles(images).scrambled).shape == (10, 36, 36)


def test_batches_are_fresh_scrambles_drawn_from_the_generator():
    task = digits(batch_size=50)
    batches = task.train_batches(0, torch.Generator().manual_seed(0))
    assert len(batches) == 2
    first = list(batches)
    again = list(task.train_batches(0, torch.Generator().manual_seed(0)))
    other = list(task.train_batches(0, torch.Generator().manual_seed(1)))
    assert len(first) == 2 and all(len(b) == 2 for b in first)  # (scrambled, pieces): no perm
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0][0], other[0][0])


def test_shift_augmentation_draws_moved_images_from_the_generator():
    plain, moved = digits(batch_size=128), digits(batch_size=128, augment_shift=1)
    assert JigsawTask.from_config(moved.config.to_dict()).config.augment_shift == 1

    def first_batch(task, seed=0):
        return next(iter(task.train_batches(0, torch.Generator().manual_seed(seed))))

    a, b = first_batch(moved), first_batch(moved)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))  # the same seed, the same
    assert not torch.equal(first_batch(plain)[1], a[1])  # the same images, moved


def test_metrics_count_swapped_identical_pieces_as_exact():
    task = digits()
    puzzles = task.puzzles(task.images.split("test"), torch.Generator().manual_seed(0))
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


@pytest.mark.parametrize("n_samples", [1, 3])
def test_loss_is_lowest_for_the_true_permutation(n_samples):
    # the task samples the network's scores (with Gumbel noise, as in training): scores this
    # confident give the permutation itself, whatever the noise
    task = digits(sampling=SamplingConfig(tau=1.0, n_samples=n_samples))
    puzzles = task.puzzles(task.images.split("train")[:8], torch.Generator().manual_seed(0))

    class Fixed(torch.nn.Module):
        """Scores (log_alpha) that put piece i at perm[i], with great confidence."""

        def __init__(self, perm):
            super().__init__()
            self.log_alpha = 1000 * torch.eye(4)[perm].float()

        def forward(self, x):
            return self.log_alpha

    right = task.loss(Fixed(puzzles.perm), (puzzles.scrambled, puzzles.pieces))
    wrong = task.loss(Fixed(puzzles.perm.roll(1, -1)), (puzzles.scrambled, puzzles.pieces))
    assert right.item() == 0 < wrong.item()


@needs_mnist
def test_a_short_training_run_learns_2x2_mnist(tmp_path):
    config = JigsawConfig(
        grid=2,
        train_size=4096,
        test_size=500,
        model=PRESETS["ours"].replace(d_model=32, n_context=1),
    )
    task = JigsawTask(config, data_root=DATA_ROOT)
    history = fit(task, tmp_path, epochs=2, lr=3e-3, seed=0, progress=False).history
    assert history[-1]["kendall_tau"] >= 0.9, history
    assert set(METRICS) <= set(history[-1])


def test_bad_options_are_clear_errors():
    with pytest.raises(InvalidValueError, match="dataset must be one of"):
        JigsawTask.create(dataset="cifar")
    with pytest.raises(InvalidValueError, match="grid must be an integer >= 2"):
        JigsawTask.create(dataset="digits", grid=1)
    with pytest.raises(InvalidValueError, match=r"unknown PieceNetConfig options \['depth'\]"):
        JigsawTask.from_config({"dataset": "digits", "model": {"depth": 3}})
    with pytest.raises(InvalidValueError, match="augment_shift must be an integer >= 0"):
        JigsawTask.create(dataset="digits", augment_shift=-1)
    with pytest.raises(InvalidValueError, match="needs a JigsawConfig"):
        JigsawTask({"dataset": "digits"})
