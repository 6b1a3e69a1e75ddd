"""``gumbel-sinkhorn jigsaw``: train, evaluate and use Sinkhorn networks on jigsaw puzzles.

gumbel-sinkhorn jigsaw train --grid 3 --epochs 5 --run-dir runs/mnist-3x3
gumbel-sinkhorn jigsaw evaluate --pretrained mnist-3x3 --output metrics.json
gumbel-sinkhorn jigsaw solve digit.png --pretrained mnist-3x3 --output solved.png
gumbel-sinkhorn jigsaw demo
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from .. import _checks, checkpoint, figures, pretrained
from ..cli import HelpFormatter, UsageError
from ..data import ENV_VAR, NAMES, load_image, save_image
from ..distributed import is_main_process
from ..tasks.jigsaw import DEFAULT_MODEL, METRICS, TUTORIAL_MODEL, JigsawTask
from ..train import PRECISIONS
from ._runs import add_resume_option, resumed, run_options

CURVES = ("kendall_tau", "prop_exact", "prop_wrong")
# How each --model preset is trained unless the command line says otherwise: ours with the recipe
# of the shipped 3x3 to 5x5 models (docs/RESULTS.md), the tutorial's network as the tutorial did.
TRAINING = {
    "ours": dict(lr=3e-3, lr_schedule="cosine", loss_exponent=0.25, augment_shift=1),
    "tutorial": dict(lr=1e-4, lr_schedule="none", loss_exponent=1.0, augment_shift=0),
}


# -- train --------------------------------------------------------------------------------------


# the model options the command line can set (the presets also fix g2_bias and n_heads)
MODEL_FLAGS = (
    "hidden",
    "kernel",
    "n_conv",
    "pool",
    "n_context",
    "d_model",
    "tau",
    "n_iter",
    "n_samples",
    "noise_factor",
    "input_power",
)


def model_options(args) -> dict:
    """The model options from the command line: a preset, then the explicit overrides."""
    preset = TUTORIAL_MODEL if args.model == "tutorial" else DEFAULT_MODEL
    options = _overridden(preset, args, MODEL_FLAGS)
    if options["input_power"] == 0:  # --input-power 0: no power channels
        options["input_power"] = None
    return options


def training_options(args) -> dict:
    """lr, lr_schedule, loss_exponent, augment_shift: the preset's, then the explicit ones."""
    return _overridden(TRAINING[args.model], args, TRAINING[args.model])


def _overridden(preset: dict, args, flags) -> dict:
    """``preset`` with each of ``flags`` replaced by its command-line value where one was given."""
    given = {key: getattr(args, key) for key in flags}
    return {**preset, **{key: value for key, value in given.items() if value is not None}}


def train(args) -> int:
    from ..train import fit

    args = resumed(args)
    training = training_options(args)
    run_dir = Path(args.run_dir)
    task = JigsawTask(
        dataset=args.dataset,
        grid=args.grid,
        data_root=args.data_root,
        fit=args.fit,
        images_per_batch=_checks.count(args.batch_size, "--batch-size"),
        train_size=args.train_size,
        test_size=args.test_size,
        model=model_options(args),
        init_weights=args.init,
        loss_exponent=training["loss_exponent"],
        augment_shift=training["augment_shift"],
    )
    history = fit(
        task,
        run_dir,
        epochs=args.epochs,
        lr=training["lr"],
        seed=args.seed,
        resume=args.resume,
        progress=not args.quiet,
        lr_schedule=training["lr_schedule"],
        save_every=args.save_every,
        device=args.device,
        precision=args.precision,
        options=run_options(args),
    )
    if not is_main_process():  # under torchrun: rank 0 alone writes weights and figures
        return 0
    metrics = {k: history[-1][k] for k in METRICS if k in history[-1]}
    _, model, _ = pretrained.load_model(run_dir)
    pretrained.save_weights(run_dir / "weights.pt", task, model, metrics)
    _print_table({"this run": metrics})
    figures.training_curves(
        history,
        run_dir / "curves.png",
        metrics=CURVES,
        title=f"{task.dataset} {task.grid}x{task.grid}",
    )
    per_puzzle = task.solve_test_set(model)
    _puzzle_figure(task, per_puzzle, run_dir / "puzzles.png")
    print(f"wrote {run_dir}/weights.pt, metrics.jsonl, curves.png, puzzles.png")
    return 0


# -- evaluate -----------------------------------------------------------------------------------


def evaluate(args) -> int:
    task, model = _load(args)
    start = time.perf_counter()
    per_puzzle = task.solve_test_set(model)
    result = {k: float(per_puzzle[k].mean()) for k in METRICS}
    seconds = time.perf_counter() - start
    print(
        f"{len(per_puzzle['perm_pred'])} test puzzles, {task.dataset} {task.grid}x{task.grid}, "
        f"solved in {seconds:.1f} s"
    )
    _print_table({args.pretrained or str(args.run): result})
    if args.output:
        checkpoint.write_json(args.output, result)
        print(f"wrote {args.output}")
    if args.figure:
        _puzzle_figure(task, per_puzzle, args.figure)
        print(f"wrote {args.figure}")
    return 0


def _load(args):
    if (args.pretrained is None) == (args.run is None):
        raise UsageError("give exactly one of --pretrained NAME and --run DIR_OR_FILE")
    task, model, _ = pretrained.load_model(args.pretrained or args.run)
    if task.name != "jigsaw":
        raise UsageError(f"{args.pretrained or args.run} is a {task.name} model, not a jigsaw one")
    overrides = {"data_root": args.data_root} if args.data_root else {}
    if getattr(args, "test_size", None) is not None:
        overrides["test_size"] = args.test_size
    if overrides:
        task = JigsawTask.from_config({**task.config(), **overrides})
    return task, model


# -- solve --------------------------------------------------------------------------------------


def solve(args) -> int:
    from ..data import assemble_pieces, cut_pieces, fit_image, scramble, unfit_image, unscramble

    task, model = _load(args)
    channels, height, width = task.image_shape
    image = load_image(args.image, channels=channels)
    # prepared as the model's training images were (its fit), given back at the image's size
    fitted, fit = fit_image(image, task.grid, (height, width), mode=task.fit)
    scrambled = cut_pieces(fitted.unsqueeze(0), task.grid)
    if not args.scrambled:
        scrambled = scramble(scrambled, generator=torch.Generator().manual_seed(args.seed))[0]
    perm = model.solve(task.normalize(scrambled))
    solved = unfit_image(assemble_pieces(unscramble(scrambled, perm))[0], fit)
    output = Path(args.output or Path(args.image).with_name(Path(args.image).stem + "-solved.png"))
    save_image(solved, output)
    if not fit.exact:
        print(
            f"note: the model takes {height}x{width} images, {args.image} is "
            f"{fit.size[0]}x{fit.size[1]}: resized for the model and back (not pixel-exact)"
        )
    if not args.scrambled:
        scrambled_path = output.with_name(output.stem + "-scrambled.png")
        save_image(assemble_pieces(scrambled)[0], scrambled_path)
        print(f"wrote {scrambled_path}")
    print(f"wrote {output}  (piece i goes to position perm[i]: {perm[0].tolist()})")
    return 0


# -- demo ---------------------------------------------------------------------------------------

DEMO_TRAIN_SIZE = 20_000
# The recipe of --model ours without the shift augmentation, which pays off only in longer runs.
# 2 epochs of MNIST 3x3, 2 threads, seeds 0-2: prop_exact 0.9202 / 0.9415 / 0.9457, the same as the
# earlier lr 2e-3 with the plain loss (0.9359 / 0.9419 / 0.9314): one recipe, no loss in the demo.
DEMO_TRAINING = {**TRAINING["ours"], "augment_shift": 0}
EXPLAIN = """\
  kendall_tau     rank agreement of predicted and true piece order (1 = identical)
  prop_wrong      share of pieces placed at a wrong index
  prop_any_wrong  share of puzzles with at least one piece at a wrong index, counting two
                  identical (e.g. blank) pieces swapped as wrong: it can far exceed 1 - prop_exact
  l1, l2          mean absolute / squared pixel error of the reassembled image (pixels in [0, 1])
  prop_exact      share of puzzles reassembled exactly; unlike the index metrics it does not
                  count swapping two identical (e.g. blank) pieces as an error"""


def demo_task(args) -> JigsawTask:
    """MNIST 3x3 from the data root / cache / mirrors, else the embedded digits (said plainly)."""
    try:
        from ..data import load_mnist

        load_mnist("train", root=args.data_root)
        load_mnist("test", root=args.data_root)
    except (OSError, ValueError) as err:  # DatasetNotFoundError, CorruptFileError
        reason = "corrupt file" if isinstance(err, ValueError) else "no local copy and no download"
        print(
            f"MNIST is not available here ({reason}: set {ENV_VAR} or --data-root to a folder "
            "holding mnist/, or connect to the internet).\n"
            "Running the demo on the 1,797 8x8 handwritten digits embedded in the package "
            "instead (upscaled to 16x16, 2x2 puzzles): no download needed.\n"
        )
        return JigsawTask(
            dataset="digits",
            grid=2,
            image_size=16,
            train_size=args.train_size,
            loss_exponent=DEMO_TRAINING["loss_exponent"],
        )
    return JigsawTask(
        dataset="mnist",
        grid=3,
        data_root=args.data_root,
        train_size=args.train_size,
        model=dict(DEFAULT_MODEL),
        loss_exponent=DEMO_TRAINING["loss_exponent"],
    )


def demo(args) -> int:
    from ..train import fit

    run_dir = checkpoint.writable_folder(args.run_dir)
    for name in ("checkpoint.pt", "metrics.jsonl"):  # a demo always starts afresh
        (run_dir / name).unlink(missing_ok=True)
    task = demo_task(args)
    n_train = len(task.images("train"))
    epochs = args.epochs if task.dataset == "mnist" else 10 * args.epochs  # 1,437 images only
    g = task.grid
    print(
        f"Jigsaw puzzles: {task.dataset} images cut into {g}x{g} pieces and shuffled. A Sinkhorn "
        f"network learns to put the pieces back\nfrom the reconstruction error alone (it never "
        f"sees the true order). Training {epochs} epochs on {n_train:,} images..."
    )
    start = time.perf_counter()
    history = fit(
        task,
        run_dir,
        epochs=epochs,
        lr=DEMO_TRAINING["lr"],
        lr_schedule=DEMO_TRAINING["lr_schedule"],
        seed=args.seed,
        progress=not args.quiet,
    )
    minutes = (time.perf_counter() - start) / 60
    model = pretrained.load_model(run_dir)[1]
    per_puzzle = task.solve_test_set(model)
    columns = {f"demo ({minutes:.1f} min)": {k: history[-1][k] for k in METRICS}}
    shipped = f"{task.dataset}-{g}x{g}"
    if shipped in pretrained.available():
        _, shipped_model, _ = pretrained.load_model(shipped)
        columns[f"shipped {shipped}"] = task.evaluate(shipped_model)
    print(f"\nAll {len(per_puzzle['perm_pred']):,} test puzzles, solved with hard matching:")
    _print_table(columns)
    figures.training_curves(
        history, run_dir / "curves.png", metrics=CURVES, title=f"demo: {task.dataset} {g}x{g}"
    )
    _puzzle_figure(task, per_puzzle, run_dir / "puzzles.png")
    print(
        f"\nFigures: {run_dir / 'puzzles.png'} (scrambled | solved | original, wrong pieces "
        f"framed in red) and {run_dir / 'curves.png'}."
    )
    print(
        "Next: gumbel-sinkhorn jigsaw evaluate --pretrained mnist-6x6 --figure 6x6.png; "
        "gumbel-sinkhorn jigsaw train --help"
    )
    return 0


# -- shared -------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.4f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.2e}"


def _print_table(columns: dict[str, dict]) -> None:
    names = list(columns)
    width = max(14, *(len(n) for n in names))
    print(f"{'metric':<15}" + "".join(f"{n:>{width + 2}}" for n in names))
    for key in METRICS:
        cells = "".join(
            f"{_number(columns[n][key]) if key in columns[n] else '-':>{width + 2}}" for n in names
        )
        print(f"{key:<15}{cells}")
    print("\n" + EXPLAIN)  # wherever the metrics are printed: prop_any_wrong needs its caveat


def _puzzle_figure(task, per_puzzle, path, n=8):
    """The first test puzzles, with up to half the rows given to failures (if any)."""
    exact = per_puzzle["prop_exact"]
    failures = (exact == 0).nonzero().flatten()[: n // 2]
    successes = (exact == 1).nonzero().flatten()[: n - len(failures)]
    rows = torch.cat([successes, failures])
    puzzles = type(per_puzzle["puzzles"])(*(t[rows] for t in per_puzzle["puzzles"]))
    note = f"; last {len(failures)} rows: failures" if len(failures) else ""
    figures.puzzle_grid(
        puzzles,
        per_puzzle["perm_pred"][rows],
        path,
        n=n,
        denormalize=task.denormalize,
        title=f"{task.dataset} {task.grid}x{task.grid}: {exact.mean():.1%} exact{note}",
    )


# -- the parser ---------------------------------------------------------------------------------


def _add_model_source(parser) -> None:
    parser.add_argument(
        "--pretrained",
        metavar="NAME",
        help=f"a shipped model: {', '.join(pretrained.available()) or 'none yet'}",
    )
    parser.add_argument(
        "--run",
        metavar="PATH",
        help="a run folder, checkpoint.pt or weights file instead of --pretrained",
    )
    parser.add_argument(
        "--data-root",
        metavar="DIR",
        help=f"folder holding mnist/ and fashion-mnist/ (default: ${ENV_VAR}, "
        "the user cache, else download)",
    )


def register(commands) -> None:
    jigsaw = commands.add_parser(
        "jigsaw",
        help="jigsaw puzzles: train, evaluate, solve, demo",
        description="Sinkhorn networks that learn to unscramble image puzzles from the "
        "reconstruction alone (never the true permutation).",
    )
    sub = jigsaw.add_subparsers(dest="jigsaw_command", required=True, metavar="ACTION")
    fmt = HelpFormatter

    p = sub.add_parser(
        "train",
        help="train a model; writes a run folder",
        formatter_class=fmt,
        description="Train a Sinkhorn network on scrambled images. Writes "
        "checkpoint.pt and metrics.jsonl every epoch, then weights.pt, curves.png "
        "and puzzles.png.",
    )
    p.add_argument(
        "--dataset", default="mnist", help=f"one of {', '.join(NAMES)}, or a folder of images"
    )
    p.add_argument(
        "--data-root",
        metavar="DIR",
        help=f"folder holding mnist/ and fashion-mnist/ (default: ${ENV_VAR})",
    )
    p.add_argument("--grid", type=int, default=3, help="pieces per side (N = grid^2 pieces)")
    p.add_argument(
        "--fit",
        default="pad",
        choices=("pad", "crop", "resize"),
        help="how images whose side is not a multiple of the grid are fitted",
    )
    p.add_argument("--run-dir", required=True, metavar="DIR", help="where the run is written")
    add_resume_option(p)
    p.add_argument(
        "--save-every", type=int, metavar="STEPS", help="also checkpoint every STEPS batches"
    )
    p.add_argument("--epochs", type=int, default=5, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=64, help="puzzles per step")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same result")
    recipe = p.add_argument_group(
        "training options (default: the recipe of the --model preset, ours / tutorial)"
    )

    def preset_default(key: str) -> str:
        ours, tutorial = TRAINING["ours"][key], TRAINING["tutorial"][key]
        return f" (default: {ours} / {tutorial})"

    recipe.add_argument("--lr", type=float, help="Adam learning rate" + preset_default("lr"))
    recipe.add_argument(
        "--lr-schedule",
        choices=("cosine", "none"),
        help="learning-rate schedule over the epochs (none: constant)"
        + preset_default("lr_schedule"),
    )
    recipe.add_argument(
        "--loss-exponent",
        type=float,
        help="reconstruct pixels**e (in [0, 1]) instead of the normalised pixels: "
        "e < 1 weighs faint strokes more (1: the paper's / tutorial's loss)"
        + preset_default("loss_exponent"),
    )
    recipe.add_argument(
        "--augment-shift",
        type=int,
        metavar="PIXELS",
        help="move each training image by a random offset of up to PIXELS (0: no augmentation)"
        + preset_default("augment_shift"),
    )
    p.add_argument("--train-size", type=int, help="use only the first N training images")
    p.add_argument("--test-size", type=int, help="evaluate on the first N test images only")
    p.add_argument(
        "--model",
        choices=("ours", "tutorial"),
        default="ours",
        help="preset: ours (pieces see each other through transformer layers) or the "
        "tutorial's network (hidden 32, kernel 5, g2 without bias, tau 0.1)",
    )
    group = p.add_argument_group("model options (override the preset)")
    group.add_argument("--hidden", type=int, help="channels of the conv net g1")
    group.add_argument("--kernel", type=int, help="conv kernel size (odd)")
    group.add_argument("--n-conv", type=int, help="conv layers in g1")
    group.add_argument(
        "--pool",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="max-pool after the first conv (the tutorial does; small pieces do better without)",
    )
    group.add_argument(
        "--n-context",
        type=int,
        help="transformer layers between g1 and g2 (0: pieces scored alone)",
    )
    group.add_argument("--d-model", type=int, help="width of the transformer layers")
    group.add_argument("--tau", type=float, help="Gumbel-Sinkhorn temperature")
    group.add_argument("--n-iter", type=int, help="Sinkhorn iterations")
    group.add_argument(
        "--n-samples", "--samples", type=int, help="Gumbel samples per puzzle and step"
    )
    group.add_argument("--noise-factor", type=float, help="scale of the Gumbel noise (0: none)")
    group.add_argument(
        "--input-power",
        type=float,
        help="g1 also sees the pixels raised to this power (0.25, the default of --model ours, "
        "makes faint strokes visible; 0: not)",
    )
    p.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="start from these weights (shipped name, weights file or run folder; same "
        "grid and model options): a warm start",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument(
        "--precision",
        choices=tuple(PRECISIONS),
        default="float32",
        help="bfloat16: training forward passes under autocast, faster on hardware with "
        "bfloat16 units (recent GPUs, CPUs with AVX512-BF16 or AMX)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=train)

    p = sub.add_parser(
        "evaluate",
        help="metrics of a model on the whole test set",
        formatter_class=fmt,
        description="Solve every test puzzle with hard matching; print "
        + ", ".join(METRICS)
        + " (and write them as JSON with --output).",
    )
    _add_model_source(p)
    p.add_argument("--test-size", type=int, help="evaluate on the first N test images only")
    p.add_argument("--output", metavar="JSON", help="write the metrics to this JSON file")
    p.add_argument(
        "--figure", metavar="PNG", help="draw test puzzles: scrambled | solved | original"
    )
    p.set_defaults(func=evaluate)

    p = sub.add_parser(
        "solve",
        help="unscramble one image with a model",
        formatter_class=fmt,
        description="Scramble IMAGE (or, with --scrambled, take it as already "
        "scrambled) and write the model's solution at the image's own size. The image is "
        "converted to the model's channels and fitted to the grid as its training images were "
        "(MNIST digits: padded); an image of another size is resized (and the solution resized "
        "back).",
    )
    p.add_argument("image", metavar="IMAGE", help="a PNG or JPEG file")
    _add_model_source(p)
    p.add_argument(
        "--scrambled",
        action="store_true",
        help="IMAGE is already a scrambled puzzle: only solve it",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the scrambling")
    p.add_argument(
        "--output",
        metavar="PNG",
        help="where to write the solved image (default: IMAGE-solved.png)",
    )
    p.set_defaults(func=solve)

    p = sub.add_parser(
        "demo",
        help="train, evaluate and draw a small MNIST run in a few minutes",
        formatter_class=fmt,
        description="End to end in a few minutes on a laptop CPU: train a Sinkhorn "
        "network on MNIST 3x3 puzzles, evaluate it on the whole test set beside the "
        "shipped model, write figures. Uses --data-root / $GUMBEL_SINKHORN_DATA, "
        "else downloads MNIST; without either it runs on the embedded 8x8 digits.",
    )
    p.add_argument(
        "--data-root",
        metavar="DIR",
        help=f"folder holding mnist/ (default: ${ENV_VAR}, the cache, else download)",
    )
    p.add_argument(
        "--run-dir",
        default="jigsaw-demo",
        metavar="DIR",
        help="where the demo run and its figures are written",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=2,
        help="passes over the training images (10x as many on the embedded digits)",
    )
    p.add_argument(
        "--train-size", type=int, default=DEMO_TRAIN_SIZE, help="MNIST training images used"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=demo)
