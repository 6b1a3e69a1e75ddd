"""Train the sorting networks, ship their weights and print the results table of docs/RESULTS.md.

    python scripts/sorting_results.py                    # sort-N for N = 5, 10, 15, 80, 100, 120
    python scripts/sorting_results.py --model mlp-raw --n 10 100    # the authors' network

Every model is trained on U(0, 1) with the same recipe (only --n differs) and evaluated on 1,000
held-out lists from U(0, 1), U(0, 10), U(1000, 1001), U(-5, 5) and N(0, 1), through the
``gumbel-sinkhorn sorting`` command in this process; the output lists the exact commands.
``anchors`` weights go to src/gumbel_sinkhorn/weights/sort-N.pt (shipped), the others to --runs.
A model whose weights file exists already is evaluated, not trained again.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from _commands import gumbel_sinkhorn  # scripts/_commands.py

from gumbel_sinkhorn import pretrained

TESTS = {  # test lists: label -> options of `sorting evaluate`
    "U(0, 1)": ["--low", 0, "--high", 1],
    "U(0, 10)": ["--low", 0, "--high", 10],
    "U(1000, 1001)": ["--low", 1000, "--high", 1001],
    "U(-5, 5)": ["--low", -5, "--high", 5],
    "N(0, 1)": ["--distribution", "normal", "--mean", 0, "--std", 1],
}
MODELS = {
    "anchors": [],
    "mlp": ["--model", "mlp"],
    "mlp-raw": ["--model", "mlp", "--no-standardize"],
}
RECIPE = ["--epochs", 6, "--steps", 100, "--batch", 10, "--lr", 0.1, "--seed", 0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[5, 10, 15, 80, 100, 120])
    parser.add_argument("--model", choices=sorted(MODELS), default="anchors")
    parser.add_argument("--runs", type=Path, default=Path("runs/sorting"))
    parser.add_argument("--n-lists", type=int, default=1000)
    args = parser.parse_args(argv)

    table, commands = [], []
    for n in args.n:
        name = f"sort-{n}" if args.model == "anchors" else f"sort-{args.model}-{n}"
        folder = pretrained.WEIGHTS_DIR if args.model == "anchors" else args.runs
        weights = Path(os.path.relpath(folder / f"{name}.pt"))
        train = [
            "sorting",
            "train",
            "--n",
            n,
            *MODELS[args.model],
            *RECIPE,
            "--run-dir",
            args.runs / name,
            "--weights",
            weights,
        ]
        if not weights.exists():
            gumbel_sinkhorn(*train, "--quiet")
        commands.append(f"- N = {n}: `gumbel-sinkhorn {shlex.join(map(str, train))}`")
        seconds = pretrained.load_model(weights)[2]["train_seconds"]
        source = name if args.model == "anchors" else weights
        for label, options in TESTS.items():
            out = args.runs / f"{name}-{label.replace(' ', '')}.json"
            commands.append(
                "  `"
                + gumbel_sinkhorn(
                    "sorting",
                    "evaluate",
                    "--pretrained",
                    source,
                    "--n-lists",
                    args.n_lists,
                    *options,
                    "--output",
                    out,
                )
                + "`"
            )
            m = json.loads(out.read_text())
            table.append(
                f"| {n} | {label} | {m['prop_wrong']:.4f} | "
                f"{m['prop_any_wrong']:.3f} | {m['kendall_tau']:.4f} | {seconds:.0f} s |"
            )

    print(f"\nModel: {args.model}\n")
    print("| N | test lists | prop. wrong | prop. any wrong | Kendall tau | training |")
    print("|---|---|---|---|---|---|")
    print("\n".join(table))
    print("\n" + "\n".join(commands))
    return 0


if __name__ == "__main__":
    sys.exit(main())
