"""Helpers of the celegans tests (a plain module: a second conftest.py module name breaks the
doctest collection of tests/conftest.py)."""

import contextlib

import torch

from gumbel_sinkhorn.celegans import SimulationConfig, simulate
from gumbel_sinkhorn.data.celegans import Connectome


def tiny_connectome(n: int = 12, seed: int = 0, group: int = 3) -> Connectome:
    """A made-up worm: ``n`` neurons in groups of ``group`` at one position, random wiring."""
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=g) < 0.4, diagonal=1)
    positions = torch.arange(n, dtype=torch.float64).div(group).floor().div(10)
    return Connectome(
        names=tuple(f"N{i:02d}" for i in range(n)),
        positions=positions,
        regions=("H",) * n,
        chemical=upper.long(),
        gap=torch.zeros(n, n, dtype=torch.int64),
        unplaced=(),
    )


def easy_simulation():
    """Two worms of 12 neurons, 3 candidates each, half of them named, long recordings: every
    method finds the names (seed 0 of the same settings traps VI in a local optimum: swapping
    two names in both worms while the weights follow)."""
    config = SimulationConfig(n_worms=2, n_steps=2000, eta=0.0, n_known=6)
    return simulate(config, seed=2, connectome=tiny_connectome())


def trap_simulation():
    """Simulation 0 of the easy settings: VI from seed 0 swaps two names in both worms while the
    weights follow, and runs that find the names end with a lower objective."""
    config = SimulationConfig(n_worms=2, n_steps=2000, eta=0.0, n_known=6)
    return simulate(config, seed=0, connectome=tiny_connectome())


@contextlib.contextmanager
def single_thread():
    """One torch thread, as the experiments run: on a busy 2-core machine two threads of small
    matrix products wait on each other tens of times longer than they compute."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
