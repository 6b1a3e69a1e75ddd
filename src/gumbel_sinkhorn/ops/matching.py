"""Hard matching: the assignment that maximises the total score (linear assignment)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .. import _checks
from ..errors import InvalidValueError

try:  # lapx's batched Jonker-Volgenant solver: native, multi-threaded, no per-item Python
    from lap import lapjvh_batch
except ImportError:  # lapx missing, or the older `lap` package installed under the same name
    lapjvh_batch = None

# Below this much work (batch x N x M) a thread pool costs more than it saves (SciPy fallback).
_MIN_PARALLEL_WORK = 2**16


def matching(log_alpha: torch.Tensor) -> torch.Tensor:
    """The assignment maximising ``sum_i log_alpha[..., i, perm[i]]`` (Jonker-Volgenant).

    >>> import torch
    >>> matching(torch.tensor([[0.0, 5.0], [1.0, 0.0]]))
    tensor([1, 0])
    >>> matching(torch.tensor([[0.0, 1.0, 9.0]]))          # N < M: a partial permutation
    tensor([2])

    Shapes: ``(..., N, M)`` float in with ``N <= M``, ``(..., N)`` int64 out on the input's
    device: ``perm[..., i]`` is the column assigned to row ``i`` (distinct columns): where item
    ``i`` goes, so ``place(x, perm)`` puts the items there (``permute`` reads the other way, see
    ``gumbel_sinkhorn.ops.permutation``). ``-inf`` marks
    a forbidden pair. Not differentiable (the input is detached). The batch is copied to the host
    once, in float64, and solved by lapx's batched solver across ``torch.get_num_threads()``
    threads; batches with ``-inf`` entries (or without lapx) go to SciPy's
    ``linear_sum_assignment``, on threads. Both are exact: the total is the optimum.
    """
    finite = _checks.finite_scores(log_alpha, square=False, posinf=False)
    if log_alpha.is_meta:
        raise InvalidValueError(
            "matching needs the values of log_alpha: it cannot run on the meta device"
        )
    _checks.not_tall(log_alpha, "matching")
    n, m = log_alpha.shape[-2:]
    host = log_alpha.detach().cpu()  # the one copy to the host (none for CPU tensors)
    if host.dtype not in (torch.float32, torch.float64):
        host = host.float()  # float16 / bfloat16: NumPy cannot take them as they are
    costs = np.negative(host.reshape(-1, n, m).numpy(), dtype=np.float64)
    if len(costs) == 0:
        cols = np.zeros((0, n), dtype=np.int64)
    elif lapjvh_batch is not None and finite:
        threads = min(torch.get_num_threads(), len(costs))
        _, cols = lapjvh_batch(costs, extend_cost=n != m, return_cost=False, n_threads=threads)
        cols = np.stack(cols)
    else:
        cols = _scipy(costs)
    out = torch.from_numpy(cols).to(device=log_alpha.device, dtype=torch.int64)
    return out.reshape(*log_alpha.shape[:-2], n)


def _scipy(costs: np.ndarray) -> np.ndarray:
    """SciPy's solver over a batch (B, N, M), on ``torch.get_num_threads()`` threads (it releases
    the GIL)."""
    workers = min(torch.get_num_threads(), len(costs))
    if workers > 1 and costs.size >= _MIN_PARALLEL_WORK:
        with ThreadPoolExecutor(workers) as pool:
            chunk = max(1, len(costs) // (4 * workers))
            return np.stack(list(pool.map(_solve_one, costs, chunksize=chunk)))
    return np.stack([_solve_one(c) for c in costs])


def _solve_one(costs: np.ndarray) -> np.ndarray:
    try:
        _, cols = linear_sum_assignment(costs)
    except ValueError as err:
        raise InvalidValueError(
            "matching: no assignment avoids every -inf (forbidden) entry of a score matrix"
        ) from err
    return cols
