"""A griffe extension: Sphinx-style roles in the docstrings become mkdocstrings cross-references.

The package's docstrings use ``:func:`fit```, ``:class:`~gumbel_sinkhorn.nn.SinkhornPieceNet```
and the like. Each target is resolved in the scope of the object whose docstring names it (as Sphinx
would) and rewritten to ``[`fit`][gumbel_sinkhorn.train.fit]``; a target inside the package that
cannot be resolved is still written as a cross-reference, so that the strict build reports it.
Targets outside the package (``torch.compile``), attributes (often set in ``__init__``, without a
page of their own) and the command modules (documented by the command-line page) stay plain code.

Doctest examples (``>>>`` lines and their output) are fenced as ``pycon`` code, so that their
output is never read as Markdown.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import griffe

PACKAGE = "gumbel_sinkhorn"
ROLE = re.compile(r":(?:py:)?(func|meth|class|attr|mod|data|exc|obj|const):`(~?)([\w.]+)(\(\))?`")
PLAIN = ("gumbel_sinkhorn.commands", "gumbel_sinkhorn.cli.main")


def _lazy_names() -> dict[str, str]:
    """``gumbel_sinkhorn.X`` -> ``gumbel_sinkhorn.<module>.X`` for the names loaded on first use."""
    init = Path(__file__).resolve().parents[2] / "src" / PACKAGE / "__init__.py"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_LAZY":
            table = ast.literal_eval(node.value)
            return {f"{PACKAGE}.{k}": f"{PACKAGE}.{v}.{k}" for k, v in table.items()}
    return {}


LAZY = _lazy_names()


def _canonical(obj: griffe.Object, path: str) -> str:
    """Where ``path`` is defined (and so documented), following re-exports."""
    path = LAZY.get(path, path)
    try:
        return obj.modules_collection[path].canonical_path
    except Exception:  # noqa: BLE001 - unknown: leave it for the strict build to report
        return path


def fence_doctests(text: str) -> str:
    """Put every run of ``>>>`` examples (with their output, up to a blank line) in a fence."""
    out, in_block = [], False
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(">>>") and not in_block:
            out.append("```pycon")
            in_block = True
        elif in_block and not stripped:
            out.append("```")
            in_block = False
        out.append(line)
    if in_block:
        out.append("```")
    return "\n".join(out)


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """The full path of ``target`` as seen from ``obj``, or None when outside the package."""
    if target.startswith("."):  # relative to the module's package, as in an import
        level = len(target) - len(target.lstrip("."))
        base = obj.module.path.split(".")
        base = base[: len(base) - level + (1 if obj.module.is_package else 0)]
        return ".".join([*base, target.lstrip(".")])
    if target.split(".")[0] == PACKAGE:
        return target
    first, _, rest = target.partition(".")
    try:
        path = obj.resolve(first)
    except griffe.NameResolutionError:
        owner = obj if obj.is_class else obj.parent
        inherited = owner.all_members if owner is not None and owner.is_class else {}
        if first not in inherited:
            return None
        path = inherited[first].path
    return f"{path}.{rest}" if rest else path


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring once the whole package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        if pkg.path == PACKAGE:
            self._walk(pkg, set())

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            text = ROLE.sub(lambda m: self._link(obj, m), obj.docstring.value)
            obj.docstring.value = fence_doctests(text)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)

    @staticmethod
    def _link(obj: griffe.Object, match: re.Match) -> str:
        role, tilde, target, call = match.groups()
        shown = (target.rsplit(".", 1)[-1] if tilde else target.lstrip(".")) + (call or "")
        path = _resolve(obj, target)
        if role == "attr" or (path is not None and path.startswith(PLAIN)):
            return f"`{shown}`"
        if path is not None:
            path = _canonical(obj, path)
        else:
            if target.split(".")[0] in {"torch", "numpy", "scipy", "argparse", "os", "pathlib"}:
                return f"`{shown}`"
            path = f"{PACKAGE}.?.{target}"  # unresolvable: let the strict build name it
        return f"[`{shown}`][{path}]"
