"""Figures (PNG, matplotlib): solved puzzles beside the scrambled and original images; curves;
the soft and hard permutations that sort a list.

>>> import tempfile, torch
>>> from gumbel_sinkhorn.data import make_puzzles
>>> puzzles = make_puzzles(torch.rand(3, 1, 8, 8), 2, generator=torch.Generator().manual_seed(0))
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = puzzle_grid(puzzles, puzzles.perm, f"{tmp}/puzzles.png")
...     path.stat().st_size > 0
True
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from . import _extras, checkpoint
from .data import assemble_pieces, unscramble
from .errors import InvalidValueError
from .ops import matching, permutation_matrix, sinkhorn


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise _extras.missing("matplotlib", "drawing figures") from err

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _to_numpy_image(image: torch.Tensor):
    """``(C, H, W)`` in [0, 1] -> an array for ``imshow`` (grey or RGB)."""
    image = image.clamp(0, 1)
    return image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()


def puzzle_grid(
    puzzles,
    perm_pred: torch.Tensor,
    path: str | os.PathLike,
    *,
    n: int = 8,
    denormalize=None,
    title: str | None = None,
) -> Path:
    """Draw ``n`` puzzles as rows: scrambled | solved | original; wrong pieces framed in red.

    ``puzzles`` is a ``data.Puzzles`` batch and ``perm_pred`` the model's ``(B, N)`` answer. A
    piece counts as wrong when it differs from the original piece at that place (swapping two
    identical blank pieces is not an error). ``denormalize`` maps pieces back to [0, 1] pixels.
    """
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    n = min(n, len(perm_pred))
    to_pixels = denormalize or (lambda x: x)
    solved = unscramble(puzzles.scrambled[:n], perm_pred[:n])
    original = puzzles.pieces[:n]
    wrong = (solved != original).flatten(2).any(-1)  # (n, N)
    grid = round(original.shape[1] ** 0.5)
    ph, pw = original.shape[-2:]
    columns = (("scrambled", puzzles.scrambled[:n]), ("solved", solved), ("original", original))
    fig, axes = plt.subplots(n, 3, figsize=(4.5, 1.5 * n + 0.4), squeeze=False)
    for row in range(n):
        for col, (name, pieces) in enumerate(columns):
            ax = axes[row, col]
            image = to_pixels(assemble_pieces(pieces[row]))
            ax.imshow(_to_numpy_image(image), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=9)
            if name == "solved":
                for k in wrong[row].nonzero().flatten().tolist():
                    r, c = divmod(k, grid)
                    ax.add_patch(
                        Rectangle(
                            (c * pw - 0.5, r * ph - 0.5),
                            pw,
                            ph,
                            fill=False,
                            edgecolor="red",
                            linewidth=1.5,
                        )
                    )
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def training_curves(
    history: Sequence[dict],
    path: str | os.PathLike,
    *,
    metrics: Sequence[str] = (),
    title: str | None = None,
) -> Path:
    """Loss and the chosen held-out metrics per epoch (rows of ``metrics.jsonl``)."""
    if not history:
        raise InvalidValueError("training_curves needs at least one epoch of history, got none")
    plt = _pyplot()
    metrics = [m for m in metrics if any(m in row for row in history)]
    fig, axes = plt.subplots(
        1, 1 + bool(metrics), figsize=(4 + 4 * bool(metrics), 3), squeeze=False
    )
    epochs = [row["epoch"] for row in history]
    ax = axes[0, 0]
    ax.plot(epochs, [row["loss"] for row in history], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    if metrics:
        ax = axes[0, 1]
        for name in metrics:
            points = [(row["epoch"], row[name]) for row in history if name in row]
            ax.plot(*zip(*points, strict=True), marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("held-out metric")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def sorting_matrices(
    log_alpha: torch.Tensor,
    x: torch.Tensor,
    path: str | os.PathLike,
    *,
    tau: float = 1.0,
    n_iter: int = 100,
    title: str | None = None,
) -> Path:
    """One list ``x`` (``(n,)``) and its scores ``(n, n)``: S(log_alpha / tau), M(log_alpha), Pᵀx.

    Rows are the numbers in the order given, columns the positions in the sorted list; the third
    panel puts the numbers where each matrix sends them, against the true sorted list.
    """
    plt = _pyplot()
    log_alpha, x = log_alpha.detach().cpu(), x.detach().cpu().double()
    soft = sinkhorn(log_alpha, n_iter=n_iter, tau=tau).double()
    hard = permutation_matrix(matching(log_alpha), dtype=torch.float64)
    n = len(x)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), gridspec_kw={"width_ratios": [1, 1, 1.15]})
    for ax, matrix, name in (
        (axes[0], soft, f"soft: S(log_alpha / {tau:g})"),
        (axes[1], hard, "hard: M(log_alpha)"),
    ):
        ax.imshow(matrix.numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set_title(name)
        ax.set_xlabel("position in the sorted list")
        ax.set_xticks(range(0, n, max(1, n // 7)))
        if n <= 20:
            ax.set_yticks(range(n), [f"{v:.7g}" for v in x.tolist()], fontsize=7)
    axes[0].set_ylabel("number (in the order given)")
    positions = range(n)
    axes[2].plot(positions, x.sort().values.numpy(), "k-", lw=3, alpha=0.25, label="sorted list")
    axes[2].plot(positions, (soft.T @ x).numpy(), "o", ms=4, label="soft Pᵀx")
    axes[2].plot(positions, (hard.T @ x).numpy(), "x", ms=5, label="hard Pᵀx")
    axes[2].set_xlabel("position")
    axes[2].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96) if title else None)
    return _save(fig, path)


def ranked_sets(
    pictures: torch.Tensor,
    predicted: torch.Tensor,
    numbers: torch.Tensor,
    path: str | os.PathLike,
    *,
    digits: int = 0,
    title: str | None = None,
) -> Path:
    """Sets of pictures drawn in predicted order (one row per set), wrong ranks framed in red.

    ``pictures`` ``(S, n, H, W)`` in [0, 1], ``predicted`` ``(S, n)`` the predicted rank of each
    item, ``numbers`` ``(S, n)`` the values they show. Above each picture its true value; an item
    whose predicted rank is not its true rank gets a red frame and its true rank. Values are
    written with ``digits`` digits (leading zeros), as the pictures show them.
    """
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    pictures, predicted, numbers = pictures.cpu(), predicted.cpu(), numbers.cpu()
    rows, n = predicted.shape
    true = numbers.argsort(-1).argsort(-1)
    fig, axes = plt.subplots(rows, n, figsize=(1.3 * n, 0.75 * rows + 0.4), squeeze=False)
    for s in range(rows):
        order = predicted[s].argsort()  # the item the model puts at each rank
        for j, item in enumerate(order.tolist()):
            ax = axes[s, j]
            ax.imshow(pictures[s, item].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            wrong = int(true[s, item]) != j
            label = f"{int(numbers[s, item]):0{digits}d}"
            if wrong:
                label += f" (rank {int(true[s, item]) + 1})"
            ax.set_title(label, fontsize=6, color="red" if wrong else "black")
            if wrong:
                h, w = pictures.shape[-2:]
                ax.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, ec="red", lw=2.5))
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    checkpoint.writable_folder(path.parent)
    image = io.BytesIO()  # drawn in memory, then written atomically: never a half-written figure
    try:
        fig.savefig(image, dpi=100, format=path.suffix[1:].lower() or None)
    finally:
        plt.close(fig)
    return checkpoint.atomic_write(path, lambda file: file.write(image.getbuffer()))
