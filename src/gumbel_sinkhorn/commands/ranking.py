"""``gumbel-sinkhorn ranking``: learn to rank multi-digit MNIST numbers from their order alone.

gumbel-sinkhorn ranking train --head sinkhorn --run-dir runs/ranking/sinkhorn --weights rank.pt
gumbel-sinkhorn ranking evaluate --pretrained rank.pt --n 3 5 7 9 15 32 --output test.json
gumbel-sinkhorn ranking figure --pretrained rank.pt --n 9 --output ranking.png
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from .. import checkpoint
from ..cli import HelpFormatter
from ..data.multidigit import compose, sample_sets
from ..distributed import is_main_process
from ..figures import ranked_sets
from ..nn.ranking import HEADS
from ..tasks.ranking import (
    LOSSES,
    METRICS,
    RankingTask,
    evaluate_sets,
    load_model,
    predict_ranks,
    save_weights,
    split,
)
from ._runs import add_resume_option, resumed, run_options

TEST_SIZES = (3, 5, 7, 9, 15, 32)


def _task_from_args(args) -> RankingTask:
    return RankingTask(
        head=args.head,
        n=tuple(args.n),
        digits=args.digits,
        cnn=args.cnn,
        width=args.width,
        loss_kind=args.loss,
        tau=args.tau,
        n_iter=args.n_iter,
        n_samples=args.samples,
        noise_factor=args.noise_factor,
        items=args.items,
        steps_per_epoch=args.steps,
        val_sets=args.val_sets,
    )


def train(args) -> int:
    from ..train import fit

    args = resumed(args)
    if args.threads:
        torch.set_num_threads(args.threads)
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
    steps = args.epochs * args.steps
    validation = ", ".join(f"{k} {v:.3f}" for k, v in final.items() if k.startswith("val_"))
    trained = sum(r["seconds"] for r in history)
    print(f"trained {steps} steps in {trained:.0f} s ({seconds:.0f} s in this call); {validation}")
    if args.weights and is_main_process():
        _, model, _ = load_model(args.run_dir)
        metrics = {k: v for k, v in final.items() if k.startswith("val_")}
        metrics.update(steps=steps, train_seconds=trained)
        print(f"weights written to {save_weights(args.weights, task, model, metrics)}")
    return 0


def _sizes(task: RankingTask, requested) -> tuple[int, ...]:
    if task.head == "classic":  # a classic head has one row length: its own n
        return task.n
    return tuple(requested)


def evaluate(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    task, model, _ = load_model(args.pretrained)
    report = {"model": str(args.pretrained), "head": task.head, "split": args.split,
              "sets": args.sets, "seed": args.seed, "results": {}}  # fmt: skip
    print(f"{args.pretrained} ({task.head} head): {args.sets} {args.split} sets per size")
    print(f"{'n':>4}{'exact match':>14}{'element-wise':>14}{'seconds':>9}")
    for n in _sizes(task, args.n):
        start = time.perf_counter()
        metrics = evaluate_sets(model, args.split, n, args.sets, task.digits, args.seed)
        seconds = time.perf_counter() - start
        report["results"][str(n)] = {**metrics, "seconds": seconds}
        print(f"{n:>4}{metrics['exact_match']:>14.3f}{metrics['elementwise']:>14.3f}"
              f"{seconds:>9.1f}")  # fmt: skip
    if args.output:
        checkpoint.write_json(args.output, report)
        print(f"metrics written to {args.output}")
    return 0


def figure(args) -> int:
    task, model, _ = load_model(args.pretrained)
    n = task.n[0] if task.head == "classic" else args.n
    data = split(args.split)
    sets = sample_sets(
        data, args.sets, n, task.digits, generator=torch.Generator().manual_seed(args.seed)
    )
    predicted = predict_ranks(model, compose(data, sets.index))
    path = ranked_sets(
        compose(data, sets.index, normalize=False),
        predicted,
        sets.numbers,
        args.output,
        digits=task.digits,
        title=f"{args.pretrained} ({task.head} head): {args.split} sets in predicted order, "
        "errors in red",
    )
    right = (predicted == sets.ranks).all(-1).sum().item()
    print(f"figure written to {path}; {right} of {args.sets} sets ranked exactly")
    return 0


def register(commands) -> None:
    parser = commands.add_parser(
        "ranking",
        help="rank sets of multi-digit MNIST numbers, trained on their order alone",
        description="Learn to order sets of pictures of 4-digit numbers (MNIST digits side by "
        "side) knowing only the true order of the training sets; evaluate with hard matching.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = actions.add_parser(
        "train",
        help="train a ranking network",
        formatter_class=HelpFormatter,
        description="Train on fresh sets from the first 55,000 MNIST training images; after each "
        "epoch, evaluate on validation sets (the last 5,000) and write a checkpoint.",
    )
    p.add_argument(
        "--head",
        choices=HEADS,
        default="sinkhorn",
        help="sinkhorn: scalar scores turned into log_alpha (sorts by construction); classic: "
        "each item alone scores every rank; neuralsort: NeuralSort's deterministic relaxation",
    )
    p.add_argument(
        "--n", type=int, nargs="+", default=[3, 5, 7, 9, 15],
        help="items per training set, cycled step by step (classic: one size)",
    )  # fmt: skip
    p.add_argument("--digits", type=int, default=4, help="digits per number")
    p.add_argument("--cnn", choices=("digit", "protocol"), default="digit",
                   help="digit: one small CNN reads each 28x28 digit; protocol: the published "
                   "CNN on the whole picture")  # fmt: skip
    p.add_argument("--width", type=int, default=8, help="digit CNN: channels of its first layer")
    p.add_argument("--loss", choices=LOSSES, default="permutation",
                   help="permutation: cross-entropy with the true permutation; reconstruction: "
                   "squared error of the pictures put in order")  # fmt: skip
    p.add_argument("--tau", type=float, default=1.0, help="temperature")
    p.add_argument("--n-iter", type=int, default=20, help="Sinkhorn iterations")
    p.add_argument("--samples", type=int, default=1, help="Gumbel-Sinkhorn samples per set")
    p.add_argument("--noise-factor", type=float, default=1.0, help="scale of the Gumbel noise")
    p.add_argument("--items", type=int, default=100, help="items per step (sets = items / n)")
    p.add_argument("--epochs", type=int, default=32, help="epochs")
    p.add_argument("--steps", type=int, default=500, help="steps per epoch")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--lr-schedule", choices=("cosine", "none"), default="cosine",
                   help="learning-rate schedule over the epochs")  # fmt: skip
    p.add_argument("--val-sets", type=int, default=200, help="validation sets per size and epoch")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--run-dir", required=True, help="folder for checkpoint.pt and metrics.jsonl")
    add_resume_option(p)
    p.add_argument("--weights", metavar="PATH", help="also write a small weights file")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=train)

    p = actions.add_parser(
        "evaluate",
        help="rank test sets with a trained network: exact match and element-wise accuracy",
        description="Rank --sets sets of each size (drawn with --seed: the same sets every run) "
        "by hard matching; print the metrics, and write them as JSON with --output.",
        formatter_class=HelpFormatter,
    )
    _add_model_source(p)
    p.add_argument("--n", type=int, nargs="+", default=list(TEST_SIZES),
                   help="set sizes (a classic head: its own only)")  # fmt: skip
    p.add_argument("--sets", type=int, default=1000, help="sets per size")
    p.add_argument("--split", choices=("test", "val"), default="test", help="sets drawn from")
    p.add_argument("--seed", type=int, default=0, help="seed of the sets")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--output", metavar="JSON", help="write the metrics to this JSON file")
    p.set_defaults(func=evaluate, metrics=METRICS)

    p = actions.add_parser(
        "figure",
        help="draw test sets in predicted order, errors marked (PNG)",
        formatter_class=HelpFormatter,
    )
    _add_model_source(p)
    p.add_argument("--output", required=True, metavar="PNG", help="where to write the figure")
    p.add_argument("--n", type=int, default=9, help="items per set (a classic head: its own)")
    p.add_argument("--sets", type=int, default=6, help="sets (rows) to draw")
    p.add_argument("--split", choices=("test", "val"), default="test", help="sets drawn from")
    p.add_argument("--seed", type=int, default=0, help="seed of the sets")
    p.set_defaults(func=figure)


def _add_model_source(parser) -> None:
    parser.add_argument(
        "--pretrained", required=True, metavar="PATH",
        help="a ranking weights file (e.g. src/gumbel_sinkhorn/weights/rank-sinkhorn.pt), "
        "a checkpoint, a run folder, or a shipped name (rank-sinkhorn, rank-neuralsort ...)",
    )  # fmt: skip
