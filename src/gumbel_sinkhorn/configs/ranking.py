"""The ranking experiment's options: the sets, the network, the loss and its samples (torch-free).

>>> cfg = RankingConfig(n=(3, 5), digits=2)
>>> cfg.n, cfg.head, cfg.sampling.n_samples
((3, 5), 'sinkhorn', 1)
>>> RankingConfig.from_dict(cfg.to_dict()) == cfg
True
>>> RankingConfig(n=1)
Traceback (most recent call last):
...
gumbel_sinkhorn.errors.InvalidValueError: n (items per set) must be an integer >= 2, got 1
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import InvalidValueError
from . import Config, SamplingConfig, check, count, option

HEADS = ("sinkhorn", "classic", "neuralsort")
CNNS = ("digit", "places", "protocol")
LOSSES = ("permutation", "reconstruction")


def sizes(value, name: str) -> tuple[int, ...]:
    """Set sizes as a tuple of ints >= 2 (one int accepted), else a clear error."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, list | tuple) or not value:
        raise InvalidValueError(f"{name} needs at least one set size, got {value!r}")
    return tuple(count(v, f"{name} (items per set)", minimum=2) for v in value)


@dataclasses.dataclass(frozen=True)
class RankingConfig(Config):
    """Learn to rank sets of ``digits``-digit MNIST numbers from their true order alone.

    Training sets hold ``n`` items, cycling through the sizes of ``n`` step by step (the classic
    head takes one size); a step holds about ``items`` items (``round(items / n)`` sets).
    NeuralSort's temperature is ``sampling.tau``. After each epoch, ``val_sets`` validation sets
    of each size in ``val_n`` (seed ``eval_seed``); the classic head validates on its own ``n``.
    """

    head: str = option(
        "sinkhorn",
        "sinkhorn: scalar scores turned into log_alpha (sorts by construction); classic: each "
        "item alone scores every rank; neuralsort: NeuralSort's deterministic relaxation",
        choices=HEADS,
    )
    standardise: bool = option(
        True,
        "our head: each set's scores standardised to the spread of the ranks (off: centred "
        "only, their scale learned, as NeuralSort's)",
    )
    n: tuple[int, ...] = option((3, 5, 7, 9, 15), "items per training set, cycled step by step")
    digits: int = option(4, "digits per number")
    cnn: str = option(
        "digit",
        "digit: one small CNN reads each 28x28 digit; places: the same CNN reads each digit as "
        "one of --symbols latent symbols with learned values, the head weighs the places; "
        "protocol: the published CNN on the whole picture",
        choices=CNNS,
    )
    width: int = option(8, "digit and places CNNs: channels of the digit reader's first layer")
    hidden: int = option(64, "hidden units of the CNN's last layer")
    skip: bool = option(
        False,
        "digit CNN: the item's features also hold its digits' features, a linear path from the "
        "digits to the score",
    )
    symbols: int = option(10, "places CNN: latent symbols a digit is read as")
    shift: int = option(
        0,
        "training pictures only: each digit image moved by up to this many pixels down/up and "
        "left/right, drawn per digit and step (0: the pictures as they are)",
    )
    loss_kind: str = option(
        "permutation",
        "permutation: cross-entropy with the true permutation; reconstruction: squared error of "
        "the pictures put in order",
        flag="loss",
        choices=LOSSES,
    )
    sampling: SamplingConfig = option(
        SamplingConfig(tau=1.0, n_iter=20, n_samples=1), "the loss's Gumbel-Sinkhorn samples"
    )
    items: int = option(100, "items per training step (sets = items / n)")
    steps_per_epoch: int = option(500, "training steps per epoch")
    val_n: tuple[int, ...] = option((5, 15), "validation set sizes")
    val_sets: int = option(200, "validation sets per size and epoch")
    eval_seed: int = option(1234, "seed of the validation sets")

    RENAMED = {"loss": "loss_kind", "steps": "steps_per_epoch"}

    def __post_init__(self):
        for name, choices in (("head", HEADS), ("cnn", CNNS), ("loss_kind", LOSSES)):
            if getattr(self, name) not in choices:
                raise InvalidValueError(
                    f"{name} must be one of {choices}, got {getattr(self, name)!r}"
                )
        check(self, n=sizes)
        if self.head == "classic":
            if len(self.n) != 1:
                raise InvalidValueError(f"the classic head ranks sets of one size, got n={self.n}")
            object.__setattr__(self, "val_n", self.n)
        check(self, val_n=sizes)
        check(self, digits=lambda v, name: count(v, "digits (per number)"))
        check(self, width=count, hidden=count, items=count, steps_per_epoch=count)
        check(self, symbols=lambda v, name: count(v, name, minimum=2))
        if not self.standardise and self.head != "sinkhorn":
            raise InvalidValueError(
                f"standardise is an option of head 'sinkhorn' only, got head {self.head!r}"
            )
        if self.skip and self.cnn != "digit":
            raise InvalidValueError(
                f"skip is an option of the digit CNN, not of the {self.cnn!r} one"
            )
        check(self, shift=lambda v, name: count(v, "shift (pixels)", minimum=0))
        if self.shift >= 14:
            raise InvalidValueError(f"shift must be below 14 (half a digit), got {self.shift}")
        check(self, val_sets=count, eval_seed=lambda v, name: count(v, name, minimum=0))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RankingConfig:
        """Also reads the flat configs of the first release (sampling options inline)."""
        values = {cls.RENAMED.get(k, k): v for k, v in values.items()}
        sampling = {f.name for f in dataclasses.fields(SamplingConfig)}
        moved = {k: values.pop(k) for k in list(values) if k in sampling}
        if moved:
            values["sampling"] = {**dict(values.get("sampling") or {}), **moved}
        return super().from_dict(values)
