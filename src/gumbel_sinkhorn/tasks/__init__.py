"""The experiments, each a :class:`Task` in a module of this package, and their registry.

>>> {'jigsaw', 'sorting'} <= set(all_tasks())
True
>>> task_class("jigsaw").__name__
'JigsawTask'
"""

from __future__ import annotations

import importlib
import pkgutil

from ..errors import InvalidValueError
from .base import REGISTRY, Task

__all__ = ["Task", "all_tasks", "task_class"]


def all_tasks() -> dict[str, type[Task]]:
    """Every task, by name: the modules of this package are imported (once) to define them."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_") and module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")
    return dict(REGISTRY)


def task_class(name: str) -> type[Task]:
    """The task registered under ``name`` (as stored in weights files)."""
    tasks = REGISTRY if name in REGISTRY else all_tasks()
    if name not in tasks:
        raise InvalidValueError(f"unknown task {name!r}; expected one of {sorted(tasks)}")
    return tasks[name]
