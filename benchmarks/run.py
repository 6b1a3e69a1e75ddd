"""The operator benchmarks in one process: soft Sinkhorn, then hard matching (`make bench`).

    .venv/bin/python benchmarks/run.py [--repeat 5] [--threads N] [--quick]

Peers that are not installed are left out (``pip install -e ".[bench]"`` installs them).
The tables are Markdown, as pasted into docs/BENCHMARKS.md.
"""

from __future__ import annotations

import matching
import sinkhorn
from _measure import main

if __name__ == "__main__":
    main(__doc__.split("\n")[0], [sinkhorn.run, matching.run])
