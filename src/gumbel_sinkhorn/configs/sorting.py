"""The sorting experiment's options: where the numbers come from, the network, the task.

>>> cfg = SortingConfig(n=5)
>>> cfg.model.kind, cfg.sampling.n_samples, str(cfg.train)
('anchors', 5, 'U(0, 1)')
>>> SortingConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

from ..errors import InvalidValueError
from . import Config, SamplingConfig, check, count, option

KINDS = ("uniform", "normal")
MODELS = ("anchors", "mlp")


def _finite(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Distribution(Config):
    """Where the numbers of a list come from: U(low, high) or N(mean, std**2).

    >>> Distribution(low=1000, high=1001)
    Distribution(kind='uniform', low=1000.0, high=1001.0, mean=0.0, std=1.0)
    >>> print(Distribution("normal", mean=0, std=2))
    N(0, 2^2)

    ``low`` / ``high`` describe the uniform, ``mean`` / ``std`` the normal; the others are ignored.
    """

    kind: str = option("uniform", "where the numbers come from", flag="distribution", choices=KINDS)
    low: float = option(0.0, "uniform: lower end")
    high: float = option(1.0, "uniform: upper end")
    mean: float = option(0.0, "normal: mean")
    std: float = option(1.0, "normal: standard deviation")

    def __post_init__(self):
        if self.kind not in KINDS:
            raise InvalidValueError(f"distribution must be one of {KINDS}, got {self.kind!r}")
        for name in ("low", "high", "mean", "std"):
            object.__setattr__(self, name, _finite(getattr(self, name), name))
        if self.kind == "uniform" and not self.low < self.high:
            raise InvalidValueError(
                f"a uniform distribution needs low < high, got low={self.low:g}, high={self.high:g}"
            )
        if self.kind == "normal" and not self.std > 0:
            raise InvalidValueError(f"a normal distribution needs std > 0, got std={self.std:g}")

    def __str__(self) -> str:
        if self.kind == "uniform":
            return f"U({self.low:g}, {self.high:g})"
        return f"N({self.mean:g}, {self.std:g}^2)"


@dataclasses.dataclass(frozen=True)
class SortingNetConfig(Config):
    """Which network maps each number to its row of scores."""

    kind: str = option(
        "anchors",
        "anchors: squared distance of each standardised number to n learned anchors (sorts "
        "exactly once the anchors increase); mlp: the authors' per-number MLP",
        flag="model",
        choices=MODELS,
    )
    hidden: int = option(32, "mlp: hidden units")
    standardize: bool = option(
        True, "mlp: standardise each list first (without, as the authors, it fails out of range)"
    )

    def __post_init__(self):
        if self.kind not in MODELS:
            raise InvalidValueError(f"model must be one of {MODELS}, got {self.kind!r}")
        check(self, hidden=count)
        object.__setattr__(self, "standardize", bool(self.standardize))


@dataclasses.dataclass(frozen=True)
class SortingConfig(Config):
    """Learn to sort lists of ``n`` numbers, seeing only the sorted lists."""

    n: int = option(100, "numbers per list", flag="numbers")
    model: SortingNetConfig = option(SortingNetConfig(), "the network")
    sampling: SamplingConfig = option(
        SamplingConfig(tau=1.0, n_iter=10, n_samples=5), "the loss's Gumbel-Sinkhorn samples"
    )
    batch_size: int = option(10, "lists per training step")
    steps_per_epoch: int = option(100, "training steps per epoch")
    train: Distribution = option(Distribution(), "training lists")
    test: Distribution = option(Distribution(), "held-out lists")
    eval_lists: int = option(1000, "held-out lists per evaluation")
    eval_seed: int = option(1234, "seed of the held-out lists")

    RENAMED = {"batch": "batch_size"}

    def __post_init__(self):
        check(self, n=lambda v, name: count(v, "n (numbers per list)", minimum=2))
        check(self, batch_size=count, steps_per_epoch=count, eval_lists=count)
        check(self, eval_seed=lambda v, name: count(v, name, minimum=0))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SortingConfig:
        """Also reads the flat configs of earlier releases (model and sampling options inline)."""
        values = {cls.RENAMED.get(k, k): v for k, v in values.items()}
        if isinstance(values.get("model"), str):
            nets = {f.name for f in dataclasses.fields(SortingNetConfig)} - {"kind"}
            values["model"] = {"kind": values["model"]} | {
                k: values.pop(k) for k in list(values) if k in nets
            }
        sampling = {f.name for f in dataclasses.fields(SamplingConfig)}
        moved = {k: values.pop(k) for k in list(values) if k in sampling}
        if moved:
            values["sampling"] = moved
        return super().from_dict(values)
