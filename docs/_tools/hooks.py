"""MkDocs hooks: generate the API reference, the command-line page and the examples page.

Every module of the package that is not private (no leading underscore) gets a page listing the
public functions and classes it defines (read from its source, so a new one appears by itself);
the command-line page is the ``--help`` of ``gumbel-sinkhorn`` and of each subcommand, taken from
the parser the command builds; the examples page lists the notebooks of ``examples/``, which are
copied into the site to download. Nothing is written into ``docs/``.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import textwrap
from contextlib import redirect_stdout
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = "gumbel_sinkhorn"
EXAMPLES = ROOT / "examples"
#: The guides that come first, in this order; every other page of docs/ follows by its title, so
#: a new experiment's page joins the site without an edit here.
GUIDES = {
    "Architecture": "ARCHITECTURE.md",
    "Results": "RESULTS.md",
    "Sorting": "SORTING.md",
    "Ranking": "RANKING.md",
    "Benchmarks": "BENCHMARKS.md",
    "Reliability": "RELIABILITY.md",
}


def guides() -> dict[str, str]:
    """``GUIDES``, then every other Markdown page of docs/ under its first heading."""
    pages = dict(GUIDES)
    listed = set(GUIDES.values())
    for path in sorted((ROOT / "docs").glob("*.md")):
        if path.name not in listed and path.name != "index.md":
            first = path.read_text(encoding="utf-8").lstrip().splitlines()[0]
            pages[first.lstrip("# ").split(":")[0].strip() or path.stem] = path.name
    return pages


#: Sections of the API reference: (title, module prefixes), first match wins.
SECTIONS = (
    ("Operators and metrics", (PACKAGE, "gumbel_sinkhorn.ops", "gumbel_sinkhorn.metrics")),
    ("Distributions", ("gumbel_sinkhorn.distributions",)),
    ("Networks", ("gumbel_sinkhorn.nn",)),
    (
        "Tasks and training",
        (
            "gumbel_sinkhorn.tasks",
            "gumbel_sinkhorn.train",
            "gumbel_sinkhorn.pretrained",
            "gumbel_sinkhorn.configs",
        ),
    ),
    ("Data", ("gumbel_sinkhorn.data",)),
    ("Files, runs, errors, figures", ("gumbel_sinkhorn",)),
)
SKIPPED = {"gumbel_sinkhorn.__main__", "gumbel_sinkhorn.commands", "gumbel_sinkhorn.cli"}


def public_modules() -> list[tuple[str, Path]]:
    """``(dotted name, file)`` of every public module (packages by their ``__init__.py``)."""
    found = []
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if any(p.startswith("_") for p in parts):
            continue
        name = ".".join(parts)
        if name in SKIPPED or any(name.startswith(s + ".") for s in SKIPPED):
            continue
        found.append((name, path))
    return found


def defined_here(path: Path) -> tuple[str, list[str]]:
    """The module's summary line and the public functions and classes its source defines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    names = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not node.name.startswith("_")
    ]
    summary = (doc.strip().splitlines() or [""])[0]
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", summary), names


def module_page(name: str, path: Path) -> str:
    summary, names = defined_here(path)
    members = json.dumps(names) if names else "false"
    extra = ""
    if name == PACKAGE:
        extra = textwrap.dedent("""
            The operators and metrics are available from the top level (`gumbel_sinkhorn.sinkhorn`,
            `gs.matching`, ...); they are defined, and documented, in
            [`gumbel_sinkhorn.ops`][gumbel_sinkhorn.ops] and
            [`gumbel_sinkhorn.metrics`][gumbel_sinkhorn.metrics].
            """)
    return (
        f"# `{name}`\n\n::: {name}\n    options:\n      show_root_heading: false\n"
        f"      members: {members}\n{extra}"
    )


def section_of(name: str) -> str:
    for title, prefixes in SECTIONS:
        if any(name == p or name.startswith(p + ".") for p in prefixes if p != PACKAGE) or (
            name == PACKAGE and PACKAGE in prefixes
        ):
            return title
    return SECTIONS[-1][0]


def _help(parser: argparse.ArgumentParser) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        parser.print_help()
    return out.getvalue()


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def cli_page() -> str:
    import os

    from gumbel_sinkhorn.cli import build_parser

    os.environ.setdefault("COLUMNS", "100")  # argparse wraps help to the terminal's width
    parser = build_parser()
    lines = [
        "# Command line",
        "",
        "`gumbel-sinkhorn` (also `python -m gumbel_sinkhorn`) runs the experiments. Every section "
        "below is the command's own `--help`, taken from its parser when this site was built.",
        "",
    ]

    def add(prog: str, sub: argparse.ArgumentParser, level: int) -> None:
        lines.extend([f"{'#' * level} `{prog}`", "", "```text", _help(sub).rstrip(), "```", ""])
        for child, child_parser in _subparsers(sub):
            add(f"{prog} {child}", child_parser, min(level + 1, 4))

    add("gumbel-sinkhorn", parser, 2)
    lines += [
        "## The `gumbel_sinkhorn.cli` module",
        "",
        "::: gumbel_sinkhorn.cli",
        "    options:",
        "      show_root_heading: false",
        "",
    ]
    return "\n".join(lines)


def notebook_summary(path: Path) -> tuple[str, str]:
    """The notebook's title and first paragraph (its first markdown cell)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = "".join(next(c for c in cells if c["cell_type"] == "markdown")["source"])
    title, _, rest = text.partition("\n")
    paragraph = rest.strip().split("\n\n")[0]
    return title.lstrip("# ").strip(), paragraph


def examples_page(notebooks: list[Path]) -> str:
    lines = [
        "# Examples",
        "",
        "Notebooks that run top to bottom on a CPU in a few minutes each (plots inline). "
        "Download one below, or open it from `examples/` in a clone:",
        "",
        "```bash",
        "make test            # or: python -m venv .venv && .venv/bin/pip install -e '.[dev]'",
        ".venv/bin/pip install jupyterlab && .venv/bin/jupyter lab examples/",
        "```",
        "",
        "`GS_NOTEBOOK_QUICK=1` in the environment runs each with small settings in seconds (the "
        "test suite runs every notebook that way: `tests/test_notebooks.py`). MNIST is read from "
        "`$GUMBEL_SINKHORN_DATA/mnist` when set, otherwise downloaded once.",
        "",
    ]
    for path in notebooks:
        title, paragraph = notebook_summary(path)
        lines += [
            f"## [{title}](examples/{path.name})",
            "",
            f"`examples/{path.name}`",
            "",
            paragraph,
            "",
        ]
    return "\n".join(lines)


# -- the hooks -------------------------------------------------------------------------------------

_NAV: list = []


def on_files(files: Files, config) -> Files:
    api_nav: dict[str, list] = {title: [] for title, _ in SECTIONS}
    overview = [
        "# API reference",
        "",
        "Every public module of the package, generated from the docstrings. The examples "
        "in the docstrings run as doctests in the test suite.",
        "",
    ]
    for name, path in public_modules():
        uri = f"api/{name}.md"
        files.append(File.generated(config, uri, content=module_page(name, path)))
        title = name if name == PACKAGE else name.removeprefix(PACKAGE + ".")
        api_nav[section_of(name)].append({title: uri})
    for title, pages in api_nav.items():
        overview += [f"## {title}", "", "| module | |", "| --- | --- |"]
        for page in pages:
            ((_, uri),) = page.items()
            name = Path(uri).stem
            overview.append(f"| [`{name}`]({name}.md) | {defined_here(_path_of(name))[0]} |")
        overview.append("")
    overview += ["## Command line", "", "[`gumbel-sinkhorn` and its subcommands](cli.md)", ""]
    files.append(File.generated(config, "api/index.md", content="\n".join(overview)))
    files.append(File.generated(config, "api/cli.md", content=cli_page()))

    notebooks = sorted(EXAMPLES.glob("*.ipynb"))
    files.append(File.generated(config, "examples.md", content=examples_page(notebooks)))
    for path in notebooks:
        files.append(File.generated(config, f"examples/{path.name}", abs_src_path=str(path)))

    _NAV[:] = [
        {"Home": "index.md"},
        {"Examples": "examples.md"},
        {"Guides": [{title: uri} for title, uri in guides().items()]},
        {
            "API reference": [{"Overview": "api/index.md"}, {"Command line": "api/cli.md"}]
            + [{title: pages} for title, pages in api_nav.items() if pages]
        },
    ]
    config["nav"] = _NAV
    return files


def _path_of(name: str) -> Path:
    return dict(public_modules())[name]
