import os

from hypothesis import settings

# Property tests run in CI on 2 cores: keep them quick and deterministic.
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
