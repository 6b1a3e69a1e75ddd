"""The ``gumbel-sinkhorn`` command: finds the commands, parses, reports errors a user can fix.

Every module of :mod:`gumbel_sinkhorn.commands` adds its subcommand (a new experiment's command
module joins by being there). A :class:`~gumbel_sinkhorn.errors.UserError` (a bad option, a bad
file) is printed as one line with exit status 2; ``--debug`` shows its traceback too. Any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from ._extras import check_cli
from .commands import command_modules
from .errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gumbel-sinkhorn",
        description="Learn latent permutations with Gumbel-Sinkhorn networks.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of every error, not one line"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        check_cli()  # the command line's own dependencies (the cli extra), none imported here
    except ModuleNotFoundError as err:
        print(f"gumbel-sinkhorn: error: {err}", file=sys.stderr)
        return 1
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args) or 0
    except UserError as err:
        if args.debug:
            raise
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"{parser.prog}: interrupted{f': {err}' if str(err) else ''}", file=sys.stderr)
        return 130
    except OSError as err:  # a full disk, a broken download: not a bug, not the user's typo
        if args.debug:
            raise
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
