"""Shipped and saved models: weights files that rebuild their task and model by themselves."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch

from . import checkpoint

WEIGHTS_DIR = Path(__file__).parent / "weights"

# Task name -> "module:Class"; imported only when needed.
TASKS = {
    "jigsaw": "gumbel_sinkhorn.tasks.jigsaw:JigsawTask",
    "sorting": "gumbel_sinkhorn.tasks.sorting:SortingTask",
}


def task_class(name: str) -> type:
    """The Task class registered under ``name``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def rebuild(task_name: str, config: dict, state_dict: dict):
    """``(task, model)`` from a task name, its config and its weights; the model in eval mode."""
    task = task_class(task_name).from_config(config)
    model = task.build_model()
    model.load_state_dict(state_dict)
    return task, model.eval()


def save_weights(path: str | os.PathLike, task, model: torch.nn.Module, metrics=None) -> Path:
    """Write a small weights file (float32 state dict, task config, metrics), atomically."""
    state = {
        k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.cpu()
        for k, v in model.state_dict().items()
    }
    payload = {
        "task": task.name,
        "config": task.config(),
        "state_dict": state,
        "metrics": dict(metrics or {}),
    }
    return checkpoint.save(path, "weights", payload)


def available() -> list[str]:
    """Names of the shipped weights, e.g. ``"mnist-3x3"`` or ``"sort-100"``."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def resolve(source: str | os.PathLike) -> Path:
    """The file behind a shipped name, a weights file, a checkpoint file or a run folder."""
    path = Path(source)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if path.is_file():
        return path
    if str(source) in available():
        return WEIGHTS_DIR / f"{source}.pt"
    raise ValueError(
        f"{source!r} is neither a file, a run folder nor a shipped model; "
        f"shipped: {', '.join(available()) or 'none'}"
    )


def load_model(source: str | os.PathLike):
    """``(task, model, metrics)`` from a shipped name, a weights file, a checkpoint or a run folder.

    The model is on the CPU in eval mode; ``metrics`` are those stored with it (may be empty).
    """
    payload = checkpoint.load(resolve(source), "weights", "checkpoint")
    if payload["format"] == "gumbel-sinkhorn-checkpoint":
        history = payload.get("history") or [{}]
        payload = {**payload, "state_dict": payload["model"], "metrics": history[-1]}
    task, model = rebuild(payload["task"], payload["config"], payload["state_dict"])
    return task, model, payload["metrics"]
