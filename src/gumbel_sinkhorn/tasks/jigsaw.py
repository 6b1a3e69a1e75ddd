"""Jigsaw puzzles: a Sinkhorn network learns to unscramble images from the reconstruction alone.

>>> task = JigsawTask.create(dataset="digits", grid=2, train_size=256, test_size=64)
>>> model = task.build_model()
>>> batch = next(iter(task.train_batches(0, torch.Generator().manual_seed(0))))
>>> task.loss(model, batch).item() > 0
True
>>> sorted(task.evaluate(model.eval()))
['kendall_tau', 'l1', 'l2', 'prop_any_wrong', 'prop_exact', 'prop_wrong']

Images whose side is not a multiple of the grid are padded with background (``fit="pad"``):
MNIST's 28×28 becomes 30×30 for 3×3, 5×5 and 6×6 grids (pieces of 10, 6 and 5 pixels) and stays
28×28 for 2×2 and 4×4 (14 and 7). MNIST's digits sit in the central 20×20, so the padding only adds
blank border and no pixel is lost. Pixel values are scaled to [0, 1]; the loss and the l1 / l2
metrics are on that scale.

The loss is the mean squared error between Pᵀ·scrambled and the ordered pieces, P a
Gumbel-Sinkhorn sample of the network's scores: the model never sees the true permutation.
Evaluation scrambles the whole test set with a fixed generator (``eval_seed``) and solves every
puzzle with hard matching.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch

from .. import metrics
from ..configs.jigsaw import JigsawConfig
from ..data import make_puzzles, random_shift, unscramble
from ..data.jigsaw import JigsawImages
from ..nn import SinkhornPieceNet
from .base import Task

METRICS = ("kendall_tau", "prop_wrong", "prop_any_wrong", "l1", "l2", "prop_exact")


class JigsawTask(Task):
    """Puzzles cut from an image dataset (:class:`JigsawConfig`), scored by a
    :class:`SinkhornPieceNet`.

    ``data_root``: where the dataset files are (default: ``$GUMBEL_SINKHORN_DATA``, the user
    cache, else a download). The configuration's ``image_shape``, ``mean`` and ``std`` are read
    from the data when missing (:attr:`config` is the completed one), so that a saved config
    rebuilds the model without the data.
    """

    name = "jigsaw"
    Config = JigsawConfig
    metrics = METRICS

    def __init__(self, config: JigsawConfig, *, data_root: str | os.PathLike | None = None):
        super().__init__(config)
        self.images = JigsawImages(config, data_root)
        self.config: JigsawConfig = self.images.config

    def build_model(self) -> SinkhornPieceNet:
        channels, height, width = self.config.image_shape
        grid = self.config.grid
        return SinkhornPieceNet(
            grid**2,
            (height // grid, width // grid),
            channels,
            self.config.model,
            pixel_mean=self.config.mean,
            pixel_std=self.config.std,
        )

    def train_batches(self, epoch: int, generator: torch.Generator) -> _Batches:
        """One epoch of shuffled batches ``(scrambled, pieces)``, freshly scrambled (full only)."""
        return _Batches(self, generator)

    def loss(self, model: SinkhornPieceNet, batch: tuple) -> torch.Tensor:
        """Mean squared error of the soft reconstruction Pᵀ·scrambled (averaged over samples).

        With ``loss_exponent`` e != 1 the reconstructed quantity is each piece's pixels in
        [0, 1] raised to the power e (still only a reconstruction: Pᵀ applied to the scrambled
        pieces' pixels): e < 1 lifts faint strokes, so misplacing a piece that holds only a few
        faint pixels is no longer almost free.
        """
        scrambled, pieces = batch
        P = self.sample(model(scrambled))  # (n_samples, B, N, N)
        exponent = self.config.loss_exponent
        if exponent != 1:
            scrambled, pieces = (
                self.images.denormalize(x).clamp(0, 1).pow(exponent) for x in (scrambled, pieces)
            )
        reconstruction = P.transpose(-1, -2) @ scrambled.flatten(2)
        return (reconstruction - pieces.flatten(2)).pow(2).mean()

    def evaluate(self, model: SinkhornPieceNet) -> dict[str, float]:
        """The metrics over the whole test set, solved with hard matching (means per puzzle)."""
        return summarize(self.solve_test_set(model))

    def puzzles(self, images: torch.Tensor, generator: torch.Generator | None = None):
        """Cut ``images`` (already fitted to the grid) into scrambled puzzles."""
        return make_puzzles(images, self.config.grid, generator=generator)

    @torch.no_grad()
    def solve_test_set(self, model: SinkhornPieceNet, *, chunk_size: int = 1000) -> dict:
        """Per-puzzle metrics on the whole test set, plus the puzzles and solutions themselves."""
        generator = torch.Generator().manual_seed(self.config.eval_seed)
        puzzles = self.puzzles(self.images.split("test"), generator)
        perm = self.predict(model, puzzles.scrambled, chunk_size=chunk_size)
        return {"puzzles": puzzles, "perm_pred": perm, **self.score(puzzles, perm)}

    def score(self, puzzles, perm_pred: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-puzzle metrics of ``perm_pred`` ``(B, N)``; l1 and l2 on pixels in [0, 1]."""
        return score(puzzles, perm_pred, self.images.denormalize)


def score(puzzles, perm_pred: torch.Tensor, to_pixels=lambda x: x) -> dict[str, torch.Tensor]:
    """Per-puzzle metrics of the predicted permutations ``perm_pred`` (``(B, N)``).

    ``to_pixels`` maps pieces to the scale of the l1 and l2 errors.
    """
    solved = unscramble(puzzles.scrambled, perm_pred)
    pixels, original = to_pixels(solved), to_pixels(puzzles.pieces)
    return {
        "kendall_tau": metrics.kendall_tau(perm_pred, puzzles.perm),
        "prop_wrong": metrics.prop_wrong(perm_pred, puzzles.perm),
        "prop_any_wrong": metrics.prop_any_wrong(perm_pred, puzzles.perm),
        "l1": metrics.l1_error(pixels, original),
        "l2": metrics.l2_error(pixels, original),
        "prop_exact": (solved == puzzles.pieces).flatten(1).all(1).float(),
    }


def summarize(per_puzzle: dict) -> dict[str, float]:
    """Means of the per-puzzle metrics, as plain floats keyed by ``METRICS``."""
    return {key: float(per_puzzle[key].mean()) for key in METRICS}


class _Batches:
    """An epoch of puzzles, with a length for the progress bar."""

    def __init__(self, task: JigsawTask, generator: torch.Generator):
        self.task, self.generator = task, generator
        self.images = task.images.split("train")
        self.size = min(task.config.batch_size, len(self.images))

    def __len__(self) -> int:
        return len(self.images) // self.size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.images), generator=self.generator)
        shift = self.task.config.augment_shift
        for start in range(0, len(self) * self.size, self.size):
            batch = self.images[order[start : start + self.size]]
            batch = random_shift(batch, shift, self.generator)
            puzzles = self.task.puzzles(batch, self.generator)
            yield puzzles.scrambled, puzzles.pieces
