"""gumbel-sinkhorn: learn latent permutations with Gumbel-Sinkhorn networks (Mena et al., 2018).

>>> import torch, gumbel_sinkhorn as gs
>>> log_alpha = torch.randn(8, 5, 5)
>>> P = gs.gumbel_sinkhorn(log_alpha, tau=0.5)           # soft, differentiable samples
>>> perm = gs.matching(log_alpha)                         # hard assignment, (8, 5) int64
>>> bool((gs.permutation_matrix(perm).sum(-2) == 1).all())
True

The names below load on first use (PyTorch is imported then, not by ``import gumbel_sinkhorn``),
so that the command line answers ``--help`` at once.
"""

from __future__ import annotations

import importlib

from .errors import UserError

__version__ = "0.1.0"

_LAZY = {
    "kendall_tau": "metrics",
    "l1_error": "metrics",
    "l2_error": "metrics",
    "prop_any_wrong": "metrics",
    "prop_wrong": "metrics",
    "SinkhornConvergenceWarning": "ops",
    "SinkhornInfo": "ops",
    "gumbel_matching": "ops",
    "gumbel_sinkhorn": "ops",
    "invert_permutation": "ops",
    "log_sinkhorn": "ops",
    "matching": "ops",
    "permutation_indices": "ops",
    "permutation_matrix": "ops",
    "permute": "ops",
    "place": "ops",
    "random_permutation": "ops",
    "sample_gumbel": "ops",
    "sinkhorn": "ops",
}

_SUBMODULES = ("distributions",)

__all__ = ["UserError", *_SUBMODULES, *sorted(_LAZY)]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
