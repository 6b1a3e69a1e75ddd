"""``gumbel-sinkhorn ranking``: learn to rank multi-digit MNIST numbers from their order alone.

gumbel-sinkhorn ranking train --head sinkhorn --run-dir runs/ranking/sinkhorn --weights rank.pt
gumbel-sinkhorn ranking evaluate --pretrained rank.pt --n 3 5 7 9 15 32 --output test.json
gumbel-sinkhorn ranking figure --pretrained rank.pt --n 9 --output ranking.png
"""

from __future__ import annotations

import time

from ..configs import FitConfig
from ..configs.ranking import RankingConfig
from ._common import (
    Actions,
    UsageError,
    add_config_options,
    add_data_root,
    add_fit_options,
    add_model_source,
    int_at_least,
    output_path,
)
from ._runs import progress, run_configs

TEST_SIZES = (3, 5, 7, 9, 15, 32)
FIT_DEFAULTS = FitConfig(epochs=32, lr=1e-3, lr_schedule="cosine")
ALIASES = {"steps_per_epoch": ("--steps",), "sampling.n_samples": ("--samples",)}


def train(args) -> int:
    import torch

    from ..checkpoint import save_weights
    from ..distributed import is_main_process
    from ..tasks.ranking import RankingTask
    from ..train import fit

    if args.threads:
        torch.set_num_threads(args.threads)
    weights = output_path(args.weights, (".pt",), "--weights")
    config, fit_config, state = run_configs(args, RankingConfig(), FIT_DEFAULTS)
    task = RankingTask(config, data_root=args.data_root)
    start = time.perf_counter()
    result = fit(
        task, args.run_dir, fit_config, resume=state or False, progress=progress(args),
        device=args.device,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    final = result.metrics
    steps = fit_config.epochs * config.steps_per_epoch
    validation = ", ".join(f"{k} {v:.3f}" for k, v in final.items() if k.startswith("val_"))
    trained = sum(r["seconds"] for r in result.history)
    print(f"trained {steps} steps in {trained:.0f} s ({seconds:.0f} s in this call); {validation}")
    if weights and is_main_process():
        metrics = {k: v for k, v in final.items() if k.startswith("val_")}
        metrics.update(steps=steps, train_seconds=trained)
        path = save_weights(weights, task, result.model.cpu(), metrics)
        print(f"weights written to {path}")
    return 0


def _load(source, data_root=None):
    from ..pretrained import load_model

    task, model, _ = load_model(source, data_root=data_root)
    if task.name != "ranking":
        raise UsageError(f"{source} holds a {task.name} model, not a ranking model")
    return task, model


def _sizes(task, requested) -> tuple[int, ...]:
    if task.config.head == "classic":  # a classic head has one row length: its own n
        return task.config.n
    return tuple(requested)


def evaluate(args) -> int:
    import torch

    from ..files import write_json

    if args.threads:
        torch.set_num_threads(args.threads)
    output = output_path(args.output, (".json",), "--output")
    task, model = _load(args.pretrained, args.data_root)
    head = task.config.head
    report = {"model": str(args.pretrained), "head": head, "split": args.split,
              "sets": args.sets, "seed": args.seed, "results": {}}  # fmt: skip
    print(f"{args.pretrained} ({head} head): {args.sets} {args.split} sets per size")
    print(f"{'n':>4}{'exact match':>14}{'element-wise':>14}{'seconds':>9}")
    for n in _sizes(task, args.n):
        start = time.perf_counter()
        metrics = task.evaluate_sets(model, args.split, n, args.sets, args.seed)
        seconds = time.perf_counter() - start
        report["results"][str(n)] = {**metrics, "seconds": seconds}
        print(f"{n:>4}{metrics['exact_match']:>14.3f}{metrics['elementwise']:>14.3f}"
              f"{seconds:>9.1f}")  # fmt: skip
    if output:
        write_json(output, report)
        print(f"metrics written to {output}")
    return 0


def figure(args) -> int:
    import torch

    from ..data.multidigit import compose, sample_sets
    from ..figures import ranked_sets
    from ..tasks.ranking import predict_ranks

    output = output_path(args.output, (".png",), "--output")
    task, model = _load(args.pretrained, args.data_root)
    cfg = task.config
    n = cfg.n[0] if cfg.head == "classic" else args.n
    data = task.split(args.split)
    sets = sample_sets(
        data, args.sets, n, cfg.digits, generator=torch.Generator().manual_seed(args.seed)
    )
    predicted = predict_ranks(model, compose(data, sets.index))
    path = ranked_sets(
        compose(data, sets.index, normalize=False),
        predicted,
        sets.numbers,
        output,
        digits=cfg.digits,
        title=f"{args.pretrained} ({cfg.head} head): {args.split} sets in predicted order, "
        "errors in red",
    )
    right = (predicted == sets.ranks).all(-1).sum().item()
    print(f"figure written to {path}; {right} of {args.sets} sets ranked exactly")
    return 0


def register(commands) -> None:
    actions = Actions(
        commands,
        "ranking",
        help="rank sets of multi-digit MNIST numbers, trained on their order alone",
        description="Learn to order sets of pictures of 4-digit numbers (MNIST digits side by "
        "side) knowing only the true order of the training sets; evaluate with hard matching.",
    )

    p = actions.add(
        "train",
        help="train a ranking network",
        description="Train on fresh sets from the first 55,000 MNIST training images; after each "
        "epoch, evaluate on validation sets (the last 5,000) and write a checkpoint.",
    )
    defaults = RankingConfig()
    add_config_options(p, defaults, skip=("eval_seed", "n", "val_n"), aliases=ALIASES)
    # the set sizes are lists of ints (the generic flags take one value)
    p.add_argument(
        "--n", type=int_at_least(2), nargs="+", dest="n", metavar="N",
        help="items per training set, cycled step by step (classic: one size) "
        f"(default: {' '.join(map(str, defaults.n))})",
    )  # fmt: skip
    p.add_argument(
        "--val-n", type=int_at_least(2), nargs="+", dest="val_n", metavar="N",
        help=f"validation set sizes (default: {' '.join(map(str, defaults.val_n))})",
    )  # fmt: skip
    add_fit_options(p, FIT_DEFAULTS)
    add_data_root(p)
    p.add_argument("--weights", metavar="PATH", help="also write a small weights file")
    p.add_argument("--threads", type=int_at_least(1), help="torch CPU threads (default: torch's)")
    p.set_defaults(func=train)

    p = actions.add(
        "evaluate",
        help="rank test sets with a trained network: exact match and element-wise accuracy",
        description="Rank --sets sets of each size (drawn with --seed: the same sets every run) "
        "by hard matching; print the metrics, and write them as JSON with --output.",
    )
    add_model_source(p, prefixes=("rank",))
    add_data_root(p)
    p.add_argument("--n", type=int_at_least(2), nargs="+", default=list(TEST_SIZES),
                   help="set sizes (a classic head: its own only)")  # fmt: skip
    p.add_argument("--sets", type=int_at_least(1), default=1000, help="sets per size")
    p.add_argument("--split", choices=("test", "val"), default="test", help="sets drawn from")
    p.add_argument("--seed", type=int, default=0, help="seed of the sets")
    p.add_argument("--threads", type=int_at_least(1), help="torch CPU threads (default: torch's)")
    p.add_argument("--output", metavar="JSON", help="write the metrics to this JSON file")
    p.set_defaults(func=evaluate)

    p = actions.add(
        "figure",
        help="draw test sets in predicted order, errors marked (PNG)",
        description="Draw --sets test sets of --n items each in the order the model predicts, "
        "wrongly placed items marked.",
    )
    add_model_source(p, prefixes=("rank",))
    add_data_root(p)
    p.add_argument("--output", required=True, metavar="PNG", help="where to write the figure")
    p.add_argument("--n", type=int_at_least(2), default=9,
                   help="items per set (a classic head: its own)")  # fmt: skip
    p.add_argument("--sets", type=int_at_least(1), default=6, help="sets (rows) to draw")
    p.add_argument("--split", choices=("test", "val"), default="test", help="sets drawn from")
    p.add_argument("--seed", type=int, default=0, help="seed of the sets")
    p.set_defaults(func=figure)
