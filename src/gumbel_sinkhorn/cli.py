"""The ``gumbel-sinkhorn`` command.

Each command lives in its own module, which exposes ``register(subparsers)``: it adds its parser
and sets ``func`` (called with the parsed arguments) as the parser's default. To add a command,
add its module to ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "gumbel_sinkhorn.commands.demo",
    "gumbel_sinkhorn.commands.jigsaw",
    "gumbel_sinkhorn.commands.sorting",
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except ``None`` (an option the help text explains)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


class UsageError(Exception):
    """A problem with what the user asked for: reported in one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gumbel-sinkhorn",
        description="Learn latent permutations with Gumbel-Sinkhorn networks.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def given_options(argv: list[str]) -> set[str]:
    """The destinations of the options that ``argv`` itself sets (rather than their defaults).

    >>> sorted(given_options(["sorting", "train", "--run-dir", "r", "--n", "5"]) & {"n", "lr"})
    ['n']
    """
    parser = build_parser()
    _drop_defaults(parser)
    return set(vars(parser.parse_args(argv)))


def _drop_defaults(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                _drop_defaults(command)
        else:
            action.default = argparse.SUPPRESS


def main(argv: list[str] | None = None) -> int:
    from ._extras import check_cli

    try:
        check_cli()  # the command line's own dependencies (the cli extra), none imported here
    except ModuleNotFoundError as err:
        print(f"gumbel-sinkhorn: error: {err}", file=sys.stderr)
        return 1
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    args.argv = argv  # --resume asks given_options which options the user set
    try:
        return args.func(args) or 0
    except (UsageError, ValueError, TypeError, FileNotFoundError, PermissionError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a broken download: not the user's typo
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print(f"{parser.prog}: interrupted{f': {err}' if str(err) else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
