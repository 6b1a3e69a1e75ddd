"""The paper's two accuracy tables: their cells, one run per cell and simulation, summaries.

>>> [cell.label for cell in TABLES["candidates"].cells][:2]
['10 candidates, 1 worm', '10 candidates, 4 worms']

Table ``candidates``: 1 or 4 worms, 25 known neurons, eta chosen so that the mean number of
candidate names is the column's (with the tables' two-decimal positions and no position noise,
eta = 0.0075 / 0.01 / 0.02 / 0.04 give about 10 / 29 / 43 / 64 candidates). Table ``known``:
4 worms, 40 / 30 / 20 / 10 % of the neurons named, eta = 0.1 or 0.2.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..configs.celegans import METHODS, TABLE_NAMES, Settings, SimulationConfig
from ..errors import InvalidValueError
from .consensus import fit_consensus
from .mcmc import fit_mcmc
from .model import accuracy, simulate
from .vi import METHODS as VI_METHODS
from .vi import fit_vi

LABELS = {
    "naive": "naive VI",
    "map": "MAP",
    "mcmc": "MCMC",
    "gumbel-sinkhorn": "Gumbel-Sinkhorn VI",
}
N_NEURONS = 279
DEFAULT_SETTINGS = Settings()


@dataclass(frozen=True)
class Cell:
    """One cell of a table: its column and row-group labels, and the simulation's settings."""

    column: str
    group: str
    config: SimulationConfig

    @property
    def label(self) -> str:
        return f"{self.column}, {self.group}"


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: tuple[str, ...]
    groups: tuple[str, ...]
    cells: tuple[Cell, ...]
    published: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)


def _candidates_table() -> Table:
    etas = {"10": 0.0075, "30": 0.01, "45": 0.02, "60": 0.04}
    cells = tuple(
        Cell(
            f"{column} candidates",
            f"{worms} worm{'s' * (worms > 1)}",
            SimulationConfig(n_worms=worms, eta=eta, n_known=25),
        )
        for column, eta in etas.items()
        for worms in (1, 4)
    )
    published = {
        "naive": [(0.34, 0.32), (0.16, 0.16), (0.13, 0.12), (0.11, 0.12)],
        "map": [(0.34, 0.32), (0.17, 0.17), (0.14, 0.13), (0.13, 0.12)],
        "mcmc": [(0.34, 0.65), (0.18, 0.28), (0.14, 0.17), (0.13, 0.15)],
        "gumbel-sinkhorn": [(0.79, 0.94), (0.40, 0.69), (0.25, 0.51), (0.21, 0.44)],
    }
    columns = tuple(f"{c} candidates" for c in etas)
    return Table(
        "candidates",
        "Accuracy by mean number of candidate names (1 worm / 4 worms, 25 known neurons)",
        columns,
        ("1 worm", "4 worms"),
        cells,
        {m: dict(zip(columns, v, strict=True)) for m, v in published.items()},
    )


def _known_table() -> Table:
    fractions = {"40 %": 0.4, "30 %": 0.3, "20 %": 0.2, "10 %": 0.1}
    cells = tuple(
        Cell(
            f"{column} known",
            f"eta = {eta}",
            SimulationConfig(n_worms=4, eta=eta, n_known=round(fraction * N_NEURONS)),
        )
        for column, fraction in fractions.items()
        for eta in (0.1, 0.2)
    )
    published = {
        "naive": [(0.43, 0.41), (0.33, 0.31), (0.23, 0.22), (0.12, 0.10)],
        "map": [(0.42, 0.41), (0.33, 0.32), (0.23, 0.22), (0.12, 0.11)],
        "mcmc": [(0.85, 0.80), (0.52, 0.46), (0.30, 0.26), (0.15, 0.12)],
        "gumbel-sinkhorn": [(0.97, 0.96), (0.92, 0.84), (0.74, 0.58), (0.44, 0.23)],
    }
    columns = tuple(f"{c} known" for c in fractions)
    return Table(
        "known",
        "Accuracy by fraction of named neurons (4 worms; eta = 0.1 / eta = 0.2)",
        columns,
        ("eta = 0.1", "eta = 0.2"),
        cells,
        {m: dict(zip(columns, v, strict=True)) for m, v in published.items()},
    )


TABLES = dict(zip(TABLE_NAMES, (_candidates_table(), _known_table()), strict=True))


def run_method(
    worms,
    method: str,
    settings: Settings = DEFAULT_SETTINGS,
    *,
    seed: int = 0,
    progress: bool = False,
    marginal_samples: int = 0,
):
    """Run one of ``METHODS`` on ``worms`` with ``settings``: an ``InferenceResult``."""
    if method == "mcmc":
        return fit_mcmc(
            worms,
            sweeps=settings.sweeps,
            anneal_from=settings.anneal_from,
            seed=seed,
            progress=progress,
        )
    if method not in VI_METHODS:
        raise InvalidValueError(f"method must be one of {METHODS}, got {method!r}")
    fit, rounds = fit_vi, {}
    if settings.consensus > 1 and method != "map":  # MAP has no randomness: one run
        fit, rounds = fit_consensus, {"runs": settings.consensus, "rounds": settings.rounds}
    return fit(
        worms,
        **rounds,
        method=method,
        steps=settings.steps,
        lr=settings.lr,
        lr_weights=settings.lr_weights,
        tau=settings.tau,
        n_iter=settings.n_iter,
        n_samples=settings.n_samples,
        seed=seed,
        restarts=settings.restarts if method != "map" else 1,
        antisymmetric=settings.antisymmetric,
        marginal_samples=marginal_samples,
        progress=progress,
    )


def run_cell(
    cell: Cell,
    sim_index: int,
    methods=METHODS,
    settings: Settings = DEFAULT_SETTINGS,
    *,
    progress: bool = False,
) -> dict:
    """Simulate data set ``sim_index`` of ``cell`` and run every method on it: a JSON-ready
    record of accuracies, wall and CPU seconds and the mean number of candidates (on a shared
    machine the CPU time is what the run would take on a core of its own)."""
    config = replace(cell.config, n_steps=settings.n_steps, position_noise=settings.position_noise)
    sim = simulate(config, seed=sim_index)
    record = {
        "cell": cell.label,
        "sim": sim_index,
        "mean_candidates": sim.worms.mean_candidates,
        "accuracy": {},
        "seconds": {},
    }
    for method in methods:
        cpu = time.process_time()
        result = run_method(sim.worms, method, settings, seed=sim_index, progress=progress)
        record.setdefault("cpu_seconds", {})[method] = time.process_time() - cpu
        record["accuracy"][method] = accuracy(result.perm, sim)
        if method == "naive":  # rows rounded one by one (names may repeat), for comparison
            record["naive_row_argmax"] = accuracy(result.marginals.argmax(-1), sim)
        record["seconds"][method] = result.seconds
        if len(result.objectives) > 1:
            record.setdefault("objectives", {})[method] = result.objectives
        if result.agreed:
            record.setdefault("agreed", {})[method] = result.agreed
    return record


def reproduce(
    table: Table,
    output: str | os.PathLike,
    *,
    n_sims: int = 5,
    methods=METHODS,
    settings: Settings = DEFAULT_SETTINGS,
    cells=None,
    workers: int = 1,
    progress: bool = True,
    log=print,
) -> dict:
    """Run every cell of ``table`` on ``n_sims`` simulations, appending each record to the JSON
    file ``output`` as it comes (records already there are kept, so an interrupted run resumes;
    a file of another table or other settings is refused, not overwritten). ``cells``: run only
    the cells whose label contains one of these strings (e.g. ``["10 %", "eta = 0.2"]``).
    ``workers``: processes running cells at once (one torch thread each). Returns the file's
    content."""
    output = Path(output)
    report = {"table": table.name, "settings": settings.to_dict(), "records": []}
    if output.is_file():
        previous = json.loads(output.read_text())
        theirs = {"table": previous.get("table"), **dict(_settings(previous))}
        ours = {"table": table.name, **report["settings"]}
        differ = [
            f"{k} {theirs.get(k)} there, {ours.get(k)} now"
            for k in ours
            if theirs.get(k) != ours[k]
        ]
        if differ:
            raise InvalidValueError(
                f"{output} holds the records of another table or other settings "
                f"({'; '.join(differ)}): give another --output, or remove it to start again"
            )
        report = dict(previous, settings=report["settings"])
    done = {(r["cell"], r["sim"]): r for r in report["records"]}
    jobs = []
    for sim_index in range(n_sims):
        for cell in table.cells:
            if cells and not any(part in cell.label for part in cells):
                continue
            have = done.get((cell.label, sim_index))
            missing = [m for m in methods if not have or m not in have["accuracy"]]
            if missing:
                jobs.append((cell, sim_index, missing, settings))
    start = time.perf_counter()
    for record in _run_jobs(jobs, workers, progress and workers == 1):
        have = done.get((record["cell"], record["sim"]))
        if have:
            for key in ("accuracy", "seconds", "cpu_seconds", "objectives", "agreed"):
                if key not in record:
                    continue
                have.setdefault(key, {}).update(record[key])
        else:
            report["records"].append(record)
            done[(record["cell"], record["sim"])] = record
        report["wall_seconds"] = report.get("wall_seconds", 0.0) + sum(record["seconds"].values())
        _write_json(output, report)
        accs = ", ".join(f"{m} {a:.3f}" for m, a in record["accuracy"].items())
        log(f"[{time.perf_counter() - start:6.0f} s] sim {record['sim']} {record['cell']}: {accs}")
    return report


def _run_jobs(jobs, workers: int, progress: bool):
    """The records of ``jobs`` (cell, simulation, methods, settings) as they finish: here, or in
    ``workers`` processes of one torch thread each (records do not depend on which)."""
    if workers == 1 or len(jobs) < 2:
        for cell, sim_index, missing, settings in jobs:
            yield run_cell(cell, sim_index, missing, settings, progress=progress)
        return
    # spawn, not fork: a forked copy of a process with torch's thread pools can deadlock
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(jobs)), context, _one_thread) as pool:
        futures = [pool.submit(run_cell, *job[:3], job[3]) for job in jobs]
        for future in as_completed(futures):
            yield future.result()


def _one_thread() -> None:
    torch.set_num_threads(1)


def merge(reports: list[dict]) -> dict:
    """One report from several ``reproduce`` files of the same table and settings (cells run by
    two processes, or methods run by separate commands). Records of the same cell and simulation
    are combined method by method; a method found twice there is kept once (the first)."""
    kinds = {(r.get("table"), _settings(r)) for r in reports}
    if len(kinds) > 1:
        raise InvalidValueError("records of different tables or settings cannot be merged")
    merged, by_key = dict(reports[0], records=[]), {}
    for report in reports:
        for record in report["records"]:
            key = (record["cell"], record["sim"])
            if key not in by_key:
                by_key[key] = {}
                merged["records"].append(by_key[key])
            kept = by_key[key]
            for name, value in record.items():
                if isinstance(value, dict):  # per method: the first file's values win
                    kept[name] = {**value, **kept.get(name, {})}
                else:
                    kept.setdefault(name, value)
    merged["wall_seconds"] = sum(r.get("wall_seconds", 0.0) for r in reports)
    return merged


def _settings(report: dict) -> tuple:
    """A report's settings as today's options (files of earlier releases migrated), hashable."""
    return tuple(Settings.from_dict(report.get("settings", {})).to_dict().items())


def summarize(table: Table, report: dict) -> dict[str, dict[str, dict]]:
    """``{method: {cell label: {"mean", "std", "n"}}}`` over the simulations in ``report``."""
    out: dict[str, dict[str, dict]] = {}
    for cell in table.cells:
        for method in METHODS:
            values = [
                r["accuracy"][method]
                for r in report["records"]
                if r["cell"] == cell.label and method in r["accuracy"]
            ]
            if values:
                t = torch.tensor(values, dtype=torch.float64)
                std = float(t.std()) if len(values) > 1 else math.nan
                out.setdefault(method, {})[cell.label] = {
                    "mean": float(t.mean()),
                    "std": std,
                    "n": len(values),
                }
    return out


def markdown(table: Table, report: dict) -> str:
    """The table in the paper's layout: a row per method, a column per setting, each cell
    ``ours (published)`` for both groups, mean +- std over the simulations (the mean alone when
    there is one), then how many simulations each cell has."""
    summary = summarize(table, report)
    head = "| method | " + " | ".join(table.columns) + " |"
    lines = [head, "|" + " --- |" * (len(table.columns) + 1)]
    for method in METHODS:
        cells = []
        for column in table.columns:
            parts = []
            for g, group in enumerate(table.groups):
                s = summary.get(method, {}).get(f"{column}, {group}")
                published = table.published[method][column][g]
                if s is None:
                    ours = "—"
                elif s["n"] > 1:
                    ours = f"{s['mean']:.2f} ± {s['std']:.2f}"
                else:
                    ours = f"{s['mean']:.2f}"
                parts.append(f"{ours} ({published:.2f})")
            cells.append(" / ".join(parts))
        lines.append(f"| {LABELS[method]} | " + " | ".join(cells) + " |")
    counts = []
    for column in table.columns:
        ns = [
            summary.get("gumbel-sinkhorn", {}).get(f"{column}, {g}", {}).get("n", 0)
            for g in table.groups
        ]
        counts.append(f"{column}: {' / '.join(map(str, ns))}")
    lines.append("")
    lines.append("Simulations per cell (Gumbel-Sinkhorn VI): " + "; ".join(counts) + ".")
    return "\n".join(lines)


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)
