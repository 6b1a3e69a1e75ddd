"""Naming the neurons of C. elegans recordings: the paper's inference over permutations.

>>> from gumbel_sinkhorn.celegans import SimulationConfig, accuracy, fit_vi, simulate
>>> sim = simulate(SimulationConfig(n_worms=1, n_steps=200, eta=0.0075, n_known=100), seed=0)
>>> result = fit_vi(sim.worms, method="gumbel-sinkhorn", steps=20, progress=False)
>>> 0.0 <= accuracy(result.perm, sim) <= 1.0
True

``model`` simulates worms (weights on the connectome's pattern, activity, permutations, known
neurons, position constraints); ``vi`` fits Gumbel-Sinkhorn variational inference and the naive-VI
and MAP baselines; ``mcmc`` the Gibbs / Metropolis-Hastings baseline; ``experiment`` the paper's
two tables.
"""

from .mcmc import fit_mcmc
from .model import (
    Simulation,
    SimulationConfig,
    Worms,
    accuracy,
    candidate_mask,
    check_assignable,
    random_weights,
    simulate,
)
from .vi import METHODS, InferenceResult, fit_vi

__all__ = [
    "METHODS",
    "InferenceResult",
    "Simulation",
    "SimulationConfig",
    "Worms",
    "accuracy",
    "candidate_mask",
    "check_assignable",
    "fit_mcmc",
    "fit_vi",
    "random_weights",
    "simulate",
]
