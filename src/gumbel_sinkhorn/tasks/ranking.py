"""Ranking multi-digit MNIST numbers from the true order of the training sets alone.

>>> import torch
>>> task = RankingTask.create(
...     n=(3, 5), digits=2, items=12, steps_per_epoch=2, val_sets=8, val_n=(3,)
... )
>>> model = task.build_model()
>>> batches = task.train_batches(0, torch.Generator().manual_seed(0))
>>> [tuple(b.index.shape) for b in batches]          # the set size cycles through n
[(4, 3, 2), (2, 5, 2)]
>>> task.loss(model, batches[0]).item() > 0
True
>>> sorted(task.evaluate(model.eval()))
['val_elementwise_n3', 'val_exact_match_n3']

A :class:`gumbel_sinkhorn.nn.ranking.RankingNet` gives each set its ``log_alpha`` (rows: items,
columns: ranks). Training (``loss``): the "sinkhorn" and "classic" heads draw ``sampling.n_samples``
Gumbel-Sinkhorn samples ``log S((log_alpha + noise_factor G) / tau)`` (in log space, for the
cross-entropy), the "neuralsort" head uses its
deterministic relaxation as it is; the loss is the cross-entropy between that relaxed permutation
and the true one, ``-mean_i log P[i, rank_i]`` (``loss="permutation"``, the protocol's), or the
mean squared error between the pictures in true order and their reconstruction ``Pᵀx``
(``loss="reconstruction"``, the paper's). Test time: hard matching of ``log_alpha``, no noise.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch

from .. import _checks
from ..configs.ranking import LOSSES, RankingConfig
from ..data.multidigit import DigitSplit, compose, load_split, sample_sets
from ..nn.ranking import RankingNet
from ..ops import log_sinkhorn, matching, sample_gumbel
from .base import Task

__all__ = ["LOSSES", "METRICS", "RankingBatch", "RankingTask", "evaluate_sets", "predict_ranks",
           "score_ranks", "split"]  # fmt: skip

METRICS = ("exact_match", "elementwise")
_EVAL_CHUNK = 100  # sets scored at once in evaluation
_splits: dict[tuple[str, str | None], DigitSplit] = {}


class RankingBatch(NamedTuple):
    """Sets as digit-image indices into the training split ``(S, n, digits)``, true ranks, and
    each digit's (down, right) move in pixels ``(S, n, digits, 2)`` (None: no augmentation)."""

    index: torch.Tensor
    ranks: torch.Tensor
    shifts: torch.Tensor | None = None


def split(name: str, data_root: str | os.PathLike | None = None) -> DigitSplit:
    """The protocol's split ``name`` ("train", "val", "test"), read once per process and root."""
    root = os.fspath(data_root) if data_root is not None else None
    key = (name, root or os.environ.get("GUMBEL_SINKHORN_DATA"))
    if key not in _splits:
        _splits[key] = load_split(name, root=root)
    return _splits[key]


class RankingTask(Task):
    """Learn to rank sets of ``digits``-digit MNIST numbers (:class:`RankingConfig`).

    ``head``: "sinkhorn" (ours), "classic" or "neuralsort" (see :mod:`..nn.ranking`); ``cnn``
    "digit" (one CNN of ``width`` channels reads every digit), "places" (the same reader, each
    digit a latent symbol's value, one weight per place) or "protocol". Training sets hold
    ``n`` items, cycling through the sizes in ``n`` step by step (the classic head takes one
    size); a step holds about ``items`` items (``round(items / n)`` sets); with ``shift`` > 0
    every training digit is moved by a random translation of up to ``shift`` pixels (drawn from
    the batches' generator, so a seed and a resume give the same pictures). Gumbel-Sinkhorn:
    ``sampling``; NeuralSort's temperature is ``sampling.tau`` too. After each epoch,
    ``val_sets`` validation sets of each size in ``val_n`` (seed ``eval_seed``).
    The model returns ``log_alpha`` for every head (NeuralSort: its log relaxed permutation).
    """

    name = "ranking"
    Config = RankingConfig
    # the keys evaluate returns depend on val_n: val_<metric>_n<size>
    metrics = METRICS

    def __init__(self, config: RankingConfig, *, data_root: str | os.PathLike | None = None):
        super().__init__(config)
        self.data_root = data_root

    def metric_names(self) -> tuple[str, ...]:
        """The keys :meth:`evaluate` returns for this configuration."""
        return tuple(f"val_{m}_n{n}" for n in self.config.val_n for m in METRICS)

    def split(self, name: str) -> DigitSplit:
        return split(name, self.data_root)

    def build_model(self) -> RankingNet:
        cfg = self.config
        return RankingNet(
            cfg.head,
            cfg.digits,
            n=cfg.n[0] if cfg.head == "classic" else None,
            cnn=cfg.cnn,
            width=cfg.width,
            hidden=cfg.hidden,
            skip=cfg.skip,
            symbols=cfg.symbols,
            standardise=cfg.standardise,
            tau=cfg.sampling.tau,
        )

    def train_batches(self, epoch: int, generator: torch.Generator) -> list[RankingBatch]:
        """``steps_per_epoch`` batches of fresh training sets; step t has ``n[t % len(n)]`` items
        per set (counted from the run's first step, so every size gets its share)."""
        cfg = self.config
        data = self.split("train")
        batches = []
        for step in range(cfg.steps_per_epoch):
            n = cfg.n[(epoch * cfg.steps_per_epoch + step) % len(cfg.n)]
            sets = sample_sets(
                data, max(1, round(cfg.items / n)), n, cfg.digits, generator=generator
            )
            shifts = None
            if cfg.shift:
                shape = (*sets.index.shape, 2)
                shifts = torch.randint(-cfg.shift, cfg.shift + 1, shape, generator=generator)
            batches.append(RankingBatch(sets.index, sets.ranks, shifts))
        return batches

    def log_samples(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """``log`` of :meth:`sample`'s Gumbel-Sinkhorn samples, ``(n_samples, S, n, n)``, computed
        in log space (the cross-entropy needs log-probabilities that do not underflow)."""
        s = self.config.sampling
        shape = (s.n_samples, *log_alpha.shape)
        noise = sample_gumbel(shape, device=log_alpha.device, dtype=log_alpha.dtype)
        return log_sinkhorn(log_alpha + s.noise_factor * noise, n_iter=s.n_iter, tau=s.tau)

    def loss(self, model: torch.nn.Module, batch: RankingBatch) -> torch.Tensor:
        """Cross-entropy with the true permutation (or reconstruction error), see the module."""
        device = batch.index.device
        shifts = None if batch.shifts is None else batch.shifts.cpu()
        x = compose(self.split("train"), batch.index.cpu(), shifts=shifts).to(device)
        log_alpha = model(x)
        if self.config.head == "neuralsort":
            log_p = log_alpha.unsqueeze(0)
        else:
            log_p = self.log_samples(log_alpha)
        if self.config.loss_kind == "permutation":
            ranks = batch.ranks.expand(log_p.shape[:-1]).unsqueeze(-1)
            return -log_p.gather(-1, ranks).mean()
        flat = x.flatten(-2)  # (S, n, pixels)
        target = torch.empty_like(flat).scatter_(
            -2, batch.ranks.unsqueeze(-1).expand_as(flat), flat
        )  # target[s, rank of item i] = item i
        rebuilt = torch.einsum("...sij,sip->...sjp", log_p.exp(), flat)
        return (rebuilt - target).square().mean()

    def batch_size(self, batch: RankingBatch) -> int:
        return batch.index.shape[0]

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """Exact match and element-wise accuracy on ``val_sets`` validation sets per size."""
        cfg = self.config
        out = {}
        for n in cfg.val_n:
            metrics = self.evaluate_sets(model, "val", n, cfg.val_sets, cfg.eval_seed)
            out.update({f"val_{k}_n{n}": v for k, v in metrics.items()})
        return out

    def evaluate_sets(
        self, model: torch.nn.Module, split_name: str, n: int, n_sets: int, seed: int
    ) -> dict[str, float]:
        """:func:`evaluate_sets` with this task's digits and data."""
        return evaluate_sets(
            model, split_name, n, n_sets, self.config.digits, seed, data_root=self.data_root
        )


def predict_ranks(model: torch.nn.Module, pictures: torch.Tensor) -> torch.Tensor:
    """Each item's rank by hard matching of ``model``'s ``log_alpha`` (no noise).

    Shapes: ``(S, n, 28, W)`` pictures in, ``(S, n)`` int64 ranks out on the CPU (0 = smallest).
    Evaluated in chunks, without gradients.
    """
    device = next(model.parameters()).device
    with torch.no_grad():
        parts = [matching(model(p.to(device))).cpu() for p in pictures.split(_EVAL_CHUNK)]
    return torch.cat(parts)


def score_ranks(predicted: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """Exact match (sets ranked entirely right) and element-wise accuracy (items at their rank).

    >>> score_ranks(torch.tensor([[0, 1, 2], [0, 2, 1]]), torch.tensor([[0, 1, 2], [0, 1, 2]]))
    {'exact_match': 0.5, 'elementwise': 0.6666666666666666}
    """
    _checks.same_shape(predicted, true, "predicted and true ranks")
    right = predicted == true
    return {
        "exact_match": right.all(-1).double().mean().item(),
        "elementwise": right.double().mean().item(),
    }


def evaluate_sets(
    model: torch.nn.Module,
    split_name: str,
    n: int,
    n_sets: int,
    digits: int,
    seed: int,
    *,
    data_root: str | os.PathLike | None = None,
) -> dict[str, float]:
    """:func:`score_ranks` on ``n_sets`` sets of size ``n`` drawn from a split with ``seed``.

    The sets depend only on (split, n, n_sets, digits, seed): the same test sets on every run.
    """
    generator = torch.Generator().manual_seed(seed)
    data = split(split_name, data_root)
    sets = sample_sets(data, n_sets, n, digits, generator=generator)
    predicted = torch.cat(
        [predict_ranks(model, compose(data, part)) for part in sets.index.split(_EVAL_CHUNK)]
    )
    return score_ranks(predicted, sets.ranks)
