"""Variational inference by rounds of agreement: what independent runs agree on becomes known.

Runs of VI from different seeds end in different local optima, but where they all give a neuron
the same name, that name is almost always right (docs/CELEGANS.md measures how often). Each round
runs ``runs`` independent fits; the neurons that every run names alike are given those names for
the next round, whose fits then start from more known neurons. The rounds stop when a round adds
no name, or after ``rounds``; the answer is the last round's run with the lowest final objective.
"""

from __future__ import annotations

import time

from .. import _checks
from ..errors import InvalidValueError
from .model import Worms
from .vi import InferenceResult, _restart_seeds, fit_vi


def fit_consensus(
    worms: Worms,
    *,
    runs: int = 3,
    rounds: int = 4,
    seed: int = 0,
    method: str = "gumbel-sinkhorn",
    marginal_samples: int = 100,
    progress: bool = True,
    **options,
) -> InferenceResult:
    """``fit_vi`` in rounds of ``runs`` fits; see the module's docstring.

    >>> from gumbel_sinkhorn.celegans import SimulationConfig, simulate
    >>> sim = simulate(SimulationConfig(n_steps=100, n_known=270), seed=0)
    >>> result = fit_consensus(sim.worms, runs=2, rounds=2, steps=5, progress=False)
    >>> result.perm.shape, 1 <= len(result.agreed) <= 2
    (torch.Size([1, 279]), True)

    ``options`` go to every ``fit_vi`` call (``steps``, ``lr``, ``tau``, ``restarts``, ...); the
    fits' seeds are ``seed`` and seeds drawn from it, so the same ``seed`` gives the same result.
    ``agreed`` of the result: how many neurons not yet known (over all worms) every run of each
    round named alike (those of every round but the last are known in the next);
    ``seconds``: every fit's time. MAP has no randomness, so its runs would always agree: refused.
    """
    if method == "map":
        raise InvalidValueError("runs by agreement need a random method; 'map' has no randomness")
    runs = _checks.count(runs, "runs", minimum=2)
    rounds = _checks.count(rounds, "rounds")
    seeds = _restart_seeds(_checks.count(seed, "seed", minimum=0), runs * rounds)
    start, agreed = time.perf_counter(), []
    for r in range(rounds):
        last = r == rounds - 1
        fits = [
            fit_vi(
                worms,
                method=method,
                seed=s,
                marginal_samples=marginal_samples,
                progress=progress,
                **options,
            )
            for s in seeds[r * runs : (r + 1) * runs]
        ]
        first = fits[0].perm
        alike = ~worms.known
        for other in fits[1:]:
            alike &= other.perm == first
        agreed.append(int(alike.sum()))
        if last or not alike.any():
            break
        worms = worms.name(alike, first)
    objectives = [f.objectives[f.kept] for f in fits]
    kept = min(range(runs), key=objectives.__getitem__)
    answer = fits[kept]
    return InferenceResult(
        answer.method,
        answer.perm,
        answer.marginals,
        time.perf_counter() - start,
        answer.history,
        objectives,
        kept,
        agreed,
    )
