"""notebooks/inspect.ipynb runs top to bottom on a short run made here, so an API change that
breaks it fails the suite (the notebook is committed without outputs)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipelines.test_inspect import demo_runs

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "inspect.ipynb"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data):
    return demo_runs(tmp_path_factory, shared_data)


def test_notebook_is_committed_without_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])  # papermill can set RUN too


def test_notebook_executes_on_a_run(runs, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    report = tmp_path / "report.html"
    monkeypatch.setenv("ALIGNCRAFT_RUN", str(runs["sft"]))
    monkeypatch.setenv("ALIGNCRAFT_PAIRS_RUN", str(runs["pairs"]))
    monkeypatch.setenv("ALIGNCRAFT_REPORT", str(report))
    monkeypatch.setenv("MPLBACKEND", "agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on any failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the funnel and the histograms
    html = "".join(o["data"].get("text/html", "") for o in outputs if "data" in o)
    assert "duplicate_of" in html and "too_long" in html  # rejections with examples
    assert "Be brief." in html  # a near-duplicate cluster
    assert "chosen" in html and "rejected" in html  # the pair view of the pair run
    assert report.stat().st_size > 10_000
