"""MCMC baseline: Gibbs sampling of the weights, Metropolis-Hastings swaps of two names.

Given every worm's permutation, the weights' rows are independent Bayesian linear regressions
(Gaussian prior N(0, 1) on the pattern), sampled exactly. Given the weights, a move picks a worm
and a recorded neuron ``i`` whose name is not given, then one of ``i``'s allowed names; if its
holder ``i'`` may take ``i``'s name, the two trade names with the Metropolis-Hastings probability.
The proposal is symmetric (the allowed names do not depend on the state). Each sweep makes one
move per unnamed neuron and worm, then samples the weights. The answer is the hard matching of
the names' frequencies after burn-in.

Optionally the burn-in is annealed: the likelihood enters sweep ``s`` raised to the power
``anneal_from ** (1 - s / burn_in)`` (in the weights' conditional and in the swaps' acceptance),
rising geometrically to 1 at the end of the burn-in, so that early on the weights do not yet
pin down the random names the chain starts from. The sweeps after burn-in, the only ones counted,
are the exact chain.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm import tqdm

from .. import _checks
from ..configs import number
from ..errors import InvalidValueError
from ..ops import matching
from .likelihood import Stats
from .model import Worms
from .vi import InferenceResult


def fit_mcmc(
    worms: Worms,
    *,
    sweeps: int = 300,
    burn_in: int | None = None,
    seed: int = 0,
    anneal_from: float = 1.0,
    progress: bool = True,
) -> InferenceResult:
    """Sample the permutations and the weights; see the module's docstring.

    >>> from gumbel_sinkhorn.celegans import SimulationConfig, simulate
    >>> sim = simulate(SimulationConfig(n_steps=100, n_known=270), seed=0)
    >>> fit_mcmc(sim.worms, sweeps=3, progress=False).perm.shape
    torch.Size([1, 279])

    ``burn_in`` sweeps are left out of the frequencies (default: half of ``sweeps``); ``history``
    holds the log-likelihood after each sweep. ``anneal_from`` in (0, 1]: the likelihood's power
    at the first sweep (1: no annealing; see the module's docstring). Same ``seed``, same result.
    """
    sweeps = _checks.count(sweeps, "sweeps")
    burn_in = sweeps // 2 if burn_in is None else _checks.count(burn_in, "burn_in", minimum=0)
    if burn_in >= sweeps:
        raise InvalidValueError(f"burn_in must be less than sweeps ({sweeps}), got {burn_in}")
    anneal_from = number(anneal_from, "anneal_from", high=1)
    start = time.perf_counter()
    rng = np.random.default_rng(_checks.count(seed, "seed", minimum=0))
    stats = Stats.from_traces(worms.Y, dtype=torch.float64)
    mask = worms.mask.numpy()
    n_worms, n = mask.shape[:2]
    sigma2 = worms.noise_std**2
    chain = _Chain(stats, worms.pattern.numpy(), _random_assignment(worms.mask, rng))
    allowed = [[np.flatnonzero(mask[j, i]) for i in range(n)] for j in range(n_worms)]
    free = [np.flatnonzero(~worms.known[j].numpy()) for j in range(n_worms)]
    counts = np.zeros((n_worms, n, n))
    history = []
    for sweep in tqdm(range(sweeps), desc="MCMC", disable=None if progress else True):
        beta = anneal_from ** (1 - sweep / burn_in) if sweep < burn_in else 1.0
        W = chain.sample_weights(rng, sigma2 / beta)
        M = W.T @ W
        for j in range(n_worms):
            for i in rng.permutation(free[j]):
                names = allowed[j][i]
                other = chain.holder[j, names[rng.integers(len(names))]]
                if other == i or not mask[j, other, chain.perm[j, i]]:
                    continue
                k, m = chain.perm[j, i], chain.perm[j, other]
                delta = chain.swap_delta(j, k, m, W, M)
                if np.log(rng.random()) < -beta * delta / (2 * sigma2):
                    chain.swap(j, i, other)
        history.append(-chain.sq_error(W) / (2 * sigma2))
        if sweep >= burn_in:
            counts[np.arange(n_worms)[:, None], np.arange(n), chain.perm] += 1
    marginals = torch.from_numpy(counts / (sweeps - burn_in))
    log_freq = torch.where(worms.mask, marginals.clamp_min(1e-12).log(), float("-inf"))
    perm = matching(log_freq)
    return InferenceResult("mcmc", perm, marginals, time.perf_counter() - start, history)


def _random_assignment(mask: torch.Tensor, rng: np.random.Generator) -> np.ndarray:
    """A random complete assignment within ``mask`` (J, N, N): the matching of random scores."""
    noise = torch.from_numpy(rng.random(mask.shape))
    return matching(noise.masked_fill(~mask, float("-inf"))).numpy()


class _Chain:
    """The permutations and, per worm, the statistics in name order (``X = P^T Y``):
    ``gram[j] = Xb Xb^T`` and ``cross[j] = Xb Xa^T``, and their sums over worms."""

    def __init__(self, stats: Stats, pattern: np.ndarray, perm: np.ndarray):
        self.perm = perm.copy()
        self.holder = np.argsort(perm, axis=1)
        self.energy = stats.energy.numpy()
        gram, cross = stats.gram.numpy(), stats.cross.numpy()
        self.gram = np.stack([g[h][:, h] for g, h in zip(gram, self.holder, strict=True)])
        self.cross = np.stack([c[h][:, h] for c, h in zip(cross, self.holder, strict=True)])
        self.parents = [np.flatnonzero(row) for row in pattern]

    def sample_weights(self, rng: np.random.Generator, sigma2: float) -> np.ndarray:
        """Each row of W from its Gaussian conditional given the current names."""
        gram, cross = self.gram.sum(0), self.cross.sum(0)
        n = gram.shape[0]
        W = np.zeros((n, n))
        for k, pa in enumerate(self.parents):
            precision = gram[np.ix_(pa, pa)] / sigma2 + np.eye(len(pa))
            chol = np.linalg.cholesky(precision)
            mean = np.linalg.solve(precision, cross[pa, k] / sigma2)
            # L^T z' = z gives z' ~ N(0, precision^-1)
            W[k, pa] = mean + np.linalg.solve(chol.T, rng.standard_normal(len(pa)))
        return W

    def sq_error(self, W: np.ndarray) -> float:
        gram, cross = self.gram.sum(0), self.cross.sum(0)
        return float(self.energy.sum() - 2 * (W.T * cross).sum() + (W @ gram * W).sum())

    def swap_delta(self, j: int, k: int, m: int, W: np.ndarray, M: np.ndarray) -> float:
        """Change of worm ``j``'s squared error ``-2 tr(W cross) + tr(M gram)`` (M = W^T W)
        when names ``k`` and ``m`` trade recorded neurons."""
        return -2 * _change(self.cross[j], W.T, k, m) + _change(self.gram[j], M, k, m)

    def swap(self, j: int, i: int, other: int) -> None:
        k, m = self.perm[j, i], self.perm[j, other]
        self.perm[j, i], self.perm[j, other] = m, k
        self.holder[j, k], self.holder[j, m] = other, i
        for table in (self.gram[j], self.cross[j]):
            table[[k, m]] = table[[m, k]]
            table[:, [k, m]] = table[:, [m, k]]


def _change(table: np.ndarray, weights: np.ndarray, k: int, m: int) -> float:
    """Change of ``sum(weights * table)`` when rows and columns ``k``, ``m`` of ``table`` swap."""
    order = np.arange(table.shape[0])
    order[k], order[m] = m, k
    pair = [k, m]
    rows = table[[m, k]][:, order] - table[pair]
    cols = table[:, [m, k]][order] - table[:, pair]
    cols[pair] = 0  # the four corners are counted with the rows
    return float((weights[pair] * rows).sum() + (weights[:, pair] * cols).sum())
