"""Probe: does the final VI objective pick the better of several Gumbel-Sinkhorn VI restarts?

    GUMBEL_SINKHORN_DATA=/data python scripts/celegans_restarts.py "10 % known, eta = 0.1" 0,1 3

For each simulation of the named cell (the tables' simulations: seed = its index), runs
Gumbel-Sinkhorn VI RESTARTS times (1,500 steps, inference seeds 100 * simulation + r; r = 0 has the
table's seed), prints each run's objective (mean of its last 15 recorded values, lower is better)
and accuracy, and the accuracy of the run the objective picks against the mean.
"""

from __future__ import annotations

import statistics
import sys

import torch

from gumbel_sinkhorn.celegans import accuracy, fit_vi, simulate
from gumbel_sinkhorn.celegans.experiment import TABLES


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        sys.exit(__doc__)
    label, sims, restarts = argv[0], [int(s) for s in argv[1].split(",")], int(argv[2])
    cells = [c for table in TABLES.values() for c in table.cells if c.label == label]
    if not cells:
        sys.exit(f"no cell {label!r}; cells: {[c.label for t in TABLES.values() for c in t.cells]}")
    torch.set_num_threads(1)
    for sim_index in sims:
        sim = simulate(cells[0].config, seed=sim_index)
        runs = []
        for r in range(restarts):
            seed = 100 * sim_index + r
            result = fit_vi(sim.worms, steps=1500, n_iter=10, seed=seed, progress=False)
            objective, right = statistics.mean(result.history[-15:]), accuracy(result.perm, sim)
            runs.append((objective, right))
            print(f"sim {sim_index} restart {r}: objective {objective:.1f}, accuracy {right:.3f}")
        chosen = min(runs)[1]
        mean = statistics.mean(a for _, a in runs)
        print(f"sim {sim_index}: chosen by the objective {chosen:.3f}, mean of the runs {mean:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
