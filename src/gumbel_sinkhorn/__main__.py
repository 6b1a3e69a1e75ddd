"""``python -m gumbel_sinkhorn`` is the ``gumbel-sinkhorn`` command (also under torchrun)."""

import sys

from .cli import main

sys.exit(main())
