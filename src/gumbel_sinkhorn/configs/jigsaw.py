"""The jigsaw experiment's options: the piece network, the task, and the two presets.

>>> cfg = JigsawConfig(grid=2, model=PRESETS["tutorial"])
>>> cfg.model.kernel, cfg.sampling.n_iter, cfg.batch_size
(5, 20, 64)
>>> JigsawConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..errors import InvalidValueError
from . import Config, SamplingConfig, check, count, number, option

DATASETS = ("mnist", "fashion-mnist", "digits")
FIT_MODES = ("pad", "crop", "resize")


@dataclasses.dataclass(frozen=True)
class PieceNetConfig(Config):
    """The layers of :class:`~gumbel_sinkhorn.nn.SinkhornPieceNet` (defaults: the tutorial's)."""

    hidden: int = option(32, "channels of g1's convolutions")
    kernel: int = option(5, "kernel size of g1's convolutions (odd)")
    n_conv: int = option(1, "convolutions in g1")
    pool: bool = option(True, "max-pool after the first conv (small pieces do better without)")
    g2_bias: bool = option(False, "g2 has a bias")
    n_context: int = option(0, "transformer layers between g1 and g2 (0: pieces scored alone)")
    d_model: int = option(128, "width of the transformer layers")
    n_heads: int = option(4, "attention heads of the transformer layers")
    input_power: float | None = option(
        None, "g1 also sees the pixels raised to this power (0.25 makes faint strokes visible)"
    )

    def __post_init__(self):
        check(self, hidden=count, kernel=count, n_conv=count, d_model=count, n_heads=count)
        check(self, n_context=lambda v, n: count(v, n, minimum=0))
        if self.kernel % 2 == 0:
            raise InvalidValueError(
                f"kernel must be odd (the conv keeps the piece size), got {self.kernel}"
            )
        if self.n_context and self.d_model % self.n_heads:
            raise InvalidValueError(
                f"d_model must be a multiple of n_heads={self.n_heads}, got {self.d_model}"
            )
        object.__setattr__(self, "pool", bool(self.pool))
        object.__setattr__(self, "g2_bias", bool(self.g2_bias))
        if self.input_power == 0:  # 0 on the command line: no power channels
            object.__setattr__(self, "input_power", None)
        if self.input_power is not None:
            check(self, input_power=number)


#: ``--model ours`` (the shipped 3x3 to 6x6 models) and ``--model tutorial`` (the seed's network).
PRESETS = {
    "ours": PieceNetConfig(
        hidden=16,
        kernel=3,
        n_conv=2,
        pool=False,
        g2_bias=True,
        n_context=3,
        d_model=64,
        input_power=0.25,
    ),  # fmt: skip
    "tutorial": PieceNetConfig(),
}
#: The Gumbel-Sinkhorn samples of each preset's loss.
SAMPLING = {"ours": SamplingConfig(tau=1.0), "tutorial": SamplingConfig(tau=0.1)}
#: How each preset is trained unless told otherwise (docs/RESULTS.md).
TRAINING = {
    "ours": dict(lr=3e-3, lr_schedule="cosine", loss_exponent=0.25, augment_shift=1),
    "tutorial": dict(lr=1e-4, lr_schedule="none", loss_exponent=1.0, augment_shift=0),
}


@dataclasses.dataclass(frozen=True)
class JigsawConfig(Config):
    """Jigsaw puzzles cut from an image dataset and the network that solves them.

    ``image_shape``, ``mean`` and ``std`` describe the images once fitted to the grid; they are
    read from the data when a task is created without them, and kept so that a saved model
    rebuilds without the data.
    """

    dataset: str = option("mnist", f"one of {', '.join(DATASETS)}, or a folder of images")
    grid: int = option(3, "pieces per side (N = grid^2 pieces)")
    fit: str = option(
        "pad", "how images whose side is not a multiple of the grid are fitted", choices=FIT_MODES
    )
    image_size: int | None = option(None, "resize images to this side first (default: as they are)")
    batch_size: int = option(64, "puzzles (images) per training step")
    train_size: int | None = option(None, "train on the first N training images only")
    test_size: int | None = option(None, "evaluate on the first N test images only")
    eval_seed: int = option(1234, "seed of the test puzzles' scrambling")
    loss_exponent: float = option(
        1.0, "reconstruct pixels**e, e in (0, 1]: e < 1 lifts faint strokes"
    )
    augment_shift: int = option(0, "shift training images by up to this many pixels")
    model: PieceNetConfig = option(PRESETS["ours"], "the piece network")
    sampling: SamplingConfig = option(SAMPLING["ours"], "the loss's Gumbel-Sinkhorn samples")
    image_shape: tuple[int, int, int] | None = option(None, "(C, H, W) once fitted to the grid")
    mean: tuple[float, ...] | None = option(None, "per-channel pixel mean (normalisation)")
    std: tuple[float, ...] | None = option(None, "per-channel pixel std (normalisation)")

    RENAMED = {"images_per_batch": "batch_size"}

    def __post_init__(self):
        check(self, grid=lambda v, n: count(v, n, minimum=2), batch_size=count)
        check(self, augment_shift=lambda v, n: count(v, n, minimum=0), eval_seed=_seed)
        check(self, loss_exponent=lambda v, n: number(v, n, high=1.0))
        for name in ("image_size", "train_size", "test_size"):
            if getattr(self, name) is not None:
                check(self, **{name: count})
        if self.dataset not in DATASETS and not Path(self.dataset).is_dir():
            raise InvalidValueError(
                f"dataset must be one of {DATASETS} or a folder of images, got {self.dataset!r}"
            )
        if self.fit not in FIT_MODES:
            raise InvalidValueError(f"fit must be one of {FIT_MODES}, got {self.fit!r}")
        for name, kind in (("image_shape", int), ("mean", float), ("std", float)):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(kind(v) for v in getattr(self, name)))
        if self.image_shape is not None:
            height, width = self.image_shape[1:]
            if min(height, width) < 2 * self.grid:
                raise InvalidValueError(
                    f"a {self.grid}x{self.grid} grid leaves pieces of {height // self.grid}x"
                    f"{width // self.grid} pixels ({height}x{width} images once fitted to the "
                    "grid): pieces of at least 2x2 pixels are needed (a smaller grid or larger "
                    "images)"
                )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> JigsawConfig:
        """Also reads the configs of earlier releases (sampling options inside ``model``; a
        ``model`` without ``input_power``, saved before it existed, has none)."""
        values = {k: v for k, v in values.items() if k != "data_root"}  # where, not what
        if isinstance(values.get("model"), dict):
            # saved before input_power existed: a network without it
            model = {"input_power": None, **values["model"]}
            moved = {k: model.pop(k) for k in list(model) if k in _SAMPLING_FIELDS}
            values = {**values, "model": model, **({"sampling": moved} if moved else {})}
        return super().from_dict(values)


_SAMPLING_FIELDS = {f.name for f in dataclasses.fields(SamplingConfig)}


def _seed(value, name: str) -> int:
    return count(value, name, minimum=0)
