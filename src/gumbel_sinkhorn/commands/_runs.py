"""``train`` on the command line: start a run, or resume one with the options it started with."""

from __future__ import annotations

import argparse
import dataclasses

from ..configs import Config, FitConfig
from ._common import config_from_args


def run_configs(
    args: argparse.Namespace, task_config: Config, fit_config: FitConfig
) -> tuple[Config, FitConfig, dict | None]:
    """The task's and the training loop's configurations of this ``train`` call, and with
    ``--resume`` the run's checkpoint (read once, handed on to ``fit``).

    A new run starts from ``task_config`` / ``fit_config`` (the command's defaults or a preset);
    a resumed one from those it was started with. Either way the options given on the command
    line win.
    """
    state = None
    if args.resume:
        from ..train import read_run

        state = read_run(args.run_dir)
        task_config = type(task_config).from_dict(state["config"])
        # runs of earlier releases kept the command line's options instead of "fit"
        fit_names = {f.name for f in dataclasses.fields(FitConfig)}
        saved = state.get("fit") or {
            k: v for k, v in (state.get("options") or {}).items() if k in fit_names
        }
        fit_config = fit_config.from_dict({**fit_config.to_dict(), **saved})
    return config_from_args(task_config, args), config_from_args(fit_config, args), state


def progress(args: argparse.Namespace) -> bool | None:
    """``fit``'s progress setting: off with ``--quiet``, else automatic (a bar on terminals)."""
    return False if args.quiet else None
