"""Jigsaw puzzles: a Sinkhorn network learns to unscramble images from the reconstruction alone.

>>> task = JigsawTask(dataset="digits", grid=2, train_size=256, test_size=64)
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

The loss is the mean squared error between Pᵀ·scrambled and the ordered pieces: the model never
sees the true permutation. Evaluation scrambles the whole test set with a fixed generator
(``eval_seed``) and solves every puzzle with hard matching.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from .. import _checks, metrics
from ..data import (
    FIT_MODES,
    NAMES,
    ImageDataset,
    fit_to_grid,
    load_dataset,
    make_puzzles,
    normalize,
    random_shift,
    unscramble,
)
from ..nn import SinkhornPieceNet

METRICS = ("kendall_tau", "prop_wrong", "prop_any_wrong", "l1", "l2", "prop_exact")

#: The tutorial's Sinkhorn network (REFERENCES §2): hidden 32, kernel 5, linear g2 without bias.
TUTORIAL_MODEL = {
    "hidden": 32,
    "kernel": 5,
    "n_conv": 1,
    "pool": True,
    "g2_bias": False,
    "n_context": 0,
    "tau": 0.1,
    "n_iter": 20,
    "n_samples": 1,
    "noise_factor": 1.0,
    "input_power": None,
}
#: Ours (the shipped 3x3 model): two small convs in g1 at full resolution, which also see the
#: pixels**0.25 (faint strokes), then transformer layers so that pieces see each other before g2.
DEFAULT_MODEL = {
    "hidden": 16,
    "kernel": 3,
    "n_conv": 2,
    "pool": False,
    "g2_bias": True,
    "n_context": 3,
    "d_model": 64,
    "n_heads": 4,
    "tau": 1.0,
    "n_iter": 20,
    "n_samples": 1,
    "noise_factor": 1.0,
    "input_power": 0.25,
}


@dataclasses.dataclass
class JigsawTask:
    """Puzzles cut from an image dataset, scored by a :class:`SinkhornPieceNet`.

    ``dataset``: "mnist", "fashion-mnist", "digits" (embedded, 8×8, no download) or a folder of
    images. ``grid``: pieces per side. ``train_size`` / ``test_size``: use only the first images.
    ``model``: keyword options of :class:`SinkhornPieceNet` (defaults: ``DEFAULT_MODEL``).
    ``augment_shift``: move every training image by a random offset of up to this many pixels
    (a new one each time it is drawn), so the network sees more than the training set's digits.
    ``image_shape``, ``mean``, ``std``: filled in from the data when not given, so that a saved
    config rebuilds the model without the data. ``init_weights``: start training from these
    weights (a shipped name, weights file or run folder).
    """

    dataset: str = "mnist"
    grid: int = 3
    data_root: str | None = None
    fit: str = "pad"
    image_size: int | None = None
    images_per_batch: int = 64
    train_size: int | None = None
    test_size: int | None = None
    eval_seed: int = 1234
    loss_exponent: float = 1.0
    augment_shift: int = 0
    model: dict[str, Any] = dataclasses.field(default_factory=dict)
    image_shape: list[int] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    init_weights: str | None = dataclasses.field(default=None, compare=False)

    name = "jigsaw"

    def __post_init__(self):
        self.grid = _checks.count(self.grid, "grid", minimum=2)
        self.images_per_batch = _checks.count(self.images_per_batch, "images_per_batch")
        self.loss_exponent = _checks.positive(self.loss_exponent, "loss_exponent")
        self.augment_shift = _checks.count(self.augment_shift, "augment_shift", minimum=0)
        for size in ("train_size", "test_size"):
            if getattr(self, size) is not None:
                _checks.count(getattr(self, size), size)
        if self.dataset not in NAMES and not Path(self.dataset).is_dir():
            raise ValueError(
                f"dataset must be one of {NAMES} or a folder of images, got {self.dataset!r}"
            )
        if self.fit not in FIT_MODES:
            raise ValueError(f"fit must be one of {FIT_MODES}, got {self.fit!r}")
        unknown = set(self.model) - set(DEFAULT_MODEL) - {"hidden"}
        if unknown:
            raise ValueError(
                f"unknown model options {sorted(unknown)}; known: {sorted(DEFAULT_MODEL)}"
            )
        self.model = {**DEFAULT_MODEL, **self.model}
        self._data: dict[str, ImageDataset] = {}
        self._images: dict[str, torch.Tensor] = {}
        if None in (self.image_shape, self.mean, self.std):  # from the data, once: then in config
            data = self.dataset_split("test")
            fitted = fit_to_grid(data.images[:1], self.grid, mode=self.fit)
            self.image_shape = list(fitted.shape[1:])
            self.mean, self.std = list(data.mean), list(data.std)
        self.image_shape = [int(v) for v in self.image_shape]
        height, width = self.image_shape[1:]
        if min(height, width) < 2 * self.grid:
            raise ValueError(
                f"a {self.grid}x{self.grid} grid leaves pieces of {height // self.grid}x"
                f"{width // self.grid} pixels ({height}x{width} images once fitted to the grid): "
                "pieces of at least 2x2 pixels are needed (a smaller grid or larger images)"
            )
        self.mean, self.std = [float(v) for v in self.mean], [float(v) for v in self.std]

    # -- the Task protocol -------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The options that define the experiment (``init_weights``, a starting point, is not)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.compare}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> JigsawTask:
        # a config saved before input_power existed describes a network without it
        model = {"input_power": None, **config.get("model", {})}
        return cls(**{**config, "model": model})

    def build_model(self) -> SinkhornPieceNet:
        """A fresh network, or one starting from ``init_weights`` (a warm start).

        The warm start may lack some of this model's parts (more context layers, the
        ``input_power`` channels; the rest the same): they start neutral, so training resumes
        from the same scores.
        """
        channels, height, width = self.image_shape
        model = SinkhornPieceNet(
            self.grid**2,
            (height // self.grid, width // self.grid),
            channels,
            **self.model,
            pixel_mean=self.mean,
            pixel_std=self.std,
        )
        if self.init_weights is not None:
            from ..pretrained import load_model

            start = load_model(self.init_weights)[1]
            try:
                model.load_smaller(start)
            except ValueError as err:
                raise ValueError(
                    f"init weights {self.init_weights} do not fit this model (same grid and model "
                    f"options needed, more context layers or input_power allowed): {err}"
                ) from err
        return model

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
        P = model(scrambled)  # (B, N, N) or (n_samples, B, N, N)
        if self.loss_exponent != 1:
            scrambled, pieces = (
                self.denormalize(x).clamp(0, 1).pow(self.loss_exponent) for x in (scrambled, pieces)
            )
        reconstruction = P.transpose(-1, -2) @ scrambled.flatten(2)
        return (reconstruction - pieces.flatten(2)).pow(2).mean()

    def batch_size(self, batch: tuple) -> int:
        return len(batch[0])

    def evaluate(self, model: SinkhornPieceNet, *, batch_size: int = 1000) -> dict[str, float]:
        """The metrics over the whole test set, solved with hard matching (means per puzzle)."""
        return summarize(self.solve_test_set(model, batch_size=batch_size))

    # -- helpers -------------------------------------------------------------------------------

    def dataset_split(self, split: str) -> ImageDataset:
        """The dataset's ``split`` ("train" / "test"): its first ``train_size`` / ``test_size``."""
        if split not in self._data:
            data = load_dataset(self.dataset, split, root=self.data_root, size=self.image_size)
            limit = self.train_size if split == "train" else self.test_size
            if limit is not None:
                data = dataclasses.replace(
                    data,
                    images=data.images[:limit],
                    labels=None if data.labels is None else data.labels[:limit],
                )
            self._data[split] = data
        return self._data[split]

    def images(self, split: str) -> torch.Tensor:
        """Normalised float images ``(N, C, H, W)``, padded / cropped to the grid (cached)."""
        if split not in self._images:
            data = self.dataset_split(split)
            fitted = fit_to_grid(data.images, self.grid, mode=self.fit)  # uint8: pads with 0
            self._images[split] = self.normalize(fitted)
        return self._images[split]

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images ``(..., C, H, W)`` -> the model's input scale."""
        return normalize(images, self.mean, self.std)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """The model's input scale -> pixels in [0, 1]."""
        shape = (-1, 1, 1)
        mean = torch.tensor(self.mean, dtype=x.dtype).reshape(shape)
        return x * torch.tensor(self.std, dtype=x.dtype).reshape(shape) + mean

    def puzzles(self, images: torch.Tensor, generator: torch.Generator | None = None):
        """Cut ``images`` (already fitted to the grid) into scrambled puzzles."""
        return make_puzzles(images, self.grid, generator=generator)

    @torch.no_grad()
    def solve_test_set(self, model: SinkhornPieceNet, *, batch_size: int = 1000) -> dict:
        """Per-puzzle metrics on the whole test set, plus the puzzles and solutions themselves."""
        images = self.images("test")
        puzzles = self.puzzles(images, torch.Generator().manual_seed(self.eval_seed))
        device = next(model.parameters()).device
        perms = [
            model.solve(chunk.to(device)).cpu() for chunk in puzzles.scrambled.split(batch_size)
        ]
        perm = torch.cat(perms)
        return {"puzzles": puzzles, "perm_pred": perm, **self.score(puzzles, perm)}

    def score(self, puzzles, perm_pred: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-puzzle metrics of ``perm_pred`` ``(B, N)``; l1 and l2 on pixels in [0, 1]."""
        return score(puzzles, perm_pred, self.denormalize)


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
        self.images = task.images("train")
        self.size = min(task.images_per_batch, len(self.images))

    def __len__(self) -> int:
        return len(self.images) // self.size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.images), generator=self.generator)
        for start in range(0, len(self) * self.size, self.size):
            batch = self.images[order[start : start + self.size]]
            batch = random_shift(batch, self.task.augment_shift, self.generator)
            puzzles = self.task.puzzles(batch, self.generator)
            yield puzzles.scrambled, puzzles.pieces
