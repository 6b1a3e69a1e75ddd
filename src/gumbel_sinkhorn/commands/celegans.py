"""``gumbel-sinkhorn celegans``: name the neurons of simulated C. elegans recordings.

gumbel-sinkhorn celegans simulate --worms 4 --eta 0.0075 --known 25 --output sim.pt
gumbel-sinkhorn celegans infer --simulation sim.pt --method gumbel-sinkhorn --output result.json
gumbel-sinkhorn celegans reproduce --table candidates --output docs/celegans/candidates.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch

from ..celegans import Simulation, SimulationConfig, Worms, accuracy, simulate
from ..celegans.experiment import (
    METHODS,
    TABLES,
    Settings,
    markdown,
    merge,
    reproduce,
    run_method,
)
from ..celegans.figures import accuracy_figure, posterior_figure
from ..data.celegans import load_connectome


def _type(kind, minimum, inclusive=True):
    """An argparse type: a number of ``kind`` >= ``minimum`` (> if not ``inclusive``)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if value != value or value < minimum or (not inclusive and value == minimum):
            sign = ">=" if inclusive else ">"
            raise argparse.ArgumentTypeError(f"must be {sign} {minimum}, got {text}")
        return value

    return parse


COUNT, POSITIVE, NON_NEGATIVE = _type(int, 1), _type(float, 0, False), _type(float, 0)


def simulate_cmd(args) -> int:
    torch.set_num_threads(args.threads)
    sim = simulate(_config(args), seed=args.seed)
    _save_simulation(sim, args.output)
    print(
        f"{sim.config.n_worms} worm(s), {sim.worms.Y.shape[1]} neurons, "
        f"{sim.config.n_steps} steps; "
        f"{sim.worms.mean_candidates:.1f} candidate names on average; written to {args.output}"
    )
    return 0


def infer_cmd(args) -> int:
    torch.set_num_threads(args.threads)
    sim = (
        _load_simulation(args.simulation)
        if args.simulation
        else simulate(_config(args), seed=args.seed)
    )
    result = run_method(
        sim.worms,
        args.method,
        _settings(args),
        seed=args.seed,
        progress=not args.quiet,
        marginal_samples=200,
    )
    score = accuracy(result.perm, sim)
    print(
        f"{args.method}: accuracy {score:.4f} on the {int((~sim.worms.known).sum())} neurons "
        f"not named, {result.seconds:.1f} s"
    )
    if args.output:
        _write_json(
            args.output,
            {
                "method": args.method,
                "accuracy": score,
                "seconds": result.seconds,
                "mean_candidates": sim.worms.mean_candidates,
                "config": asdict(sim.config),
                "perm": result.perm.tolist(),
                "true_perm": sim.perm.tolist(),
                "argv": sys.argv[1:],
            },
        )
        print(f"results written to {args.output}")
    if args.posterior_figure:
        names = load_connectome().names
        unnamed = (~sim.worms.known[0]).nonzero().flatten()[: args.neurons].tolist()
        path = posterior_figure(
            result.marginals[0], sim.perm[0], names, unnamed, args.posterior_figure
        )
        print(f"posterior figure written to {path}")
    return 0


def reproduce_cmd(args) -> int:
    torch.set_num_threads(args.threads)
    table = TABLES[args.table]
    settings = _settings(args)
    start = time.perf_counter()
    report = reproduce(
        table,
        args.output,
        cells=args.cells,
        n_sims=args.sims,
        methods=args.methods,
        settings=settings,
        progress=not args.quiet,
    )
    print(f"{table.title}; ours ± std over {args.sims} simulations (published):")
    print(markdown(table, report))
    print(f"{time.perf_counter() - start:.0f} s in this call; records in {args.output}")
    if args.figure:
        print(f"figure written to {accuracy_figure(table, report, args.figure)}")
    return 0


def table_cmd(args) -> int:
    reports = []
    for path in args.results:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no results file {path} (write one with `reproduce`)")
        reports.append(json.loads(Path(path).read_text()))
        if reports[-1].get("table") not in TABLES:
            raise ValueError(f"{path} holds no table records (expected one of {tuple(TABLES)})")
    report = merge(reports)
    table = TABLES[report["table"]]
    sims = sorted({r["sim"] for r in report["records"]})
    print(f"{table.title}; ours ± std over simulations {sims} (published):")
    print(markdown(table, report))
    if args.figure:
        print(f"figure written to {accuracy_figure(table, report, args.figure)}")
    return 0


def _settings(args) -> Settings:
    return Settings(**{f.name: getattr(args, f.name) for f in fields(Settings) if f.name in args})


def _config(args) -> SimulationConfig:
    return SimulationConfig(
        n_worms=args.worms,
        n_steps=args.time_steps,
        eta=args.eta,
        n_known=args.known,
        position_noise=args.position_noise,
    )


def _save_simulation(sim: Simulation, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    w = sim.worms
    torch.save(
        {
            "Y": w.Y,
            "mask": w.mask,
            "known": w.known,
            "pattern": w.pattern,
            "perm": sim.perm,
            "weights": sim.weights,
            "config": asdict(sim.config),
        },
        path,
    )


def _load_simulation(path) -> Simulation:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no simulation file {path} (write one with `celegans simulate`)")
    data = torch.load(path, weights_only=True)
    config = SimulationConfig(**data["config"])
    worms = Worms(data["Y"], data["mask"], data["known"], data["pattern"], config.noise_std)
    return Simulation(worms, data["weights"], data["perm"], config)


def _write_json(path, data) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def _simulation_options(p, *, known: int = 25) -> None:
    group = p.add_argument_group("simulation")
    group.add_argument("--worms", type=COUNT, default=1, help="worms sharing the weights")
    group.add_argument("--time-steps", type=_type(int, 2), default=1000, help="steps T")
    group.add_argument(
        "--eta",
        type=NON_NEGATIVE,
        default=0.0075,
        help="a name is allowed if its position is within eta of the observed one",
    )
    group.add_argument(
        "--known", type=_type(int, 0), default=known, help="neurons per worm whose names are given"
    )
    group.add_argument(
        "--position-noise",
        type=NON_NEGATIVE,
        default=0.0,
        help="std of the observed positions around the expected ones",
    )


def _inference_options(p) -> None:
    d = Settings()
    group = p.add_argument_group("inference")
    group.add_argument("--steps", type=COUNT, default=d.steps, help="VI / MAP: Adam steps")
    group.add_argument("--lr", type=POSITIVE, default=d.lr, help="VI / MAP: learning rate")
    group.add_argument("--tau", type=POSITIVE, default=d.tau, help="Gumbel-Sinkhorn temperature")
    group.add_argument("--n-iter", type=COUNT, default=d.n_iter, help="Sinkhorn iterations")
    group.add_argument(
        "--samples",
        dest="n_samples",
        type=COUNT,
        default=d.n_samples,
        help="Monte Carlo samples per step",
    )
    group.add_argument("--sweeps", type=COUNT, default=d.sweeps, help="MCMC sweeps")


def _common(p) -> None:
    p.add_argument("--threads", type=COUNT, default=1, help="torch threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(commands) -> None:
    parser = commands.add_parser(
        "celegans",
        help="name C. elegans neurons from activity and the connectome (the paper's third "
        "experiment)",
        description="Simulated whole-brain recordings of worms sharing the connectome's weights; "
        "infer every worm's permutation of neuron names.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = actions.add_parser(
        "simulate", help="simulate worms and save them (.pt)", formatter_class=fmt
    )
    _simulation_options(p)
    p.add_argument("--seed", type=_type(int, 0), default=0, help="simulation seed")
    p.add_argument("--output", required=True, metavar="PT", help="where to save it")
    _common(p)
    p.set_defaults(func=simulate_cmd)

    p = actions.add_parser("infer", help="infer the names with one method", formatter_class=fmt)
    p.add_argument("--simulation", metavar="PT", help="a saved simulation (else simulate now)")
    _simulation_options(p)
    p.add_argument("--method", choices=METHODS, default="gumbel-sinkhorn")
    _inference_options(p)
    p.add_argument("--seed", type=_type(int, 0), default=0, help="seed (simulation, inference)")
    p.add_argument("--output", metavar="JSON", help="write accuracy and names as JSON")
    p.add_argument(
        "--posterior-figure",
        metavar="PNG",
        help="draw the posterior over names of a few neurons of the first worm",
    )
    p.add_argument("--neurons", type=COUNT, default=6, help="neurons in the posterior figure")
    _common(p)
    p.set_defaults(func=infer_cmd)

    p = actions.add_parser(
        "reproduce", help="one of the paper's two tables, 5 simulations", formatter_class=fmt
    )
    p.add_argument("--table", choices=tuple(TABLES), required=True)
    p.add_argument("--sims", type=COUNT, default=5, help="simulations per cell")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument(
        "--cells",
        nargs="+",
        metavar="TEXT",
        help="only the cells whose label holds one of these, e.g. '10 %%' 'eta = 0.2'",
    )
    _inference_options(p)
    p.add_argument(
        "--n-steps",
        type=_type(int, 2),
        default=Settings().n_steps,
        help="time steps T of each recording",
    )
    p.add_argument(
        "--position-noise", type=NON_NEGATIVE, default=0.0, help="std of the observed positions"
    )
    p.add_argument(
        "--output",
        required=True,
        metavar="JSON",
        help="records, appended as they come (a rerun resumes)",
    )
    p.add_argument("--figure", metavar="PNG", help="accuracy against mean candidates")
    _common(p)
    p.set_defaults(func=reproduce_cmd)

    p = actions.add_parser("table", help="print a table (and draw its figure) from records")
    p.add_argument(
        "--results",
        required=True,
        nargs="+",
        metavar="JSON",
        help="what reproduce wrote (several files of one table are merged)",
    )
    p.add_argument("--figure", metavar="PNG", help="accuracy against mean candidates")
    p.set_defaults(func=table_cmd)


def main(argv: list[str] | None = None) -> int:
    """Run ``celegans ...`` without the package-wide command (scripts, tests).

    >>> main(["reproduce", "--table", "known", "--sims", "0", "--output", "x.json"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """
    parser = argparse.ArgumentParser(prog="gumbel-sinkhorn")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["celegans", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"{parser.prog} celegans: error: {err}", file=sys.stderr)
        return 2
