"""``gumbel-sinkhorn celegans``: name the neurons of simulated C. elegans recordings.

gumbel-sinkhorn celegans simulate --worms 4 --eta 0.0075 --known 25 --output sim.pt
gumbel-sinkhorn celegans infer --simulation sim.pt --method gumbel-sinkhorn --output result.json
gumbel-sinkhorn celegans reproduce --table candidates --output docs/celegans/candidates.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..configs.celegans import METHODS, TABLE_NAMES, Settings, SimulationConfig
from ..errors import BadFileError, InvalidValueError, MissingFileError
from ._common import Actions, add_config_options, config_from_args, int_at_least, output_path


def simulate_cmd(args) -> int:
    import torch

    from ..celegans import simulate

    output = output_path(args.output, (".pt",), "--output")
    config = config_from_args(SimulationConfig(), args)
    torch.set_num_threads(args.threads)
    sim = simulate(config, seed=args.seed)
    _save_simulation(sim, output)
    print(
        f"{sim.config.n_worms} worm(s), {sim.worms.Y.shape[1]} neurons, "
        f"{sim.config.n_steps} steps; "
        f"{sim.worms.mean_candidates:.1f} candidate names on average; written to {output}"
    )
    return 0


def infer_cmd(args) -> int:
    import torch

    from ..celegans import accuracy, simulate
    from ..celegans.experiment import run_method
    from ..celegans.figures import posterior_figure
    from ..data.celegans import load_connectome
    from ..files import write_json

    output = output_path(args.output, (".json",), "--output")
    figure = output_path(args.posterior_figure, (".png",), "--posterior-figure")
    settings = config_from_args(Settings(), args)
    if args.method == "mcmc" and settings.antisymmetric:
        raise InvalidValueError(
            "--antisymmetric is an option of the VI methods and MAP; MCMC's Gibbs step draws "
            "every weight on its own"
        )
    if args.method in ("mcmc", "map") and settings.consensus > 1:
        raise InvalidValueError(
            f"--consensus is an option of the VI methods ('gumbel-sinkhorn', 'naive'), "
            f"got --method {args.method!r}"
        )
    config = None if args.simulation else config_from_args(SimulationConfig(), args)
    torch.set_num_threads(args.threads)
    sim = _load_simulation(args.simulation) if config is None else simulate(config, seed=args.seed)
    result = run_method(
        sim.worms,
        args.method,
        settings,
        seed=args.seed,
        progress=not args.quiet,
        marginal_samples=200,
    )
    score = accuracy(result.perm, sim)
    print(
        f"{args.method}: accuracy {score:.4f} on the {int((~sim.worms.known).sum())} neurons "
        f"not named, {result.seconds:.1f} s"
    )
    if result.agreed:
        print(f"named alike by every run, round by round: {result.agreed}")
    if len(result.objectives) > 1:
        finals = ", ".join(f"{o:.1f}" for o in result.objectives)
        runs = "last round's runs" if result.agreed else "restarts"
        print(f"final objectives of the {runs}: {finals}; run {result.kept + 1} kept")
    if output:
        report = {
            "method": args.method,
            "accuracy": score,
            "seconds": result.seconds,
            "objectives": result.objectives,
            "kept": result.kept,
            "agreed": result.agreed,
            "mean_candidates": sim.worms.mean_candidates,
            "config": sim.config.to_dict(),
            "perm": result.perm.tolist(),
            "true_perm": sim.perm.tolist(),
            "argv": sys.argv[1:],
        }
        write_json(output, report)
        print(f"results written to {output}")
    if figure:
        names = load_connectome().names
        unnamed = (~sim.worms.known[0]).nonzero().flatten()[: args.neurons].tolist()
        path = posterior_figure(result.marginals[0], sim.perm[0], names, unnamed, figure)
        print(f"posterior figure written to {path}")
    return 0


def reproduce_cmd(args) -> int:
    import torch

    from ..celegans.experiment import TABLES, markdown, reproduce
    from ..celegans.figures import accuracy_figure

    output = output_path(args.output, (".json",), "--output")
    figure = output_path(args.figure, (".png",), "--figure")
    settings = config_from_args(Settings(), args)
    torch.set_num_threads(args.threads)
    table = TABLES[args.table]
    start = time.perf_counter()
    report = reproduce(
        table,
        output,
        cells=args.cells,
        n_sims=args.sims,
        methods=args.methods,
        settings=settings,
        workers=args.workers,
        progress=not args.quiet,
    )
    print(f"{table.title}; ours ± std over {args.sims} simulations (published):")
    print(markdown(table, report))
    print(f"{time.perf_counter() - start:.0f} s in this call; records in {output}")
    if figure:
        print(f"figure written to {accuracy_figure(table, report, figure)}")
    return 0


def table_cmd(args) -> int:
    from ..celegans.experiment import TABLES, markdown, merge
    from ..celegans.figures import accuracy_figure

    figure = output_path(args.figure, (".png",), "--figure")
    reports = [_read_records(path) for path in args.results]
    report = merge(reports)
    table = TABLES[report["table"]]
    sims = sorted({r["sim"] for r in report["records"]})
    print(f"{table.title}; ours ± std over simulations {sims} (published):")
    print(markdown(table, report))
    if figure:
        print(f"figure written to {accuracy_figure(table, report, figure)}")
    return 0


def _read_records(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no results file {path} (write one with `reproduce`)")
    try:
        report = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadFileError(f"{path} is not a JSON file of records: {err}") from err
    if not isinstance(report, dict) or report.get("table") not in TABLE_NAMES:
        raise BadFileError(f"{path} holds no table records (expected one of {TABLE_NAMES})")
    return report


def _save_simulation(sim, path) -> None:
    import torch

    from ..files import atomic_write

    w = sim.worms
    data = {
        "Y": w.Y,
        "mask": w.mask,
        "known": w.known,
        "pattern": w.pattern,
        "perm": sim.perm,
        "weights": sim.weights,
        "config": sim.config.to_dict(),
    }
    atomic_write(path, lambda file: torch.save(data, file))


def _load_simulation(path):
    import pickle

    import torch

    from ..celegans import Simulation, Worms

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no simulation file {path} (write one with `celegans simulate`)")
    try:
        data = torch.load(path, weights_only=True)
        config = SimulationConfig.from_dict(data["config"])
        worms = Worms(data["Y"], data["mask"], data["known"], data["pattern"], config.noise_std)
        return Simulation(worms, data["weights"], data["perm"], config)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, TypeError, ValueError) as err:
        raise BadFileError(f"{path} is not a simulation of `celegans simulate`: {err}") from err


def _simulation_options(p) -> None:
    group = p.add_argument_group("simulation")
    add_config_options(group, SimulationConfig(), skip=("noise_std", "radius_factor"))


def _common(p) -> None:
    p.add_argument("--threads", type=int_at_least(1), default=1, help="torch threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(commands) -> None:
    actions = Actions(
        commands,
        "celegans",
        help="name C. elegans neurons from activity and the connectome (the paper's third "
        "experiment)",
        description="Simulated whole-brain recordings of worms sharing the connectome's weights; "
        "infer every worm's permutation of neuron names.",
    )

    p = actions.add(
        "simulate",
        help="simulate worms and save them (.pt)",
        description="Simulate worms sharing random weights on the connectome's pattern, with "
        "permuted recordings, known neurons and position constraints; save them for `infer`.",
    )
    _simulation_options(p)
    p.add_argument("--seed", type=int_at_least(0), default=0, help="simulation seed")
    p.add_argument("--output", required=True, metavar="PT", help="where to save it")
    _common(p)
    p.set_defaults(func=simulate_cmd)

    p = actions.add(
        "infer",
        help="infer the names with one method",
        description="Infer every worm's names with one method (on a saved simulation, or one "
        "simulated now) and report the accuracy on the neurons not named.",
    )
    p.add_argument("--simulation", metavar="PT", help="a saved simulation (else simulate now)")
    _simulation_options(p)
    p.add_argument("--method", choices=METHODS, default="gumbel-sinkhorn", help="the method")
    add_config_options(
        p.add_argument_group("inference"), Settings(), skip=("n_steps", "position_noise")
    )
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed (simulation, inference)")
    p.add_argument("--output", metavar="JSON", help="write accuracy and names as JSON")
    p.add_argument(
        "--posterior-figure",
        metavar="PNG",
        help="draw the posterior over names of a few neurons of the first worm",
    )
    p.add_argument(
        "--neurons", type=int_at_least(1), default=6, help="neurons in the posterior figure"
    )
    _common(p)
    p.set_defaults(func=infer_cmd)

    p = actions.add(
        "reproduce",
        help="one of the paper's two tables, 5 simulations",
        description="Run every method on every cell of a table, appending the records to "
        "--output as they come (a rerun resumes); print the table beside the published one.",
    )
    p.add_argument("--table", choices=TABLE_NAMES, required=True, help="which table")
    p.add_argument("--sims", type=int_at_least(1), default=5, help="simulations per cell")
    p.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS), help="the methods"
    )
    p.add_argument(
        "--cells",
        nargs="+",
        metavar="TEXT",
        help="only the cells whose label holds one of these, e.g. '10 %%' 'eta = 0.2'",
    )
    add_config_options(p.add_argument_group("inference"), Settings())
    p.add_argument(
        "--output",
        required=True,
        metavar="JSON",
        help="records, appended as they come (a rerun resumes)",
    )
    p.add_argument("--figure", metavar="PNG", help="accuracy against mean candidates")
    p.add_argument(
        "--workers",
        type=int_at_least(1),
        default=1,
        help="processes running cells at once, one torch thread each (the same records)",
    )
    _common(p)
    p.set_defaults(func=reproduce_cmd)

    p = actions.add(
        "table",
        help="print a table (and draw its figure) from records",
        description="Print a table from the records `reproduce` wrote (several files of one "
        "table are merged), and draw its figure with --figure.",
    )
    p.add_argument(
        "--results",
        required=True,
        nargs="+",
        metavar="JSON",
        help="what reproduce wrote (several files of one table are merged)",
    )
    p.add_argument("--figure", metavar="PNG", help="accuracy against mean candidates")
    p.set_defaults(func=table_cmd)
