"""What the results scripts share: run a ``gumbel-sinkhorn`` command line in this process."""

from __future__ import annotations

import shlex
import sys

from gumbel_sinkhorn import cli


def gumbel_sinkhorn(*args) -> str:
    """Run ``gumbel-sinkhorn ARGS`` in this process (exit on failure); return it as a shell line."""
    args = [str(a) for a in args]
    line = "gumbel-sinkhorn " + shlex.join(args)
    print("$ " + line, flush=True)
    if cli.main(args) != 0:
        sys.exit(f"failed: {line}")
    return line
