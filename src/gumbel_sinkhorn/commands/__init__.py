"""The subcommands of ``gumbel-sinkhorn``: one module each, found by being here.

A command module defines ``register(commands)``: it adds its parser to the ``commands``
subparsers and sets ``func`` (called with the parsed arguments) as the parser's default. Modules
whose names start with ``_`` are helpers. Command modules import PyTorch only inside the
functions that run a command, so that ``--help`` answers at once.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def command_modules() -> list[ModuleType]:
    """Every command module of this package, in alphabetical order."""
    return [
        importlib.import_module(f"{__name__}.{module.name}")
        for module in pkgutil.iter_modules(__path__)
        if not module.name.startswith("_")
    ]
