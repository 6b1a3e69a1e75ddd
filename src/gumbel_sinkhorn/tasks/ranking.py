"""Ranking multi-digit MNIST numbers from the true order of the training sets alone.

>>> import torch
>>> task = RankingTask(n=(3, 5), digits=2, items=12, steps_per_epoch=2, val_sets=8, val_n=(3,))
>>> model = task.build_model()
>>> batches = task.train_batches(0, torch.Generator().manual_seed(0))
>>> [tuple(b.index.shape) for b in batches]          # the set size cycles through n
[(4, 3, 2), (2, 5, 2)]
>>> task.loss(model, batches[0]).item() > 0
True
>>> sorted(task.evaluate(model.eval()))
['val_elementwise_n3', 'val_exact_match_n3']

A :class:`gumbel_sinkhorn.nn.ranking.RankingNet` gives each set its ``log_alpha`` (rows: items,
columns: ranks). Training (``loss``): the "sinkhorn" and "classic" heads draw ``n_samples``
Gumbel-Sinkhorn samples ``log S((log_alpha + G) / tau)``, the "neuralsort" head uses its
deterministic relaxation as it is; the loss is the cross-entropy between that relaxed permutation
and the true one, ``-mean_i log P[i, rank_i]`` (``loss="permutation"``, the protocol's), or the
mean squared error between the pictures in true order and their reconstruction ``Pᵀx``
(``loss="reconstruction"``, the paper's). Test time: hard matching of ``log_alpha``, no noise.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .. import _checks, checkpoint
from ..data.multidigit import DigitSplit, compose, load_split, sample_sets
from ..nn.ranking import HEADS, RankingNet
from ..ops import log_sinkhorn, matching, sample_gumbel

LOSSES = ("permutation", "reconstruction")
METRICS = ("exact_match", "elementwise")
_EVAL_CHUNK = 100  # sets scored at once in evaluation
WEIGHTS_DIR = Path(__file__).parent.parent / "weights"  # the shipped weights files
_splits: dict[tuple[str, str | None], DigitSplit] = {}


class RankingBatch(NamedTuple):
    """Sets as digit-image indices into the training split ``(S, n, digits)`` and true ranks."""

    index: torch.Tensor
    ranks: torch.Tensor


def split(name: str) -> DigitSplit:
    """The protocol's split ``name`` ("train", "val", "test"), read once per process."""
    key = (name, os.environ.get("GUMBEL_SINKHORN_DATA"))
    if key not in _splits:
        _splits[key] = load_split(name)
    return _splits[key]


def _sizes(value, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        value = (value,)
    sizes = tuple(_checks.count(v, f"{name} (items per set)", minimum=2) for v in value)
    if not sizes:
        raise ValueError(f"{name} needs at least one set size")
    return sizes


@dataclasses.dataclass
class RankingTask:
    """Learn to rank sets of ``digits``-digit MNIST numbers.

    ``head``: "sinkhorn" (ours), "classic" or "neuralsort" (see :mod:`..nn.ranking`); ``cnn``
    "digit" (one CNN of ``width`` channels reads every digit) or "protocol". Training sets hold
    ``n`` items, cycling through the sizes in ``n`` step by step (the classic head takes one
    size); a step holds about ``items`` items (``round(items / n)`` sets). Gumbel-Sinkhorn:
    ``tau``, ``n_iter``, ``n_samples``, ``noise_factor``; NeuralSort's temperature is ``tau`` too.
    After each epoch, ``val_sets`` validation sets of each size in ``val_n`` (seed ``eval_seed``).
    """

    head: str = "sinkhorn"
    n: tuple[int, ...] = (3, 5, 7, 9, 15)
    digits: int = 4
    cnn: str = "digit"
    width: int = 8
    hidden: int = 64
    loss_kind: str = "permutation"
    tau: float = 1.0
    n_iter: int = 20
    n_samples: int = 1
    noise_factor: float = 1.0
    items: int = 100
    steps_per_epoch: int = 500
    val_n: tuple[int, ...] = (5, 15)
    val_sets: int = 200
    eval_seed: int = 1234

    name = "ranking"

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        self.n = _sizes(self.n, "n")
        if self.head == "classic" and len(self.n) != 1:
            raise ValueError(f"the classic head ranks sets of one size, got n={self.n}")
        self.val_n = self.n if self.head == "classic" else _sizes(self.val_n, "val_n")
        self.digits = _checks.count(self.digits, "digits (per number)")
        if self.loss_kind not in LOSSES:
            raise ValueError(f"loss_kind must be one of {LOSSES}, got {self.loss_kind!r}")
        self.width = _checks.count(self.width, "width")
        self.hidden = _checks.count(self.hidden, "hidden")
        self.tau = _checks.positive(self.tau, "tau")
        self.n_iter = _checks.count(self.n_iter, "n_iter")
        self.n_samples = _checks.count(self.n_samples, "n_samples")
        self.noise_factor = _checks.non_negative(self.noise_factor, "noise_factor")
        self.items = _checks.count(self.items, "items (per step)")
        self.steps_per_epoch = _checks.count(self.steps_per_epoch, "steps_per_epoch")
        self.val_sets = _checks.count(self.val_sets, "val_sets")
        self.eval_seed = _checks.count(self.eval_seed, "eval_seed", minimum=0)

    # -- the Task protocol -------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RankingTask:
        return cls(**config)

    def build_model(self) -> RankingNet:
        return RankingNet(
            self.head,
            self.digits,
            n=self.n[0] if self.head == "classic" else None,
            cnn=self.cnn,
            width=self.width,
            hidden=self.hidden,
            tau=self.tau,
        )

    def train_batches(self, epoch: int, generator: torch.Generator) -> list[RankingBatch]:
        """``steps_per_epoch`` batches of fresh training sets; step t has ``n[t % len(n)]`` items
        per set (counted from the run's first step, so every size gets its share)."""
        data = split("train")
        batches = []
        for step in range(self.steps_per_epoch):
            n = self.n[(epoch * self.steps_per_epoch + step) % len(self.n)]
            sets = sample_sets(
                data, max(1, round(self.items / n)), n, self.digits, generator=generator
            )
            batches.append(RankingBatch(sets.index, sets.ranks))
        return batches

    def loss(self, model: torch.nn.Module, batch: RankingBatch) -> torch.Tensor:
        """Cross-entropy with the true permutation (or reconstruction error), see the module."""
        device = batch.index.device
        x = compose(split("train"), batch.index.cpu()).to(device)
        log_alpha = model(x)
        if self.head == "neuralsort":
            log_p = log_alpha.unsqueeze(0)
        else:
            shape = (self.n_samples, *log_alpha.shape)
            noise = sample_gumbel(shape, device=device, dtype=log_alpha.dtype)
            log_p = log_sinkhorn(log_alpha + self.noise_factor * noise, self.n_iter, tau=self.tau)
        if self.loss_kind == "permutation":
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
        out = {}
        for n in self.val_n:
            metrics = evaluate_sets(model, "val", n, self.val_sets, self.digits, self.eval_seed)
            out.update({f"val_{k}_n{n}": v for k, v in metrics.items()})
        return out


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
    model: torch.nn.Module, split_name: str, n: int, n_sets: int, digits: int, seed: int
) -> dict[str, float]:
    """:func:`score_ranks` on ``n_sets`` sets of size ``n`` drawn from a split with ``seed``.

    The sets depend only on (split, n, n_sets, digits, seed): the same test sets on every run.
    """
    generator = torch.Generator().manual_seed(seed)
    data = split(split_name)
    sets = sample_sets(data, n_sets, n, digits, generator=generator)
    predicted = torch.cat(
        [predict_ranks(model, compose(data, part)) for part in sets.index.split(_EVAL_CHUNK)]
    )
    return score_ranks(predicted, sets.ranks)


def save_weights(path, task: RankingTask, model: torch.nn.Module, metrics=None):
    """A small weights file (float32 state dict, task config, metrics), written atomically."""
    state = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}
    payload = {"task": task.name, "config": task.config(), "state_dict": state}
    return checkpoint.save(path, "weights", {**payload, "metrics": dict(metrics or {})})


def load_model(path) -> tuple[RankingTask, RankingNet, dict]:
    """``(task, model in eval mode, metrics)`` from a weights file, a checkpoint, a run folder or
    the name of a shipped model (``"rank-sinkhorn"``: ``weights/rank-sinkhorn.pt``)."""
    path = os.fspath(path)
    shipped = WEIGHTS_DIR / f"{path}.pt"
    if not os.path.exists(path) and os.sep not in path and shipped.is_file():
        path = os.fspath(shipped)
    if not os.path.exists(path):
        names = ", ".join(sorted(p.stem for p in WEIGHTS_DIR.glob("rank-*.pt"))) or "none"
        raise FileNotFoundError(
            f"{path!r} is neither a file, a run folder nor a shipped ranking model ({names})"
        )
    if os.path.isdir(path):
        path = os.path.join(path, "checkpoint.pt")
    payload = checkpoint.load(path, "weights", "checkpoint")
    if payload.get("task") != RankingTask.name:
        raise ValueError(f"{path} holds a {payload.get('task')} model, not a ranking model")
    if payload["format"] == "gumbel-sinkhorn-checkpoint":
        history = payload.get("history") or [{}]
        payload = {**payload, "state_dict": payload["model"], "metrics": history[-1]}
    task = RankingTask.from_config(payload["config"])
    model = task.build_model()
    model.load_state_dict(payload["state_dict"])
    return task, model.eval(), payload["metrics"]
