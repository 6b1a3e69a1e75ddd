"""``gumbel-sinkhorn sorting``: train a network to sort numbers, evaluate it, draw what it learned.

gumbel-sinkhorn sorting train --n 100 --run-dir runs/sort-100 --weights sort-100.pt
gumbel-sinkhorn sorting evaluate --pretrained sort-100 --n-lists 1000 --low 0 --high 10
gumbel-sinkhorn sorting figure --pretrained sort-15 --output docs/sorting.png
"""

from __future__ import annotations

import dataclasses
import time

from ..configs import FitConfig
from ..configs.sorting import Distribution, SortingConfig
from ._common import (
    Actions,
    UsageError,
    add_config_options,
    add_fit_options,
    add_model_source,
    config_from_args,
    int_at_least,
    output_path,
)
from ._runs import progress, run_configs

METRICS = ("prop_wrong", "prop_any_wrong", "kendall_tau")
FIT_DEFAULTS = FitConfig(epochs=6, lr=0.1, lr_schedule="cosine")
# deprecated spellings, accepted for one release; --n is kept (short and unambiguous)
ALIASES = {
    "n": ("--n",),
    "batch_size": ("--batch",),
    "sampling.n_samples": ("--samples",),
    "steps_per_epoch": ("--steps",),
}


def train(args) -> int:
    from ..checkpoint import save_weights
    from ..distributed import is_main_process
    from ..tasks.sorting import SortingTask
    from ..train import fit

    weights = output_path(args.weights, (".pt",), "--weights")
    config, fit_config, state = run_configs(args, SortingConfig(), FIT_DEFAULTS)
    task = SortingTask(config)
    start = time.perf_counter()
    result = fit(
        task, args.run_dir, fit_config, resume=state or False, progress=progress(args),
        device=args.device,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    train_seconds = sum(r["seconds"] for r in result.history)
    print(
        f"trained {fit_config.epochs} epochs in {train_seconds:.0f} s of training "
        f"({seconds:.0f} s in this call); held-out {config.test}: " + _inline(result.metrics)
    )
    if weights and is_main_process():  # under torchrun, rank 0 alone writes the weights
        metrics = {k: result.metrics[k] for k in METRICS if k in result.metrics}
        metrics["train_seconds"] = train_seconds
        if state is None:
            metrics["wall_seconds"] = seconds  # the whole command, evaluations included
        path = save_weights(weights, task, result.model.cpu(), metrics)
        print(f"weights written to {path}")
    return 0


def _inline(metrics: dict) -> str:
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in METRICS if k in metrics)


def _load(source):
    from ..pretrained import load_model

    task, model, _ = load_model(source)
    if task.name != "sorting":
        raise UsageError(f"{source} holds a {task.name} model, not a sorting model")
    return task, model


def evaluate(args) -> int:
    from ..files import write_json

    output = output_path(args.output, (".json",), "--output")
    distribution = config_from_args(Distribution(), args)
    task, model = _load(args.pretrained)
    task = type(task)(
        task.config.replace(test=distribution, eval_lists=args.n_lists, eval_seed=args.seed)
    )
    start = time.perf_counter()
    metrics = task.evaluate(model)
    seconds = time.perf_counter() - start
    cfg = task.config
    print(f"{args.pretrained}: {cfg.n} numbers per list, {cfg.eval_lists} lists from {cfg.test}")
    print(f"{'metric':<16}{'value':>10}")
    for name in METRICS:
        print(f"{name:<16}{metrics[name]:>10.4f}")
    if output:
        report = {
            **metrics,
            "model": str(args.pretrained),
            "n": cfg.n,
            "n_lists": cfg.eval_lists,
            "seed": cfg.eval_seed,
            "distribution": dataclasses.asdict(cfg.test),
            "seconds": seconds,
        }
        write_json(output, report)
        print(f"metrics written to {output}")
    return 0


def figure(args) -> int:
    import torch

    from ..data.numbers import sample_lists
    from ..figures import sorting_matrices
    from ..tasks.sorting import score

    output = output_path(args.output, (".png",), "--output")
    distribution = config_from_args(Distribution(), args)
    task, model = _load(args.pretrained)
    generator = torch.Generator().manual_seed(args.seed)
    lists = sample_lists(1, task.config.n, distribution, generator=generator)
    with torch.no_grad():
        log_alpha = model(lists.random)[0]
    path = sorting_matrices(
        log_alpha,
        lists.random[0],
        output,
        tau=args.tau,
        n_iter=args.n_iter,
        title=f"{args.pretrained} (trained on {task.config.train}): one list from {distribution}",
    )
    print(f"figure written to {path}; " + _inline(score(task.predict(model, lists.random), lists)))
    return 0


def _add_test_distribution(parser) -> None:
    add_config_options(parser.add_argument_group("the lists"), Distribution())


def register(commands) -> None:
    actions = Actions(
        commands,
        "sorting",
        help="learn to sort numbers from sorted lists alone (the paper's first experiment)",
        description="Learn to sort lists of numbers seeing only the sorted lists, never the "
        "permutation; evaluate with hard matching.",
    )

    p = actions.add(
        "train",
        help="train a sorting network",
        description="Train on fresh lists from the training distribution every step; after "
        "each epoch, evaluate on held-out lists and write a checkpoint. (Under torchrun write "
        "--numbers: torchrun's own parser takes --n as an abbreviation of its options.)",
    )
    add_config_options(p, SortingConfig(), skip=("test", "eval_seed"), aliases=ALIASES)
    add_fit_options(p, FIT_DEFAULTS)
    p.add_argument(
        "--weights",
        metavar="PATH",
        help="also write a small weights file (loadable with --pretrained PATH)",
    )
    p.set_defaults(func=train)

    p = actions.add(
        "evaluate",
        help="sort held-out lists with a trained network and report the paper's metrics",
        description="Sort --n-lists random lists by hard matching (no noise); print prop_wrong, "
        "prop_any_wrong and kendall_tau, and write them as JSON with --output.",
    )
    add_model_source(p, prefixes=("sort-",))
    p.add_argument("--n-lists", type=int_at_least(1), default=1000, help="lists to sort")
    p.add_argument("--seed", type=int, default=1234, help="seed of the lists")
    p.add_argument("--output", metavar="JSON", help="write the metrics to this JSON file")
    _add_test_distribution(p)
    p.set_defaults(func=evaluate)

    p = actions.add(
        "figure",
        help="draw the soft and the hard permutation matrix for one list (PNG)",
        description="For one random list: the numbers, the soft permutation S(log_alpha / tau) "
        "and the hard one M(log_alpha), both without noise.",
    )
    add_model_source(p, prefixes=("sort-",))
    p.add_argument("--output", required=True, metavar="PNG", help="where to write the figure")
    p.add_argument("--seed", type=int, default=0, help="seed of the list")
    p.add_argument("--tau", type=float, default=1.0, help="temperature of the soft matrix")
    p.add_argument("--n-iter", type=int_at_least(1), default=100, help="Sinkhorn iterations")
    _add_test_distribution(p)
    p.set_defaults(func=figure)
