"""The errors a user can fix: a bad argument, a bad option, a bad or missing file.

Every one derives from :class:`UserError` and from the built-in exception it has always been
(``ValueError``, ``TypeError``, ``FileNotFoundError``), so ``except ValueError`` keeps working.
The command line prints a ``UserError`` as one line and exits with status 2; any other exception
is a bug and keeps its traceback.

>>> import torch, gumbel_sinkhorn as gs
>>> try:
...     gs.sinkhorn(torch.zeros(3, 3), n_iter=0)
... except gs.UserError as err:
...     print(type(err).__name__, isinstance(err, ValueError))
InvalidValueError True
"""

from __future__ import annotations


class UserError(Exception):
    """An error in what was asked for (an argument, an option, an input file), the user's to fix."""


class InvalidValueError(UserError, ValueError):
    """An argument or option has a value outside what is accepted."""


class InvalidTypeError(UserError, TypeError):
    """An argument has the wrong type (a list where a tensor is expected, an integer dtype)."""


class BadFileError(UserError, ValueError):
    """A file exists but cannot be used: corrupt, truncated, of another kind or version."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder that was asked for does not exist."""


class UnwritablePathError(UserError, PermissionError):
    """A place where results should go cannot be written."""
