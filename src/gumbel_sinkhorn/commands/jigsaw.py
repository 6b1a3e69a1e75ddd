"""``gumbel-sinkhorn jigsaw``: train, evaluate and use Sinkhorn networks on jigsaw puzzles.

gumbel-sinkhorn jigsaw train --grid 3 --epochs 5 --run-dir runs/mnist-3x3
gumbel-sinkhorn jigsaw evaluate --pretrained mnist-3x3 --output metrics.json
gumbel-sinkhorn jigsaw solve digit.png --pretrained mnist-3x3 --output solved.png
gumbel-sinkhorn jigsaw demo
"""

from __future__ import annotations

import time
from pathlib import Path

from ..configs import FitConfig
from ..configs.jigsaw import PRESETS, SAMPLING, TRAINING, JigsawConfig
from ..files import writable_folder
from ..runs import RunFolder
from ._common import (
    ENV_VAR,
    Actions,
    UsageError,
    add_config_options,
    add_data_root,
    add_fit_options,
    add_model_source,
    output_path,
    print_table,
)
from ._runs import progress, run_configs

METRICS = ("kendall_tau", "prop_wrong", "prop_any_wrong", "l1", "l2", "prop_exact")
CURVES = ("kendall_tau", "prop_exact", "prop_wrong")


def preset(name: str) -> tuple[JigsawConfig, FitConfig]:
    """The task and training configurations of ``--model ours`` / ``--model tutorial``."""
    training = TRAINING[name]
    task = JigsawConfig(
        model=PRESETS[name],
        sampling=SAMPLING[name],
        loss_exponent=training["loss_exponent"],
        augment_shift=training["augment_shift"],
    )
    return task, FitConfig(lr=training["lr"], lr_schedule=training["lr_schedule"])


# -- train --------------------------------------------------------------------------------------


def train(args) -> int:
    from .. import figures
    from ..checkpoint import save_weights
    from ..distributed import is_main_process
    from ..tasks.jigsaw import JigsawTask
    from ..train import fit

    config, fit_config, state = run_configs(args, *preset(args.model))
    task = JigsawTask(config, data_root=args.data_root)
    task.images.split("train")  # a missing or corrupt file is refused before the run folder
    run = RunFolder(args.run_dir)
    result = fit(
        task, run, fit_config, resume=state or False, init=args.init, progress=progress(args),
        device=args.device,
    )  # fmt: skip
    if not is_main_process():  # under torchrun: rank 0 alone writes weights and figures
        return 0
    model = result.model.cpu()
    metrics = {k: result.metrics[k] for k in METRICS if k in result.metrics}
    save_weights(run.weights, task, model, metrics)
    _print_metrics({"this run": metrics})
    cfg = task.config
    figures.training_curves(
        result.history, run.figure("curves"), metrics=CURVES,
        title=f"{cfg.dataset} {cfg.grid}x{cfg.grid}",
    )  # fmt: skip
    _puzzle_figure(task, task.solve_test_set(model), run.figure("puzzles"))
    print(f"wrote {run.weights}, {run.metrics.name}, curves.png, puzzles.png")
    return 0


# -- evaluate -----------------------------------------------------------------------------------


def evaluate(args) -> int:
    output = output_path(args.output, (".json",), "--output")
    figure = output_path(args.figure, (".png",), "--figure")
    task, model = _load(args)
    start = time.perf_counter()
    per_puzzle = task.solve_test_set(model)
    result = {k: float(per_puzzle[k].mean()) for k in METRICS}
    seconds = time.perf_counter() - start
    cfg = task.config
    print(
        f"{len(per_puzzle['perm_pred'])} test puzzles, {cfg.dataset} {cfg.grid}x{cfg.grid}, "
        f"solved in {seconds:.1f} s"
    )
    _print_metrics({str(args.pretrained): result})
    if output:
        from ..files import write_json

        write_json(output, result)
        print(f"wrote {output}")
    if figure:
        _puzzle_figure(task, per_puzzle, figure)
        print(f"wrote {figure}")
    return 0


def _load(args):
    from ..pretrained import load_model

    source = args.pretrained
    if source is None:
        raise UsageError("give --pretrained NAME (a shipped model, weights file or run folder)")
    context = {"data_root": args.data_root}
    task, model, _ = load_model(source, **context)
    if task.name != "jigsaw":
        raise UsageError(f"{source} is a {task.name} model, not a jigsaw one")
    if getattr(args, "test_size", None) is not None:
        config = task.config.replace(test_size=args.test_size)
        task = type(task)(config, **context)
    return task, model


# -- solve --------------------------------------------------------------------------------------


def solve(args) -> int:
    import torch
    from tqdm.auto import tqdm

    from ..data import (
        assemble_pieces,
        cut_pieces,
        fit_image,
        load_image,
        save_image,
        scramble,
        unfit_image,
        unscramble,
    )

    images = _image_paths(args.images)
    outputs = _solve_outputs(images, args.output)
    task, model = _load(args)
    cfg = task.config
    channels, height, width = cfg.image_shape
    generator = torch.Generator().manual_seed(args.seed)
    quiet = len(images) > 1
    for path, output in tqdm(list(zip(images, outputs, strict=True)), desc="solving",
                             unit="image", disable=not quiet or None):  # fmt: skip
        image = load_image(path, channels=channels)
        inverted = _invert(image, args.invert, cfg.dataset)
        if inverted:  # the model sees light on dark, as it was trained; the user gets their own
            image = 255 - image
        # prepared as the model's training images were (its fit), given back at the image's size
        fitted, fit = fit_image(image, cfg.grid, (height, width), mode=cfg.fit)
        scrambled = cut_pieces(fitted.unsqueeze(0), cfg.grid)
        if not args.scrambled:
            scrambled = scramble(scrambled, generator=generator)[0]
        perm = task.predict(model, task.images.normalize(scrambled))
        solution = unfit_image(assemble_pieces(unscramble(scrambled, perm))[0], fit)
        save_image(255 - solution if inverted else solution, output)
        if not args.scrambled:
            puzzle = assemble_pieces(scrambled)[0]
            save_image(
                255 - puzzle if inverted else puzzle,
                output.with_name(output.stem + "-scrambled.png"),
            )
        if not quiet:
            if inverted and args.invert == "auto":
                print(
                    f"note: {path} is dark on light, the model's {cfg.dataset} images light on "
                    "dark: inverted for the model, the solution in your colours (--invert no: keep)"
                )
            if not fit.exact:
                print(
                    f"note: the model takes {height}x{width} images, {path} is "
                    f"{fit.size[0]}x{fit.size[1]}: resized for the model and back (not exact)"
                )
            print(f"wrote {output}  (piece i goes to position perm[i]: {perm[0].tolist()})")
    if quiet:
        print(f"solved {len(images)} images; wrote {outputs[0].parent}/*-solved.png")
    return 0


# datasets whose images are light shapes on a black background
_DARK_BACKGROUND = ("mnist", "fashion-mnist", "digits")


def _invert(image, choice: str, dataset: str) -> bool:
    """Whether ``solve`` inverts ``image`` (uint8) for the model: ``yes``, ``no``, or ``auto``:
    when the model was trained on light-on-dark images and the image's border is mostly light."""
    if choice != "auto":
        return choice == "yes"
    border = (image[..., 0, :], image[..., -1, :], image[..., :, 0], image[..., :, -1])
    light = sum(int(edge.float().mean() > 127) for edge in border)
    return dataset in _DARK_BACKGROUND and light >= 3


def _image_paths(given: list[str]) -> list[Path]:
    """The image files named, and those inside the folders named, in order."""
    from ..data import image_files

    paths = []
    for name in given:
        path = Path(name)
        paths += image_files(path) if path.is_dir() else [path]
    return paths


def _solve_outputs(images: list[Path], output: str | None) -> list[Path]:
    """Where each solution goes: ``--output`` (a file for one image, a folder for several),
    else beside each image as ``<name>-solved.png``; checked before any work."""
    if output is None or len(images) == 1 and not Path(output).is_dir():
        if output is not None:
            return [output_path(output, (".png", ".jpg", ".jpeg"), "--output")]
        for folder in {image.parent for image in images}:
            writable_folder(folder)
        return [image.with_name(image.stem + "-solved.png") for image in images]
    folder = writable_folder(output)
    return [folder / (image.stem + "-solved.png") for image in images]


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


def demo_config(args) -> tuple[JigsawConfig, str | None]:
    """MNIST 3x3 from the data root / cache / mirrors, else the embedded digits (said plainly)."""
    from ..data import load_mnist

    try:
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
        config = JigsawConfig(
            dataset="digits", grid=2, image_size=16, train_size=args.train_size,
            loss_exponent=DEMO_TRAINING["loss_exponent"],
        )  # fmt: skip
        return config, None
    config = JigsawConfig(
        dataset="mnist", grid=3, train_size=args.train_size,
        loss_exponent=DEMO_TRAINING["loss_exponent"],
    )  # fmt: skip
    return config, args.data_root


def demo(args) -> int:
    from .. import figures
    from ..files import writable_folder
    from ..pretrained import load_model
    from ..runs import available
    from ..tasks.jigsaw import JigsawTask
    from ..train import fit

    fit_config = FitConfig(
        epochs=args.epochs, lr=DEMO_TRAINING["lr"], lr_schedule=DEMO_TRAINING["lr_schedule"],
        seed=args.seed,
    )  # fmt: skip
    config, root = demo_config(args)
    if config.dataset != "mnist":  # 1,437 images only
        fit_config = fit_config.replace(epochs=10 * args.epochs)
    run = RunFolder(writable_folder(args.run_dir))
    for path in (run.checkpoint, run.metrics):  # a demo always starts afresh
        path.unlink(missing_ok=True)
    task = JigsawTask(config, data_root=root)
    n_train = len(task.images.split("train"))
    g = config.grid
    print(
        f"Jigsaw puzzles: {config.dataset} images cut into {g}x{g} pieces and shuffled. A "
        "Sinkhorn network learns to put the pieces back\nfrom the reconstruction error alone (it "
        f"never sees the true order). Training {fit_config.epochs} epochs on {n_train:,} images..."
    )
    start = time.perf_counter()
    result = fit(task, run, fit_config, progress=False if args.quiet else None)
    minutes = (time.perf_counter() - start) / 60
    per_puzzle = task.solve_test_set(result.model)
    columns = {f"demo ({minutes:.1f} min)": {k: result.metrics[k] for k in METRICS}}
    shipped = f"{config.dataset}-{g}x{g}"
    if shipped in available():
        columns[f"shipped {shipped}"] = task.evaluate(load_model(shipped)[1])
    print(f"\nAll {len(per_puzzle['perm_pred']):,} test puzzles, solved with hard matching:")
    _print_metrics(columns)
    figures.training_curves(
        result.history, run.figure("curves"), metrics=CURVES,
        title=f"demo: {config.dataset} {g}x{g}",
    )  # fmt: skip
    _puzzle_figure(task, per_puzzle, run.figure("puzzles"))
    print(
        f"\nFigures: {run.figure('puzzles')} (scrambled | solved | original, wrong pieces "
        f"framed in red) and {run.figure('curves')}."
    )
    print(
        "Next: gumbel-sinkhorn jigsaw evaluate --pretrained mnist-6x6 --figure 6x6.png; "
        "gumbel-sinkhorn jigsaw train --help"
    )
    return 0


# -- shared -------------------------------------------------------------------------------------


def _print_metrics(columns: dict[str, dict]) -> None:
    """The metrics table, and what each metric means (prop_any_wrong needs its caveat)."""
    print_table(columns, METRICS)
    print("\n" + EXPLAIN)


def _puzzle_figure(task, per_puzzle, path, n=8):
    """The first test puzzles, with up to half the rows given to failures (if any)."""
    import torch

    from .. import figures

    exact = per_puzzle["prop_exact"]
    failures = (exact == 0).nonzero().flatten()[: n // 2]
    successes = (exact == 1).nonzero().flatten()[: n - len(failures)]
    rows = torch.cat([successes, failures])
    puzzles = type(per_puzzle["puzzles"])(*(t[rows] for t in per_puzzle["puzzles"]))
    note = f"; last {len(failures)} rows: failures" if len(failures) else ""
    cfg = task.config
    figures.puzzle_grid(
        puzzles,
        per_puzzle["perm_pred"][rows],
        path,
        n=n,
        denormalize=task.images.denormalize,
        title=f"{cfg.dataset} {cfg.grid}x{cfg.grid}: {exact.mean():.1%} exact{note}",
    )


# -- the parser ---------------------------------------------------------------------------------

# deprecated spellings, accepted for one release
ALIASES = {"sampling.n_samples": ("--samples",)}


def register(commands) -> None:
    sub = Actions(
        commands,
        "jigsaw",
        help="jigsaw puzzles: train, evaluate, solve, demo",
        description="Sinkhorn networks that learn to unscramble image puzzles from the "
        "reconstruction alone (never the true permutation).",
    )

    p = sub.add(
        "train",
        help="train a model; writes a run folder",
        description="Train a Sinkhorn network on scrambled images. Writes checkpoint.pt and "
        "metrics.jsonl every epoch, then weights.pt, curves.png and puzzles.png. The defaults "
        "shown are those of --model ours.",
    )
    p.add_argument(
        "--model",
        choices=tuple(PRESETS),
        default="ours",
        help="ours: the shipped models' network and recipe; tutorial: the seed's network, "
        "trained as the tutorial did. Options given below override the preset",
    )
    add_data_root(p)
    task_defaults, fit_defaults = preset("ours")
    add_config_options(
        p, task_defaults, skip=("image_shape", "mean", "std", "eval_seed"), aliases=ALIASES
    )
    add_fit_options(p, fit_defaults)
    p.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="start from these weights (shipped name, weights file or run folder; same grid "
        "and model options, more context layers or input_power allowed): a warm start",
    )
    p.set_defaults(func=train)

    p = sub.add(
        "evaluate",
        help="metrics of a model on the whole test set",
        description="Solve every test puzzle with hard matching; print "
        + ", ".join(METRICS)
        + " (and write them as JSON with --output).",
    )
    add_model_source(p, prefixes=("mnist-", "fashion-mnist-"))
    add_data_root(p)
    p.add_argument("--test-size", type=int, help="evaluate on the first N test images only")
    p.add_argument("--output", metavar="JSON", help="write the metrics to this JSON file")
    p.add_argument(
        "--figure", metavar="PNG", help="draw test puzzles: scrambled | solved | original"
    )
    p.set_defaults(func=evaluate)

    p = sub.add(
        "solve",
        help="unscramble images with a model",
        description="Scramble each IMAGE (or, with --scrambled, take it as already scrambled) "
        "and write the model's solution at the image's own size. An image is converted to the "
        "model's channels and fitted to the grid as its training images were (MNIST digits: "
        "padded); an image of another size is resized (and the solution resized back).",
    )
    p.add_argument(
        "images", nargs="+", metavar="IMAGE", help="PNG or JPEG files, or folders of them"
    )
    add_model_source(p, prefixes=("mnist-", "fashion-mnist-"))
    p.add_argument(
        "--scrambled", action="store_true", help="IMAGE is already a scrambled puzzle: solve it"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the scrambling")
    p.add_argument(
        "--invert",
        choices=("auto", "yes", "no"),
        default="auto",
        help="show the model the image in inverted colours (the solution keeps the image's); "
        "auto: when the model knows light digits on black and the image's border is light "
        "(default: auto)",
    )
    p.add_argument(
        "--output",
        metavar="PATH",
        help="the solution's file (one image) or folder (several; default: IMAGE-solved.png "
        "beside each image)",
    )
    p.set_defaults(func=solve, data_root=None)

    p = sub.add(
        "demo",
        help="train, evaluate and draw a small MNIST run in a few minutes",
        description="End to end in a few minutes on a laptop CPU: train a Sinkhorn "
        "network on MNIST 3x3 puzzles, evaluate it on the whole test set beside the "
        "shipped model, write figures. Uses --data-root / $GUMBEL_SINKHORN_DATA, "
        "else downloads MNIST; without either it runs on the embedded 8x8 digits.",
    )
    add_data_root(p)
    p.add_argument(
        "--run-dir", default="jigsaw-demo", metavar="DIR",
        help="where the demo run and its figures are written",
    )  # fmt: skip
    p.add_argument(
        "--epochs", type=int, default=2,
        help="passes over the training images (10x as many on the embedded digits)",
    )  # fmt: skip
    p.add_argument(
        "--train-size", type=int, default=DEMO_TRAIN_SIZE, help="MNIST training images used"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=demo)
