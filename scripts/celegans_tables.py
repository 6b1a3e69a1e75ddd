"""Reproduce one of the paper's two C. elegans tables: `python scripts/celegans_tables.py TABLE`.

TABLE is ``candidates`` (accuracy by mean number of candidate names, 1 and 4 worms) or ``known``
(accuracy by fraction of named neurons, 4 worms, eta 0.1 and 0.2). Records go to
docs/celegans/TABLE.json (a rerun resumes), the figure to docs/celegans/TABLE.png; further
arguments go to ``gumbel-sinkhorn celegans reproduce``.
"""

import sys

from gumbel_sinkhorn.cli import main

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("candidates", "known"):
        sys.exit(__doc__)
    table, rest = sys.argv[1], sys.argv[2:]
    out = f"docs/celegans/{table}"
    sys.exit(
        main(
            [
                "celegans",
                "reproduce",
                "--table",
                table,
                "--output",
                f"{out}.json",
                "--figure",
                f"{out}.png",
                *rest,
            ]
        )
    )
