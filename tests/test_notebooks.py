"""Every notebook of examples/ runs top to bottom with its small settings (GS_NOTEBOOK_QUICK=1).

A notebook whose metadata says ``"gumbel_sinkhorn": {"needs_data": true}`` reads MNIST: it runs
only where GUMBEL_SINKHORN_DATA names the local copy (CI sets it), like the doctests that read it.
"""

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    stored = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and c.outputs]
    assert not stored, (
        f"{path.name} stores outputs in cells {stored}: clear them "
        f"(jupyter nbconvert --clear-output --inplace {path.relative_to(EXAMPLES.parent)})"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch):
    notebook = nbformat.read(path, as_version=4)
    if notebook.metadata.get("gumbel_sinkhorn", {}).get("needs_data") and not os.environ.get(
        "GUMBEL_SINKHORN_DATA"
    ):
        pytest.skip("GUMBEL_SINKHORN_DATA is not set (the folder holding mnist/)")
    monkeypatch.setenv("GS_NOTEBOOK_QUICK", "1")  # the kernel inherits this process's environment
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,  # per cell
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    # a failing cell raises CellExecutionError, which names the cell and shows its traceback
    client.execute()
