"""Doctests that read the real MNIST files are skipped when GUMBEL_SINKHORN_DATA is unset."""

import os

import pytest
from _pytest.doctest import DoctestItem


def pytest_collection_modifyitems(items):
    if os.environ.get("GUMBEL_SINKHORN_DATA"):
        return
    skip = pytest.mark.skip(reason="GUMBEL_SINKHORN_DATA is not set (the folder holding mnist/)")
    for item in items:
        if isinstance(item, DoctestItem) and any(
            "GUMBEL_SINKHORN_DATA" in example.source for example in item.dtest.examples
        ):
            item.add_marker(skip)
