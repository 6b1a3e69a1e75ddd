"""Old call forms that still work for one release, with a DeprecationWarning.

Here, inside ``ops/``, so that the operators' own warnings (which skip the frames of this folder)
still point at the caller's line.
"""

from __future__ import annotations

import functools
import warnings

from ..errors import InvalidTypeError


def deprecated_positional(*names: str):
    """Let ``names`` (keyword-only now) still come positionally after the first argument, with a
    DeprecationWarning, for one release.

    >>> @deprecated_positional("n_iter")
    ... def f(x, *, n_iter=20):
    ...     return n_iter
    >>> f(1, n_iter=5)
    5
    """

    def wrap(fn):
        @functools.wraps(fn)
        def inner(first, *args, **kwargs):
            if args:
                if len(args) > len(names):
                    raise InvalidTypeError(
                        f"{fn.__name__}() takes {', '.join(names)} by keyword, got "
                        f"{len(args) + 1} positional arguments"
                    )
                for name, value in zip(names, args, strict=False):
                    if name in kwargs:
                        raise InvalidTypeError(f"{fn.__name__}() got two values for {name!r}")
                    kwargs[name] = value
                warnings.warn(
                    f"{fn.__name__}(): pass {', '.join(names[: len(args)])} by keyword "
                    f"(e.g. {names[0]}=...); positional use is deprecated",
                    DeprecationWarning,
                    stacklevel=2,
                )
            return fn(first, **kwargs)

        return inner

    return wrap
