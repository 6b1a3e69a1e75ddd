"""The subcommands of ``gumbel-sinkhorn``: one module each, with ``register(commands)``."""
