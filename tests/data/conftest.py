import os
from pathlib import Path

import pytest

from gumbel_sinkhorn.data import mnist

DATA_ROOT = os.environ.get("GUMBEL_SINKHORN_DATA")  # read before the fixtures unset it


@pytest.fixture
def data_root() -> Path:
    """The real data root (holding mnist/ and fashion-mnist/), or skip."""
    if not DATA_ROOT:
        pytest.skip("GUMBEL_SINKHORN_DATA is not set (the folder holding mnist/, fashion-mnist/)")
    return Path(DATA_ROOT)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    """Every test gets an empty user cache, an unset data root, and no mirrors (no network)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("GUMBEL_SINKHORN_DATA", raising=False)
    monkeypatch.setattr(mnist, "MIRRORS", {"mnist": (), "fashion-mnist": ()})
    return cache / "gumbel-sinkhorn"
