import os

from hypothesis import settings

# Property tests run in CI on 2 cores: keep them quick and deterministic.
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True)
# `make fuzz`: many more examples, a new random draw each run (it found two wrong test claims)
settings.register_profile("thorough", max_examples=1500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
