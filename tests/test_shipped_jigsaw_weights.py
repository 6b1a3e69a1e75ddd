"""Every shipped jigsaw model loads by name and solves a slice of the test set as documented."""

import math
import os

import pytest

from gumbel_sinkhorn import pretrained
from gumbel_sinkhorn.tasks.jigsaw import METRICS, JigsawTask

DATA_ROOT = os.environ.get("GUMBEL_SINKHORN_DATA")
SLICE = 500
SHIPPED = [name for name in pretrained.available() if "x" in name.rsplit("-", 1)[-1]]


def test_the_promised_models_are_shipped():
    expected = {f"mnist-{g}x{g}" for g in range(2, 7)} | {"fashion-mnist-2x2", "fashion-mnist-3x3"}
    assert expected <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_load_and_are_small(name):
    path = pretrained.resolve(name)
    assert path.stat().st_size < 2_000_000
    task, model, stored = pretrained.load_model(name)
    assert task.name == "jigsaw" and not model.training
    assert set(METRICS) <= set(stored)
    cfg = task.config
    assert name == f"{cfg.dataset}-{cfg.grid}x{cfg.grid}"


@pytest.mark.skipif(not DATA_ROOT, reason="GUMBEL_SINKHORN_DATA is not set")
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_solve_a_test_slice_as_documented(name):
    task, model, stored = pretrained.load_model(name)
    task = JigsawTask.from_config(task.config.replace(test_size=SLICE), data_root=DATA_ROOT)
    measured = task.evaluate(model)
    p = stored["prop_exact"]
    tolerance = 4 * math.sqrt(p * (1 - p) / SLICE) + 0.01  # a slice, not the whole test set
    assert abs(measured["prop_exact"] - p) <= tolerance, (measured, stored)
