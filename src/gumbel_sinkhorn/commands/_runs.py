"""``train --resume`` on the command line: a run continues with the options it started with."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..cli import UsageError, given_options
from ..train import saved_options

# what belongs to one invocation rather than to the run
PER_INVOCATION = ("run_dir", "resume", "quiet", "device", "func", "argv")


def add_resume_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir with its options (any given here override them)",
    )


def resumed(args: argparse.Namespace) -> argparse.Namespace:
    """``args``; with ``--resume``, the run's own options wherever the command line gives none.

    The options come from the run's checkpoint (see :func:`run_options`); a run written before
    they were kept there resumes with the command line's options and defaults, as before.
    """
    if not args.resume:
        return args
    run_dir = Path(args.run_dir)
    if not (run_dir / "checkpoint.pt").exists():
        raise UsageError(f"--resume: {run_dir} has no checkpoint.pt to resume from")
    argv = getattr(args, "argv", None)  # None: not parsed by cli.main, take args as they are
    if argv is None:
        return args
    given = given_options(argv)
    kept = {k: v for k, v in saved_options(run_dir).items() if k not in given and hasattr(args, k)}
    return argparse.Namespace(**{**vars(args), **kept})


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options a run keeps in its checkpoint: all but those of this invocation alone."""
    plain = (str, int, float, bool, type(None))
    return {k: v for k, v in vars(args).items() if k not in PER_INVOCATION and isinstance(v, plain)}
