"""The images of a jigsaw experiment: a dataset's split fitted to the grid and normalised.

>>> from gumbel_sinkhorn.configs.jigsaw import JigsawConfig
>>> images = JigsawImages(JigsawConfig(dataset="digits", grid=2, test_size=10))
>>> images.config.image_shape, tuple(images.split("test").shape)
((1, 8, 8), (10, 1, 8, 8))
>>> torch.allclose(images.denormalize(images.split("test")).mul(255).round(),
...                images.dataset("test").images.float())
True
"""

from __future__ import annotations

import dataclasses
import os

import torch

from ..configs.jigsaw import JigsawConfig
from .datasets import ImageDataset, denormalize, load_dataset, normalize
from .puzzles import fit_to_grid


class JigsawImages:
    """Loads (once) and prepares the images that a :class:`JigsawConfig` describes.

    ``config.image_shape``, ``mean`` and ``std`` are filled in from the test split when missing
    (:attr:`config` is then the completed configuration). ``root``: where the dataset files are
    (default: ``$GUMBEL_SINKHORN_DATA``, the user cache, else a download).
    """

    def __init__(self, config: JigsawConfig, root: str | os.PathLike | None = None):
        self.root = root
        self._datasets: dict[str, ImageDataset] = {}
        self._fitted: dict[str, torch.Tensor] = {}
        if None in (config.image_shape, config.mean, config.std):
            self.config = config  # what dataset() needs
            data = self.dataset("test")
            shape = fit_to_grid(data.images[:1], config.grid, mode=config.fit).shape[1:]
            config = config.replace(image_shape=tuple(shape), mean=data.mean, std=data.std)
        self.config = config

    def dataset(self, split: str) -> ImageDataset:
        """The dataset's ``split`` ("train" / "test"), its first ``train_size`` / ``test_size``."""
        if split not in self._datasets:
            cfg = self.config
            data = load_dataset(cfg.dataset, split, root=self.root, size=cfg.image_size)
            limit = cfg.train_size if split == "train" else cfg.test_size
            if limit is not None:
                labels = None if data.labels is None else data.labels[:limit]
                data = dataclasses.replace(data, images=data.images[:limit], labels=labels)
            self._datasets[split] = data
        return self._datasets[split]

    def split(self, split: str) -> torch.Tensor:
        """Normalised float images ``(n, C, H, W)`` of ``split``, fitted to the grid (cached)."""
        if split not in self._fitted:
            images = self.dataset(split).images
            self._fitted[split] = self.normalize(self.fit(images))
        return self._fitted[split]

    def fit(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images fitted to the grid as in training (padding uint8 adds background)."""
        return fit_to_grid(images, self.config.grid, mode=self.config.fit)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images ``(..., C, H, W)`` -> the model's input scale."""
        return normalize(images, self.config.mean, self.config.std)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """The model's input scale -> pixels in [0, 1]."""
        return denormalize(x, self.config.mean, self.config.std)
