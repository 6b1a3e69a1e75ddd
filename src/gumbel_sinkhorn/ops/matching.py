"""Hard matching: the permutation that maximises the total score (linear assignment)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .. import _checks

# Below this many problems a thread pool costs more than it saves.
_MIN_PARALLEL_BATCH = 16


def _solve_one(scores: np.ndarray) -> np.ndarray:
    try:
        _, cols = linear_sum_assignment(scores, maximize=True)
    except ValueError as err:
        raise ValueError(
            "matching: no permutation avoids every -inf (forbidden) entry of a score matrix"
        ) from err
    return cols


def matching(log_alpha: torch.Tensor) -> torch.Tensor:
    """The permutation maximising ``sum_i log_alpha[..., i, perm[i]]`` (Hungarian / JV).

    >>> import torch
    >>> matching(torch.tensor([[0.0, 5.0], [1.0, 0.0]]))
    tensor([1, 0])

    Shapes: ``(..., N, N)`` float in, ``(..., N)`` int64 out on the input's device;
    ``perm[..., i]`` is the column assigned to row ``i``. ``-inf`` marks a forbidden pair.
    Not differentiable (the input is detached). The batch is copied to the host once and solved
    with SciPy's ``linear_sum_assignment`` across threads (it releases the GIL).
    """
    _checks.scores(log_alpha, posinf=False)
    if log_alpha.is_meta:
        raise ValueError("matching needs the values of log_alpha: it cannot run on the meta device")
    n = log_alpha.shape[-1]
    batch_shape = log_alpha.shape[:-2]
    flat = log_alpha.detach().to("cpu", torch.float64).reshape(-1, n, n).numpy()
    workers = min(len(flat) // _MIN_PARALLEL_BATCH, os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            cols = list(pool.map(_solve_one, flat, chunksize=max(1, len(flat) // (4 * workers))))
    else:
        cols = [_solve_one(m) for m in flat]
    out = torch.from_numpy(np.stack(cols) if cols else np.zeros((0, n), dtype=np.int64))
    return out.to(device=log_alpha.device, dtype=torch.int64).reshape(*batch_shape, n)
