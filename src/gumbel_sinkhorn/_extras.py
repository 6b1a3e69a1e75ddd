"""The command line's own dependencies (the ``cli`` extra), and one clear error when one is missing.

The operators (``import gumbel_sinkhorn``: Sinkhorn, matching, permutations, metrics) need only
torch, NumPy, SciPy and lapx. The command line, training (``train.fit``: progress bars), the data
layer (``gumbel_sinkhorn.data``: images, downloads) and figures also need what ``CLI_EXTRA`` lists,
installed by ``pip install 'gumbel-sinkhorn[cli]'``.

>>> sorted(CLI_EXTRA.values())
['Pillow', 'matplotlib', 'tqdm']
>>> print(missing("PIL", "reading images"))
reading images needs Pillow, which is not installed: pip install 'gumbel-sinkhorn[cli]'
(or pip install Pillow)
"""

from __future__ import annotations

import importlib.util

#: module name -> the distribution that provides it
CLI_EXTRA = {"tqdm": "tqdm", "PIL": "Pillow", "matplotlib": "matplotlib"}


def missing(module: str, needed_for: str) -> ModuleNotFoundError:
    """The error to raise when ``module`` of the ``cli`` extra cannot be imported."""
    package = CLI_EXTRA[module]
    return ModuleNotFoundError(
        f"{needed_for} needs {package}, which is not installed: "
        f"pip install 'gumbel-sinkhorn[cli]' (or pip install {package})",
        name=module,
    )


def check_cli() -> None:
    """Raise ``missing`` for the first command-line dependency not installed (imports none)."""
    for module in CLI_EXTRA:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a module set to None in sys.modules, a broken one
            found = False
        if not found:
            raise missing(module, "the gumbel-sinkhorn command line")
