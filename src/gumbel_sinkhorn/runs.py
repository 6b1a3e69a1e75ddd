"""Where things are: the files of a run folder, and the shipped weights.

>>> run = RunFolder("runs/mnist-3x3")
>>> run.checkpoint.name, run.metrics.name, run.weights.name, run.figure("curves").name
('checkpoint.pt', 'metrics.jsonl', 'weights.pt', 'curves.png')
>>> "mnist-3x3" in available()
True

No torch here: the command line lists the shipped models without loading PyTorch.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InvalidValueError

#: The setting that points the data loaders at a folder of local copies (mnist/, celegans/ ...).
ENV_VAR = "GUMBEL_SINKHORN_DATA"
WEIGHTS_DIR = Path(__file__).parent / "weights"


class RunFolder:
    """The one place that names the files of a training run.

    ``checkpoint.pt`` (everything to resume: weights, optimizer, history, options),
    ``metrics.jsonl`` (one line per epoch, rewritten from the checkpoint), ``weights.pt`` (the
    small file to share), and figures ``<name>.png``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.checkpoint = self.path / "checkpoint.pt"
        self.metrics = self.path / "metrics.jsonl"
        self.weights = self.path / "weights.pt"

    def figure(self, name: str) -> Path:
        """The path of the figure ``name`` (``puzzles``, ``curves`` ...)."""
        return self.path / f"{name}.png"

    def has_run(self) -> bool:
        """Whether a run was started here (it has a checkpoint)."""
        return self.checkpoint.is_file()

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"


def available() -> list[str]:
    """Names of the shipped weights, e.g. ``"mnist-3x3"`` or ``"sort-100"``."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def resolve(source: str | os.PathLike) -> Path:
    """The file behind a shipped name, a weights file, a checkpoint file or a run folder."""
    path = Path(source)
    if path.is_dir():
        path = RunFolder(path).checkpoint
    if path.is_file():
        return path
    if str(source) in available():
        return WEIGHTS_DIR / f"{source}.pt"
    raise InvalidValueError(
        f"{source!r} is neither a file, a run folder nor a shipped model; "
        f"shipped: {', '.join(available()) or 'none'}"
    )
