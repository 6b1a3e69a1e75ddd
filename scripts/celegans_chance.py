"""Chance level of each cell of the C. elegans tables: naming neurons without their activity.

    GUMBEL_SINKHORN_DATA=/data python scripts/celegans_chance.py [--draws 20]

For each cell and each of the tables' simulations (seeds 0-4), names the neurons by hard matching
of Gumbel noise on the allowed names (a random complete assignment within the position
constraints, using nothing of the recordings) ``--draws`` times, and prints its mean accuracy on
the neurons not named (the tables' metric) and on all neurons (the named ones are always right)
beside the published numbers of that cell: a method that does not learn from the activity lands
there.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from gumbel_sinkhorn import matching, sample_gumbel
from gumbel_sinkhorn.celegans import accuracy, simulate
from gumbel_sinkhorn.celegans.experiment import TABLES

SIMULATIONS = range(5)


def chance(cell, draws: int) -> tuple[float, float]:
    """Mean accuracy of ``draws`` random allowed assignments per simulation of ``cell``, on the
    neurons not named and on all of them."""
    values, overall = [], []
    for seed in SIMULATIONS:
        sim = simulate(cell.config, seed=seed)
        blocked = torch.zeros(sim.worms.mask.shape).masked_fill(~sim.worms.mask, float("-inf"))
        nobody_named = torch.zeros_like(sim.worms.known)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(draws):
            noise = sample_gumbel(blocked.shape, generator=generator)
            perm = matching(blocked + noise)
            values.append(accuracy(perm, sim))
            overall.append(accuracy(perm, (sim.perm, nobody_named)))
    return statistics.mean(values), statistics.mean(overall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=20, help="assignments per simulation")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        "| table | cell | chance, unnamed neurons | chance, all neurons "
        "| published: naive VI | MAP | MCMC | Gumbel-Sinkhorn VI |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for table in TABLES.values():
        for cell in table.cells:
            side = table.groups.index(cell.group)
            published = [table.published[m][cell.column][side] for m in table.published]
            row = " | ".join(f"{p:.2f}" for p in published)
            unnamed, overall = chance(cell, args.draws)
            print(f"| {table.name} | {cell.label} | {unnamed:.3f} | {overall:.3f} | {row} |")


if __name__ == "__main__":
    main()
