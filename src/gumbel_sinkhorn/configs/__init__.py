"""Frozen configuration dataclasses: one per model and per task, and the tools they share.

A configuration is the single source of its options: the command line builds its flags, help and
defaults from the fields (:func:`option` keeps the help), checkpoints store :meth:`Config.to_dict`
and rebuild with :meth:`Config.from_dict`. These modules import nothing heavy (no torch), so the
command line can describe itself without loading PyTorch.

>>> cfg = SamplingConfig.from_dict({"tau": 0.5})
>>> cfg
SamplingConfig(tau=0.5, n_iter=20, n_samples=1, noise_factor=1.0)
>>> SamplingConfig.from_dict(cfg.to_dict()) == cfg
True
>>> SamplingConfig.from_dict({"temperature": 1})
Traceback (most recent call last):
...
gumbel_sinkhorn.errors.InvalidValueError: unknown SamplingConfig options ['temperature']; ...
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from typing import Any, ClassVar

from ..errors import InvalidValueError


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    flag: str | None = None,
    choices: tuple | None = None,
    **kw,
):
    """A dataclass field that carries its command-line help (optionally its flag and choices)."""
    metadata = {"help": help, "flag": flag, "choices": choices}
    if isinstance(default, list | dict) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: _copy(default), metadata=metadata, **kw)
    return dataclasses.field(default=default, metadata=metadata, **kw)


def _copy(value):
    return type(value)(value) if isinstance(value, list | dict) else value


class Config:
    """Mixin of the configuration dataclasses: dict round trip with checks and old-name support.

    ``RENAMED`` maps option names of earlier releases to today's (checkpoints keep loading).
    """

    RENAMED: ClassVar[dict[str, str]] = {}

    def to_dict(self) -> dict[str, Any]:
        """Plain values, nested configurations as dicts (what a checkpoint stores)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """The configuration from a dict (old names accepted); unknown keys are an error."""
        values = {cls.RENAMED.get(k, k): v for k, v in values.items()}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise InvalidValueError(
                f"unknown {cls.__name__} options {unknown}; known: {sorted(fields)}"
            )
        hints = typing.get_type_hints(cls)
        for name, value in values.items():
            nested = _config_type(hints[name])
            if nested is not None and isinstance(value, dict):  # over this class's default
                default = _default(fields[name])
                base = default.to_dict() if isinstance(default, Config) else {}
                values[name] = nested.from_dict({**base, **value})
        return cls(**values)

    def replace(self, **changes):
        """A copy with some options changed (checked again)."""
        return dataclasses.replace(self, **changes)


def _default(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def _plain(value):
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, tuple):
        return list(value)
    return value


def _config_type(hint) -> type | None:
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, Config):
            return candidate
    return None


def count(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (bools and fractions refused), else a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def number(
    value,
    name: str,
    *,
    low: float = 0.0,
    high: float = math.inf,
    low_open: bool = True,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float in the interval named by the bounds, else a clear error.

    >>> number(0.5, "loss_exponent", high=1)
    0.5
    >>> number(2, "loss_exponent", high=1)
    Traceback (most recent call last):
    ...
    gumbel_sinkhorn.errors.InvalidValueError: loss_exponent must be in (0, 1], got 2
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
        upper = "inf" if high == math.inf else f"{high:g}"
        raise InvalidValueError(f"{name} must be in {left}{low:g}, {upper}{right}, got {value!r}")
    return float(value)


def non_negative(value, name: str) -> float:
    """``value`` as a finite float >= 0 (:func:`number` on ``[0, inf)``)."""
    return number(value, name, low_open=False)


def check(config, **checks) -> None:
    """Run ``checks`` (field name -> function(value, name) -> value) on a frozen dataclass."""
    for name, fn in checks.items():
        object.__setattr__(config, name, fn(getattr(config, name), name))


@dataclasses.dataclass(frozen=True)
class SamplingConfig(Config):
    """How a task draws Gumbel-Sinkhorn samples S((log_alpha + noise_factor * G) / tau)."""

    tau: float = option(1.0, "Gumbel-Sinkhorn temperature")
    n_iter: int = option(20, "Sinkhorn iterations")
    n_samples: int = option(1, "Gumbel-Sinkhorn samples per item and step")
    noise_factor: float = option(1.0, "scale of the Gumbel noise (0: none)")

    def __post_init__(self):
        check(
            self,
            tau=number,
            n_iter=count,
            n_samples=count,
            noise_factor=non_negative,
        )


LR_SCHEDULES = ("none", "cosine")
PRECISIONS = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class FitConfig(Config):
    """How :func:`~gumbel_sinkhorn.train.fit` trains: kept in every checkpoint, reused on resume."""

    epochs: int = option(5, "passes over the training data (epochs)")
    lr: float = option(1e-3, "Adam learning rate")
    lr_schedule: str = option(
        "none", "learning-rate schedule over the epochs", choices=("none", "cosine")
    )
    seed: int = option(0, "random seed (weights, batches, noise)")
    grad_clip: float | None = option(None, "clip the gradient norm to this value")
    eval_every: int = option(1, "evaluate every this many epochs (and after the last)")
    save_every: int | None = option(None, "also checkpoint every this many steps")
    precision: str = option(
        "float32",
        choices=("float32", "bfloat16"),
        help="bfloat16: training forward passes under autocast, faster on hardware with bfloat16 "
        "units (recent GPUs, CPUs with AVX512-BF16 or AMX)",
    )

    def __post_init__(self):
        check(self, epochs=count, lr=number, eval_every=count)
        check(self, seed=lambda v, n: count(v, n, minimum=0))
        if self.lr_schedule is None:
            object.__setattr__(self, "lr_schedule", "none")
        for name, choices in (("lr_schedule", LR_SCHEDULES), ("precision", PRECISIONS)):
            if getattr(self, name) not in choices:
                raise InvalidValueError(
                    f"{name} must be one of {choices}, got {getattr(self, name)!r}"
                )
        if self.grad_clip is not None:
            check(self, grad_clip=number)
        if self.save_every is not None:
            check(self, save_every=count)
