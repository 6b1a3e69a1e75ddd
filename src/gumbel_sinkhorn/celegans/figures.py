"""Figures (PNG): accuracy against the mean number of candidates; posteriors over names.

>>> import tempfile, torch
>>> marginals = torch.softmax(torch.randn(1, 4, 4), -1)
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = posterior_figure(marginals[0], torch.arange(4), ["A", "B", "C", "D"], [0, 2],
...                             f"{tmp}/posterior.png")
...     path.stat().st_size > 0
True
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .experiment import LABELS, METHODS, Table


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def accuracy_figure(table: Table, report: dict, path: str | os.PathLike) -> Path:
    """One panel per row group (1 worm, 4 worms): mean accuracy (± std over simulations) of
    every method against the mean number of candidate names, from ``reproduce``'s records; the
    published accuracies of the same cells dashed, in the same colour."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        1,
        len(table.groups),
        figsize=(5 * len(table.groups), 3.8),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    for g, (ax, group) in enumerate(zip(axes[0], table.groups, strict=True)):
        for method in METHODS:
            xs, means, stds, published = [], [], [], []
            for column in table.columns:
                records = [
                    r
                    for r in report["records"]
                    if r["cell"] == f"{column}, {group}" and method in r["accuracy"]
                ]
                if not records:
                    continue
                acc = torch.tensor([r["accuracy"][method] for r in records], dtype=torch.float64)
                xs.append(sum(r["mean_candidates"] for r in records) / len(records))
                means.append(float(acc.mean()))
                stds.append(float(acc.std()) if len(acc) > 1 else 0.0)
                published.append(table.published[method][column][g])
            if xs:
                line = ax.errorbar(
                    xs, means, yerr=stds, marker="o", capsize=3, label=LABELS[method]
                )
                ax.plot(
                    xs,
                    published,
                    linestyle="--",
                    marker="x",
                    alpha=0.6,
                    color=line.lines[0].get_color(),
                )
        ax.set_title(group)
        ax.set_xlabel("mean number of candidate names")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (neurons not named)")
    fig.suptitle("solid: ours, mean ± std over simulations; dashed: published", fontsize=9)
    axes[0][-1].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def posterior_figure(
    marginals: torch.Tensor,
    truth: torch.Tensor,
    names,
    neurons,
    path: str | os.PathLike,
    *,
    top: int = 8,
) -> Path:
    """For each recorded neuron in ``neurons``, a bar chart of its ``top`` most probable names
    under ``marginals`` ``(N, N)``; the true name's bar is drawn in orange, and its name and
    probability are written beside the panel (also when it is not among the ``top``)."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(neurons), 1, figsize=(6, 1.6 * len(neurons)), squeeze=False)
    for ax, i in zip(axes[:, 0], neurons, strict=True):
        probs = marginals[i].double()
        order = probs.argsort(descending=True)[:top]
        order = order[probs[order] > 0]
        colors = ["tab:orange" if int(k) == int(truth[i]) else "tab:blue" for k in order]
        ax.bar(range(len(order)), probs[order].numpy(), color=colors)
        ax.set_xticks(range(len(order)), [names[int(k)] for k in order], fontsize=7)
        ax.set_ylim(0, 1)
        true = int(truth[i])
        ax.set_ylabel(
            f"#{i}\ntruly {names[true]}\np = {float(probs[true]):.2f}",
            rotation=0,
            ha="right",
            va="center",
            fontsize=7,
        )
    axes[0, 0].set_title("posterior over names (orange: the true name)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path
