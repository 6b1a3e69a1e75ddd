"""Experiments as Tasks for the shared training loop (``gumbel_sinkhorn.train.fit``)."""
