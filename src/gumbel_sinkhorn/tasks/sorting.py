"""Sorting numbers: a Sinkhorn network learns to sort lists, seeing only the sorted lists.

>>> import torch
>>> task = SortingTask(n=5, steps_per_epoch=2, eval_lists=50)
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

import dataclasses
from typing import Any

import torch

from .. import _checks, metrics
from ..data.numbers import Distribution, NumberLists, sample_lists
from ..nn.sorting import AnchorSortingNet, SortingMLP, standardize
from ..ops import gumbel_sinkhorn, invert_permutation, matching

MODELS = ("anchors", "mlp")
METRICS = ("prop_wrong", "prop_any_wrong", "kendall_tau")

# Lists scored at once in evaluation: bounds the (chunk, n, n) float64 score tensor.
_EVAL_CHUNK = 256


def _distribution(value) -> Distribution:
    if isinstance(value, Distribution):
        return value
    if isinstance(value, dict):
        return Distribution(**value)
    raise TypeError(f"expected a Distribution or a dict of its fields, got {type(value).__name__}")


@dataclasses.dataclass
class SortingTask:
    """Learn to sort lists of ``n`` numbers.

    ``model``: "anchors" (:class:`AnchorSortingNet`, ours) or "mlp" (:class:`SortingMLP`, the
    authors' network with ``hidden`` units; ``standardize=False`` is their original).
    ``tau``, ``n_iter``, ``n_samples``, ``noise_factor``: the Gumbel-Sinkhorn samples of the loss.
    ``batch`` lists per step, ``steps_per_epoch`` steps per epoch, lists drawn from ``train``;
    evaluation on ``eval_lists`` lists from ``test`` drawn with seed ``eval_seed``.
    """

    n: int = 100
    model: str = "anchors"
    hidden: int = 32
    standardize: bool = True
    tau: float = 1.0
    n_iter: int = 10
    n_samples: int = 5
    noise_factor: float = 1.0
    batch: int = 10
    steps_per_epoch: int = 100
    train: Distribution = dataclasses.field(default_factory=Distribution)
    test: Distribution = dataclasses.field(default_factory=Distribution)
    eval_lists: int = 1000
    eval_seed: int = 1234

    name = "sorting"

    def __post_init__(self):
        self.n = _checks.count(self.n, "n (numbers per list)", minimum=2)
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        self.hidden = _checks.count(self.hidden, "hidden")
        self.standardize = bool(self.standardize)
        self.tau = _checks.positive(self.tau, "tau")
        self.n_iter = _checks.count(self.n_iter, "n_iter")
        self.n_samples = _checks.count(self.n_samples, "n_samples")
        self.noise_factor = _checks.non_negative(self.noise_factor, "noise_factor")
        self.batch = _checks.count(self.batch, "batch")
        self.steps_per_epoch = _checks.count(self.steps_per_epoch, "steps_per_epoch")
        self.train, self.test = _distribution(self.train), _distribution(self.test)
        self.eval_lists = _checks.count(self.eval_lists, "eval_lists")
        self.eval_seed = _checks.count(self.eval_seed, "eval_seed", minimum=0)

    # -- the Task protocol -------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SortingTask:
        return cls(**config)

    def build_model(self) -> torch.nn.Module:
        if self.model == "anchors":
            return AnchorSortingNet(self.n)
        return SortingMLP(self.n, self.hidden, standardize=self.standardize)

    def train_batches(self, epoch: int, generator: torch.Generator) -> list[NumberLists]:
        """``steps_per_epoch`` batches of ``batch`` fresh lists from ``train``."""
        return [
            sample_lists(self.batch, self.n, self.train, generator=generator)
            for _ in range(self.steps_per_epoch)
        ]

    def loss(self, model: torch.nn.Module, batch: NumberLists) -> torch.Tensor:
        """Mean squared error between the sorted lists and Pᵀx over Gumbel-Sinkhorn samples P."""
        z, z_sorted = standardize(batch.random).float(), standardize(batch.ordered).float()
        P = gumbel_sinkhorn(
            model(batch.random).float(),
            self.tau,
            self.n_iter,
            n_samples=self.n_samples,
            noise_factor=self.noise_factor,
        )
        if self.n_samples == 1:
            P = P.unsqueeze(0)
        reconstruction = torch.einsum("sbij,bi->sbj", P, z)  # (samples, batch, n): Pᵀx
        return (reconstruction - z_sorted).square().mean()

    def batch_size(self, batch: NumberLists) -> int:
        return batch.random.shape[0]

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """Prop. wrong, prop. any wrong and Kendall tau on held-out lists from ``test``."""
        generator = torch.Generator().manual_seed(self.eval_seed)
        lists = sample_lists(self.eval_lists, self.n, self.test, generator=generator)
        return score(predict_positions(model, lists.random), lists)


def predict_positions(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Hard matching of ``model``'s scores without noise: the predicted position of every number.

    Shapes: ``(B, n)`` lists in, ``(B, n)`` int64 out on the CPU (``out[b, i]`` = the position
    of ``x[b, i]`` in the sorted list). Evaluated in chunks, without gradients.
    """
    device = next(model.parameters()).device
    with torch.no_grad():
        chunks = [matching(model(part.to(device))).cpu() for part in x.split(_EVAL_CHUNK)]
    return torch.cat(chunks)


def score(positions: torch.Tensor, lists: NumberLists) -> dict[str, float]:
    """The paper's metrics, averaged over the lists, for predicted positions of each number."""
    true = invert_permutation(lists.perm)
    return {name: getattr(metrics, name)(positions, true).mean().item() for name in METRICS}
