"""Saved models: a weights file, checkpoint, run folder or shipped name rebuilds its task and model.

>>> task, model, metrics = load_model("sort-5")
>>> task.name, task.config.n, round(metrics["prop_wrong"], 3) < 0.05
('sorting', 5, True)
"""

from __future__ import annotations

import os

from .checkpoint import load_state, read_weights, save_weights
from .runs import WEIGHTS_DIR, available, resolve
from .tasks import task_class

__all__ = ["WEIGHTS_DIR", "available", "load_model", "rebuild", "resolve", "save_weights"]


def rebuild(task_name: str, config: dict, state_dict: dict, *, source="weights", **context):
    """``(task, model)`` from a task name, its config and its weights; the model in eval mode.

    ``context``: where the task's data is (``data_root``), not part of the stored config.
    """
    task = task_class(task_name).from_config(config, **context)
    model = task.build_model()
    load_state(model, state_dict, source)
    return task, model.eval()


def load_model(source: str | os.PathLike, **context):
    """``(task, model, metrics)`` from a shipped name, a weights file, a checkpoint or a run folder.

    The model is on the CPU in eval mode; ``metrics`` are those stored with it (may be empty).
    """
    payload = read_weights(source)
    task, model = rebuild(
        payload["task"], payload["config"], payload["state_dict"], source=source, **context
    )
    return task, model, payload["metrics"]
