"""Sorting numbers: a Sinkhorn network learns to sort lists, seeing only the sorted lists.

>>> import torch
>>> task = SortingTask.create(n=5, steps_per_epoch=2, eval_lists=50)
>>> model = task.build_model()
>>> batch = task.train_batches(0, torch.Generator().manual_seed(0))[0]
>>> task.loss(model, batch).item() > 0
True
>>> sorted(task.evaluate(model.eval()))
['kendall_tau', 'prop_any_wrong', 'prop_wrong']

Training draws fresh lists from ``train`` (default U(0, 1)) every step. The loss is the mean squared
error between the sorted list and its reconstruction Pᵀx, averaged over ``n_samples``
Gumbel-Sinkhorn samples P, as in the authors' code; the permutation itself is never used. Both
lists are standardised first (the networks see standardised lists too), so the loss is the
authors' divided by each list's variance and reads the same for any range. Evaluation draws
``eval_lists`` held-out lists from ``test`` with a fixed generator (``eval_seed``) and sorts them by
hard matching, without noise.
"""

from __future__ import annotations

import torch

from .. import metrics
from ..configs.sorting import SortingConfig
from ..data.numbers import NumberLists, sample_lists
from ..nn.sorting import AnchorSortingNet, SortingMLP, standardize
from .base import Task

METRICS = ("prop_wrong", "prop_any_wrong", "kendall_tau")
# Lists scored at once in evaluation: bounds the (chunk, n, n) float64 score tensor.
_EVAL_CHUNK = 256


class SortingTask(Task):
    """Learn to sort lists of ``n`` numbers (:class:`SortingConfig`).

    ``model.kind``: "anchors" (:class:`AnchorSortingNet`, ours) or "mlp" (:class:`SortingMLP`,
    the authors' network with ``hidden`` units; ``standardize=False`` is their original).
    ``sampling``: the Gumbel-Sinkhorn samples of the loss. ``batch_size`` lists per step,
    ``steps_per_epoch`` steps per epoch, lists drawn from ``train``; evaluation on
    ``eval_lists`` lists from ``test`` drawn with seed ``eval_seed``.
    """

    name = "sorting"
    Config = SortingConfig
    metrics = METRICS

    def build_model(self) -> torch.nn.Module:
        cfg = self.config
        if cfg.model.kind == "anchors":
            return AnchorSortingNet(cfg.n)
        return SortingMLP(cfg.n, cfg.model.hidden, standardize=cfg.model.standardize)

    def train_batches(self, epoch: int, generator: torch.Generator) -> list[NumberLists]:
        """``steps_per_epoch`` batches of ``batch_size`` fresh lists from ``train``."""
        cfg = self.config
        return [
            sample_lists(cfg.batch_size, cfg.n, cfg.train, generator=generator)
            for _ in range(cfg.steps_per_epoch)
        ]

    def loss(self, model: torch.nn.Module, batch: NumberLists) -> torch.Tensor:
        """Mean squared error between the sorted lists and Pᵀx over Gumbel-Sinkhorn samples P."""
        z, z_sorted = standardize(batch.random).float(), standardize(batch.ordered).float()
        P = self.sample(model(batch.random).float())
        reconstruction = torch.einsum("sbij,bi->sbj", P, z)  # (samples, batch, n): Pᵀx
        return (reconstruction - z_sorted).square().mean()

    def batch_size(self, batch: NumberLists) -> int:
        return batch.random.shape[0]

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """Prop. wrong, prop. any wrong and Kendall tau on held-out lists from ``test``."""
        cfg = self.config
        generator = torch.Generator().manual_seed(cfg.eval_seed)
        lists = sample_lists(cfg.eval_lists, cfg.n, cfg.test, generator=generator)
        return score(self.predict(model, lists.random, chunk_size=_EVAL_CHUNK), lists)


def score(positions: torch.Tensor, lists: NumberLists) -> dict[str, float]:
    """The paper's metrics, averaged over the lists, for predicted positions of each number."""
    true = lists.positions
    return {name: getattr(metrics, name)(positions, true).mean().item() for name in METRICS}
