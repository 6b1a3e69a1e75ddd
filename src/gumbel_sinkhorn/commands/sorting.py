"""``gumbel-sinkhorn sorting``: train a network to sort numbers, evaluate it, draw what it learned.

gumbel-sinkhorn sorting train --n 100 --run-dir runs/sort-100 --weights sort-100.pt
gumbel-sinkhorn sorting evaluate --pretrained sort-100 --n-lists 1000 --low 0 --high 10
gumbel-sinkhorn sorting figure --pretrained sort-15 --output docs/sorting.png
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from .. import checkpoint, pretrained
from ..cli import HelpFormatter, UsageError
from ..data.numbers import KINDS, Distribution, sample_lists
from ..distributed import is_main_process
from ..figures import sorting_matrices
from ..tasks.sorting import METRICS, MODELS, SortingTask, predict_positions, score
from ._runs import add_resume_option, resumed, run_options


def _task_from_args(args) -> SortingTask:
    return SortingTask(
        n=args.n,
        model=args.model,
        hidden=args.hidden,
        standardize=not args.no_standardize,
        tau=args.tau,
        n_iter=args.n_iter,
        n_samples=args.samples,
        noise_factor=args.noise_factor,
        batch=args.batch,
        steps_per_epoch=args.steps,
        eval_lists=args.eval_lists,
        train=Distribution(low=args.low, high=args.high),
    )


def train(args) -> int:
    from ..train import fit

    args = resumed(args)
    task = _task_from_args(args)
    if args.weights:  # found out now, not after training
        checkpoint.writable_folder(Path(args.weights).parent)
    start = time.perf_counter()
    history = fit(
        task,
        args.run_dir,
        epochs=args.epochs,
        lr=args.lr,
        seed=args.seed,
        resume=args.resume,
        progress=not args.quiet,
        device=args.device,
        lr_schedule=args.lr_schedule,
        options=run_options(args),
    )
    seconds = time.perf_counter() - start
    final = history[-1]
    print(
        f"trained {args.epochs} epochs in {sum(r['seconds'] for r in history):.0f} s of training "
        f"({seconds:.0f} s in this call); held-out {task.test}: " + _inline(final)
    )
    if args.weights and is_main_process():  # under torchrun, rank 0 alone writes the weights
        _, model, _ = pretrained.load_model(args.run_dir)
        metrics = {k: final[k] for k in METRICS if k in final}
        metrics["train_seconds"] = sum(r["seconds"] for r in history)
        if not args.resume:
            metrics["wall_seconds"] = seconds  # the whole command, evaluations included
        path = pretrained.save_weights(args.weights, task, model, metrics)
        print(f"weights written to {path}")
    return 0


def _inline(metrics: dict) -> str:
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in METRICS if k in metrics)


def _test_distribution(args) -> Distribution:
    return Distribution(
        args.distribution, low=args.low, high=args.high, mean=args.mean, std=args.std
    )


def _load(source):
    task, model, _ = pretrained.load_model(source)
    if task.name != "sorting":
        raise UsageError(f"{source} holds a {task.name} model, not a sorting model")
    return task, model


def evaluate(args) -> int:
    task, model = _load(args.pretrained)
    task = dataclasses.replace(
        task, test=_test_distribution(args), eval_lists=args.n_lists, eval_seed=args.seed
    )
    start = time.perf_counter()
    metrics = task.evaluate(model)
    seconds = time.perf_counter() - start
    print(f"{args.pretrained}: {task.n} numbers per list, {task.eval_lists} lists from {task.test}")
    print(f"{'metric':<16}{'value':>10}")
    for name in METRICS:
        print(f"{name:<16}{metrics[name]:>10.4f}")
    if args.output:
        report = {
            **metrics,
            "model": str(args.pretrained),
            "n": task.n,
            "n_lists": task.eval_lists,
            "seed": task.eval_seed,
            "distribution": dataclasses.asdict(task.test),
            "seconds": seconds,
        }
        checkpoint.write_json(args.output, report)
        print(f"metrics written to {args.output}")
    return 0


def figure(args) -> int:
    task, model = _load(args.pretrained)
    lists = sample_lists(
        1, task.n, _test_distribution(args), generator=torch.Generator().manual_seed(args.seed)
    )
    with torch.no_grad():
        log_alpha = model(lists.random)[0]
    path = sorting_matrices(
        log_alpha,
        lists.random[0],
        args.output,
        tau=args.tau,
        n_iter=args.n_iter,
        title=f"{args.pretrained} (trained on {task.train}): "
        f"one list from {_test_distribution(args)}",
    )
    positions = predict_positions(model, lists.random)
    print(f"figure written to {path}; " + _inline(score(positions, lists)))
    return 0


def _add_test_distribution(parser, what: str) -> None:
    group = parser.add_argument_group(f"{what} lists")
    group.add_argument(
        "--distribution",
        choices=KINDS,
        default="uniform",
        help="draw the numbers from a uniform or a normal distribution (default uniform)",
    )
    group.add_argument("--low", type=float, default=0.0, help="uniform: lower end (default 0)")
    group.add_argument("--high", type=float, default=1.0, help="uniform: upper end (default 1)")
    group.add_argument("--mean", type=float, default=0.0, help="normal: mean (default 0)")
    group.add_argument(
        "--std", type=float, default=1.0, help="normal: standard deviation (default 1)"
    )


def _add_model_source(parser) -> None:
    parser.add_argument(
        "--pretrained",
        required=True,
        metavar="NAME_OR_PATH",
        help="a shipped model (" + ", ".join(_shipped()) + "), a weights file, "
        "a checkpoint or a run folder",
    )


def _shipped() -> list[str]:
    return [name for name in pretrained.available() if name.startswith("sort-")] or ["none"]


def register(commands) -> None:
    parser = commands.add_parser(
        "sorting",
        help="learn to sort numbers from sorted lists alone (the paper's first experiment)",
        description="Learn to sort lists of numbers seeing only the sorted lists, never the "
        "permutation; evaluate with hard matching.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = actions.add_parser(
        "train",
        help="train a sorting network",
        formatter_class=HelpFormatter,
        description="Train on fresh lists from U(--low, --high) every step; after each epoch, "
        "evaluate on held-out lists from the same range and write a checkpoint.",
    )
    p.add_argument(
        "--n",
        "--numbers",
        type=int,
        default=100,
        help="numbers per list (under torchrun write --numbers: torchrun's own parser "
        "rejects --n as an abbreviation of its options)",
    )
    p.add_argument(
        "--model",
        choices=MODELS,
        default="anchors",
        help="anchors: squared distance of each standardised number to n learned "
        "anchors (sorts exactly once the anchors increase); mlp: the authors' "
        "per-number MLP",
    )
    p.add_argument("--hidden", type=int, default=32, help="mlp: hidden units")
    p.add_argument(
        "--no-standardize",
        action="store_true",
        help="mlp: feed raw numbers, as the authors did (fails outside the training range)",
    )
    p.add_argument("--epochs", type=int, default=6, help="epochs")
    p.add_argument("--steps", type=int, default=100, help="steps (batches) per epoch")
    p.add_argument("--batch", type=int, default=10, help="lists per batch")
    p.add_argument("--lr", type=float, default=0.1, help="Adam learning rate")
    p.add_argument(
        "--lr-schedule",
        choices=("cosine", "none"),
        default="cosine",
        help="learning-rate schedule over the epochs",
    )
    p.add_argument("--tau", type=float, default=1.0, help="Gumbel-Sinkhorn temperature")
    p.add_argument("--n-iter", type=int, default=10, help="Sinkhorn iterations")
    p.add_argument("--samples", type=int, default=5, help="Gumbel-Sinkhorn samples per list")
    p.add_argument("--noise-factor", type=float, default=1.0, help="scale of the Gumbel noise")
    p.add_argument("--low", type=float, default=0.0, help="training lists: U(low, high)")
    p.add_argument("--high", type=float, default=1.0, help="training lists: upper end")
    p.add_argument("--eval-lists", type=int, default=1000, help="held-out lists per evaluation")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--run-dir", required=True, help="folder for checkpoint.pt and metrics.jsonl")
    add_resume_option(p)
    p.add_argument(
        "--weights",
        metavar="PATH",
        help="also write a small weights file (loadable with --pretrained PATH)",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=train)

    p = actions.add_parser(
        "evaluate",
        help="sort held-out lists with a trained network and report the paper's metrics",
        description="Sort --n-lists random lists by hard matching (no noise); print prop_wrong, "
        "prop_any_wrong and kendall_tau, and write them as JSON with --output.",
    )
    _add_model_source(p)
    p.add_argument("--n-lists", type=int, default=1000, help="lists to sort (default 1000)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the lists (default 1234)")
    p.add_argument("--output", metavar="JSON", help="write the metrics to this JSON file")
    _add_test_distribution(p, "test")
    p.set_defaults(func=evaluate)

    p = actions.add_parser(
        "figure",
        help="draw the soft and the hard permutation matrix for one list (PNG)",
        description="For one random list: the numbers, the soft permutation S(log_alpha / tau) "
        "and the hard one M(log_alpha), both without noise.",
    )
    _add_model_source(p)
    p.add_argument("--output", required=True, metavar="PNG", help="where to write the figure")
    p.add_argument("--seed", type=int, default=0, help="seed of the list (default 0)")
    p.add_argument(
        "--tau", type=float, default=1.0, help="temperature of the soft matrix (default 1)"
    )
    p.add_argument(
        "--n-iter",
        type=int,
        default=100,
        help="Sinkhorn iterations of the soft matrix (default 100)",
    )
    _add_test_distribution(p, "the")
    p.set_defaults(func=figure)
