"""What the command modules share: option flags derived from configurations, help, tables.

No torch at import time: the parsers are built from the torch-free configuration dataclasses.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

from ..configs import Config
from ..errors import InvalidValueError, UserError
from ..files import writable_folder
from ..runs import ENV_VAR, available


class UsageError(UserError):
    """A command line that asks for something impossible (one line, exit status 2)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except ``None`` (an option the help text explains)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class Actions:
    """The actions of one command (``gumbel-sinkhorn NAME ACTION``), each with this module's help
    formatter: ``actions.add("train", help, description)`` returns the action's parser."""

    def __init__(self, commands, name: str, *, help: str, description: str):
        parser = commands.add_parser(name, help=help, description=description)
        self._sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def add(self, name: str, help: str, description: str) -> argparse.ArgumentParser:
        return self._sub.add_parser(
            name, help=help, description=description, formatter_class=HelpFormatter
        )


def flag(name: str, field: dataclasses.Field | None = None) -> str:
    """The command-line flag of a configuration field: ``batch_size`` -> ``--batch-size``."""
    custom = field.metadata.get("flag") if field is not None else None
    return "--" + (custom or name).replace("_", "-")


def add_config_options(
    parser,
    config: Config,
    *,
    skip: tuple[str, ...] = (),
    aliases: dict[str, tuple[str, ...]] | None = None,
    prefix: str = "",
) -> None:
    """One flag per field of ``config`` (nested configurations: an argument group each).

    Every flag defaults to ``None`` ("not given"): :func:`config_from_args` then keeps the value of
    whatever configuration it starts from (defaults, a preset, a resumed run); the help shows
    ``config``'s value. Fields without a command-line form (tuples) are left out.
    """
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        if field.name in skip or prefix + field.name in skip:
            continue
        value = getattr(config, field.name)
        dest = prefix + field.name
        if isinstance(value, Config):
            group = parser.add_argument_group(field.metadata.get("help") or field.name)
            add_config_options(group, value, skip=skip, aliases=aliases, prefix=dest + ".")
            continue
        kind = _scalar_type(hints[field.name])
        if kind is None:
            continue
        names = [flag(field.name, field), *(aliases or {}).get(dest, ())]
        help_text = f"{field.metadata.get('help', '')} (default: {_shown(value)})"
        if kind is bool:
            parser.add_argument(
                *names, dest=dest, action=argparse.BooleanOptionalAction, help=help_text
            )
        else:
            parser.add_argument(
                *names,
                dest=dest,
                type=kind,
                choices=field.metadata.get("choices"),
                metavar=None if field.metadata.get("choices") else field.name.upper(),
                help=help_text,
            )


def config_from_args(base: Config, args: argparse.Namespace, prefix: str = "") -> Config:
    """``base`` with every option given on the command line; errors name the flags.

    >>> from gumbel_sinkhorn.configs import SamplingConfig
    >>> args = argparse.Namespace(**{"tau": 0.5, "n_iter": None})
    >>> config_from_args(SamplingConfig(), args)
    SamplingConfig(tau=0.5, n_iter=20, n_samples=1, noise_factor=1.0)
    >>> config_from_args(SamplingConfig(), argparse.Namespace(tau=-1.0))
    Traceback (most recent call last):
    ...
    gumbel_sinkhorn.errors.InvalidValueError: --tau must be in (0, inf), got -1.0
    """
    try:
        return type(base).from_dict(_merged(base, args, prefix))
    except InvalidValueError as err:
        raise InvalidValueError(_with_flags(str(err), base)) from err


def _merged(config: Config, args, prefix: str) -> dict[str, Any]:
    values = config.to_dict()
    for field in dataclasses.fields(config):
        value, dest = getattr(config, field.name), prefix + field.name
        if isinstance(value, Config):
            values[field.name] = _merged(value, args, dest + ".")
        elif getattr(args, dest, None) is not None:
            values[field.name] = getattr(args, dest)
    return values


def _with_flags(message: str, config: Config) -> str:
    for field in _all_fields(config):
        message = re.sub(rf"(?<![\w-]){field.name}(?!\w)", flag(field.name, field), message)
    return message


def _all_fields(config: Config):
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, Config):
            yield from _all_fields(value)
        else:
            yield field


def _scalar_type(hint) -> type | None:
    options = [t for t in (hint, *typing.get_args(hint)) if t in (bool, int, float, str)]
    return options[0] if options else None


def _shown(value) -> str:
    return "none" if value is None else str(value)


def add_model_source(parser, *, prefixes: tuple[str, ...], required: bool = True) -> None:
    """``--pretrained NAME`` (a shipped model whose name starts with one of ``prefixes``, or any
    weights file, checkpoint or run folder); ``--run`` is its spelling of earlier releases."""
    shipped = [name for name in available() if name.startswith(prefixes)] or ["none yet"]
    parser.add_argument(
        "--pretrained",
        "--run",
        dest="pretrained",
        metavar="NAME",
        required=required,
        help=f"a shipped model ({', '.join(shipped)}), a weights file, checkpoint or run folder",
    )


def add_data_root(parser) -> None:
    parser.add_argument(
        "--data-root",
        metavar="DIR",
        help=f"folder holding the datasets, e.g. mnist/ (default: ${ENV_VAR}, the user cache, "
        "else download)",
    )


def add_fit_options(parser, defaults) -> None:
    """The training loop's options (:class:`~gumbel_sinkhorn.configs.FitConfig`) and the run's."""
    group = parser.add_argument_group("training")
    add_config_options(group, defaults)
    group.add_argument("--run-dir", required=True, metavar="DIR", help="where the run is written")
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir with its own options (any given here override them)",
    )
    group.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    group.add_argument("--quiet", action="store_true", help="no progress bar and no line per epoch")


def output_path(path: str | None, suffixes: tuple[str, ...], what: str) -> Path | None:
    """Check an output file before the work: its suffix, and that its folder can be written."""
    if path is None:
        return None
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise UsageError(f"{what} {path}: expected a {' or '.join(suffixes)} file name")
    writable_folder(path.parent)
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder; give a file name")
    return path


def int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum`` (a usage error naming the flag otherwise).

    >>> int_at_least(2)("3"), int_at_least(1).__name__
    (3, 'integer >= 1')
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def number(value: float) -> str:
    return f"{value:.4f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.2e}"


def print_table(columns: dict[str, dict], keys: tuple[str, ...]) -> None:
    """Metrics side by side: one row per key, one column per model."""
    names = list(columns)
    width = max(14, *(len(n) for n in names))
    print(f"{'metric':<15}" + "".join(f"{n:>{width + 2}}" for n in names))
    for key in keys:
        cells = "".join(
            f"{number(columns[n][key]) if key in columns[n] else '-':>{width + 2}}" for n in names
        )
        print(f"{key:<15}{cells}")
