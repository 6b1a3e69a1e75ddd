"""Train the three ranking heads on multi-digit MNIST, test them, write JSON and the tables.

    GUMBEL_SINKHORN_DATA=/data python scripts/ranking_results.py        # all four models
    python scripts/ranking_results.py --models rank-sinkhorn --sets 200  # one, quicker test

Every model is trained through ``gumbel-sinkhorn ranking train`` (run in this process) with the
same recipe and number of steps; a run folder that holds a checkpoint is resumed (a finished one
is only loaded), and a weights file that exists already is not trained again. Then every model
ranks the same test sets (``ranking evaluate``, seed 0) at n = 3, 5, 7, 9, 15, 32 (a classic head
only at its own n). Writes ``--output`` (JSON: metrics, steps, seconds, commands), the learning
curves and a figure of ranked test sets, and prints the Markdown tables of docs/RANKING.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from _commands import gumbel_sinkhorn  # scripts/_commands.py

from gumbel_sinkhorn.pretrained import WEIGHTS_DIR, load_model

EPOCHS, STEPS = 12, 500  # the first budget; --epochs gives another (weights named rank-*-20k)
RECIPE = ["--steps", STEPS, "--items", 100, "--lr", 1e-3, "--seed", 0, "--threads", 1]
PLACES = ["--cnn", "places", "--shift", 2]
MODELS = {  # weights name -> the options that differ
    "rank-sinkhorn": ["--head", "sinkhorn"],
    "rank-neuralsort": ["--head", "neuralsort"],
    "rank-classic-3": ["--head", "classic", "--n", 3],
    "rank-classic-5": ["--head", "classic", "--n", 5],
    "rank-classic-7": ["--head", "classic", "--n", 7],
    "rank-classic-9": ["--head", "classic", "--n", 9],
    "rank-classic-15": ["--head", "classic", "--n", 15],
    # the digit CNN with a linear path from the digits to the score (--skip)
    "rank-sinkhorn-skip": ["--head", "sinkhorn", "--skip"],
    "rank-neuralsort-skip": ["--head", "neuralsort", "--skip"],
    "rank-classic-5-skip": ["--head", "classic", "--n", 5, "--skip"],
    "rank-classic-15-skip": ["--head", "classic", "--n", 15, "--skip"],
    # and every training digit moved by up to 2 pixels (--shift 2)
    "rank-sinkhorn-skip-shift": ["--head", "sinkhorn", "--skip", "--shift", 2],
    "rank-neuralsort-skip-shift": ["--head", "neuralsort", "--skip", "--shift", 2],
    # the places CNN (each digit one of 10 latent symbols with learned values, one weight per
    # place); our head on centred scores (--no-standardise)
    "rank-sinkhorn-places-raw-shift": ["--head", "sinkhorn", "--no-standardise", *PLACES],
    "rank-neuralsort-places-shift": ["--head", "neuralsort", *PLACES],
    "rank-classic-5-places-shift": ["--head", "classic", "--n", 5, *PLACES],
    "rank-classic-15-places-shift": ["--head", "classic", "--n", 15, *PLACES],
}
# shipped weights trained with other options than the recipe's (the later ones win)
TRAINED_WITH = {"rank-sinkhorn-skip-40k": ["--threads", 2]}
SIZES = (3, 5, 7, 9, 15, 32)
PUBLISHED = {  # NeuralSort's Table 1 (Grover et al. 2019): exact match (element-wise)
    "Sinkhorn": ((.462, .561), (.038, .293), (.001, .197), (.000, .143), (.000, .078)),
    "Gumbel-Sinkhorn": ((.484, .575), (.033, .295), (.001, .189), (.000, .146), (.000, .078)),
    "deterministic NeuralSort": ((.930, .951), (.837, .927), (.738, .909), (.649, .896),
                                 (.386, .857)),
    "stochastic NeuralSort": ((.927, .950), (.835, .926), (.741, .909), (.646, .895),
                              (.418, .862)),
}  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--runs", type=Path, default=Path("runs/ranking"))
    parser.add_argument("--sets", type=int, default=1000, help="test sets per size")
    parser.add_argument("--epochs", type=int, default=EPOCHS,
                        help=f"epochs of {STEPS} steps (other than {EPOCHS}: the weights and run "
                        "folders are named for the steps, e.g. rank-sinkhorn-20k)")  # fmt: skip
    parser.add_argument("--output", type=Path,
                        help="the JSON (default: docs/ranking-results.json, with the budget's "
                        "suffix for other --epochs)")  # fmt: skip
    parser.add_argument("--figures", type=Path, default=Path("docs/figures"))
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="train and test only: no JSON, figures or tables (one model of many)",
    )
    parser.add_argument(
        "--loss-ablation",
        action="store_true",
        help="instead: our head with each loss for --ablation-steps steps",
    )
    parser.add_argument("--ablation-steps", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.loss_ablation:
        return loss_ablation(args)

    results = {}
    budget = "" if args.epochs == EPOCHS else f"-{args.epochs * STEPS // 1000}k"
    for model in args.models:
        name = model + budget
        weights = Path(os.path.relpath(WEIGHTS_DIR / f"{name}.pt"))
        run = args.runs / name.removeprefix("rank-")
        train = ["ranking", "train", *MODELS[model], "--epochs", args.epochs, *RECIPE,
                 *TRAINED_WITH.get(name, []), "--run-dir", run, "--weights", weights,
                 "--quiet"]  # fmt: skip
        if not weights.exists():
            resume = ["--resume"] if (run / "checkpoint.pt").exists() else []
            gumbel_sinkhorn(*train, *resume)
        out = args.runs / f"{name}-test.json"
        evaluate = ["ranking", "evaluate", "--pretrained", weights, "--n", *SIZES, "--sets",
                    args.sets, "--seed", 0, "--threads", 1, "--output", out]  # fmt: skip
        test = "gumbel-sinkhorn " + shlex.join(map(str, evaluate))
        if not out.exists() or json.loads(out.read_text())["sets"] != args.sets:
            gumbel_sinkhorn(*evaluate)
        task, _, metrics = load_model(weights)
        history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        results[name] = {
            "head": task.config.head,
            "train_n": list(task.config.n),
            "steps": metrics["steps"],
            "train_seconds": metrics["train_seconds"],
            "test": json.loads(out.read_text())["results"],
            "curve": [{k: v for k, v in row.items() if k != "items_per_s"} for row in history],
            "commands": [shlex.join(map(str, ["gumbel-sinkhorn", *train])), test],
        }
    if args.no_report:
        return 0
    args.output = args.output or Path(f"docs/ranking-results{budget}.json")
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(f"results written to {args.output}")
    if f"rank-sinkhorn{budget}" in results:
        weights = Path(os.path.relpath(WEIGHTS_DIR / f"rank-sinkhorn{budget}.pt"))
        gumbel_sinkhorn("ranking", "figure", "--pretrained", weights, "--n", 9, "--sets", 6,
                        "--output", args.figures / f"ranking-sets{budget}.png")  # fmt: skip
    curves(results, args.figures / f"ranking-curves{budget}.png")
    print(tables(results))
    return 0


def loss_ablation(args) -> int:
    """Our head trained with either loss, same steps, constant learning rate; test n = 5, 15."""
    rows = {}
    for loss in ("permutation", "reconstruction"):
        run = args.runs / f"loss-{loss}"
        train = ["ranking", "train", "--head", "sinkhorn", "--loss", loss, "--epochs", 1,
                 "--steps", args.ablation_steps, "--lr", 1e-3, "--lr-schedule", "none",
                 "--seed", 0, "--threads", 1, "--run-dir", run, "--quiet"]  # fmt: skip
        out = args.runs / f"loss-{loss}-test.json"
        if not out.exists():
            resume = ["--resume"] if (run / "checkpoint.pt").exists() else []
            gumbel_sinkhorn(*train, *resume)
            gumbel_sinkhorn("ranking", "evaluate", "--pretrained", run, "--n", 5, 15, "--sets",
                            500, "--seed", 0, "--threads", 1, "--output", out)  # fmt: skip
        rows[loss] = json.loads(out.read_text())["results"]
    print(f"\n| loss ({args.ablation_steps} steps) | n = 5 | n = 15 |\n|---|---|---|")
    for loss, r in rows.items():
        cells = [f"{r[n]['exact_match']:.3f} ({r[n]['elementwise']:.3f})" for n in ("5", "15")]
        print(f"| {loss} | " + " | ".join(cells) + " |")
    return 0


def curves(results: dict, path: Path) -> None:
    """Validation exact match against training steps, one line per model and set size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    for name, r in results.items():
        per_epoch = r["steps"] / len(r["curve"])
        for key in sorted({k for row in r["curve"] for k in row if k.startswith("val_exact")}):
            points = [(row["epoch"] * per_epoch, row[key]) for row in r["curve"] if key in row]
            ax.plot(*zip(*points, strict=True), marker=".", label=f"{name} n={key.split('n')[-1]}")
    ax.set_xlabel("training steps (100 items each)")
    ax.set_ylabel("exact match, 200 validation sets")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"curves written to {path}")


def tables(results: dict) -> str:
    """The Markdown table: measured rows (the classic heads, one per n, in one row), published."""
    head = "| method | " + " | ".join(f"n = {n}" for n in SIZES) + " | steps | training |"
    lines = [head, "|" + "---|" * (len(SIZES) + 3)]
    rows = {}  # row label -> [(results of one model), ...]
    for name, r in results.items():
        rows.setdefault("classic head" if r["head"] == "classic" else name, []).append(r)
    for label, models in rows.items():
        cells = []
        for n in SIZES:
            m = next((r["test"][str(n)] for r in models if str(n) in r["test"]), None)
            cells.append(f"{m['exact_match']:.3f} ({m['elementwise']:.3f})" if m else "–")
        steps = "/".join(sorted({f"{r['steps']:,}" for r in models}))
        minutes = sorted(round(r["train_seconds"] / 60) for r in models)
        wall = (
            f"{minutes[0]} min"
            if minutes[0] == minutes[-1]
            else f"{minutes[0]}–{minutes[-1]} min each"
        )
        lines.append(f"| {label} (measured) | " + " | ".join(cells) + f" | {steps} | {wall} |")
    for name, row in PUBLISHED.items():
        cells = [f"{e:.3f} ({w:.3f})" for e, w in row] + ["–"]
        lines.append(f"| {name} (published) | " + " | ".join(cells) + " | 100,000 | – |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
