"""The Colab notebooks: committed clean, and executed headless in SMOKE mode.

Each notebook runs in a real IPython kernel (nbclient), so magics, shell
lines and the `google.colab` guards behave as in Jupyter; outside Colab the
guarded cells take their local branch. SMOKE trains on a few hundred real
UTKFace faces for a few steps, so this checks the notebooks, not the models.
"""

import json
import os

import pytest

from conftest import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
COLAB_NOTEBOOKS = ("train_ssrnet_colab.ipynb", "backbones_heads_colab.ipynb", "export_and_benchmark.ipynb")

#: Files each notebook must leave under SSRNET_WORK_DIR.
PRODUCTS = {
    "train_ssrnet_colab.ipynb": (
        "runs/ssrnet/model.keras", "runs/ssrnet/tensorboard", "evaluation/ssrnet_keras/report.md",
        "evaluation/ssrnet_keras/ca_curve.png", "export/ssrnet_float32.tflite", "export/ssrnet_int8.tflite",
        "bench/benchmark.json", "bench/benchmark.png",
    ),
    "backbones_heads_colab.ipynb": (
        "runs/agn_mobilenet_v2_mobilenet_v2/evaluation/report.json",
        "runs/ldl_mobilenet_v2_mobilenet_v2/evaluation/report.json", "heads_mobilenet_v2.png",
    ),
    "export_and_benchmark.ipynb": (
        "export/ssrnet_imdb_float32.tflite", "export/ssrnet_imdb_float16.tflite",
        "export/ssrnet_imdb_dynamic.tflite", "export/ssrnet_imdb_int8.tflite", "bench/benchmark.json",
    ),
}


def _cells(path):
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("path", sorted(NOTEBOOK_DIR.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_notebook_is_valid_and_has_no_outputs(path):
    nbformat = pytest.importorskip("nbformat", reason="nbformat comes with the test extra: pip install -e '.[test]'")
    nbformat.validate(nbformat.read(str(path), as_version=4))
    for index, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name} cell {index} has outputs; clear them before committing"
            assert cell["execution_count"] is None, f"{path.name} cell {index} has an execution count"


@pytest.mark.parametrize("name", COLAB_NOTEBOOKS)
def test_colab_notebook_has_intro_badge_and_one_parameters_cell(name):
    cells = _cells(NOTEBOOK_DIR / name)
    intro = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown" and intro.startswith("# ")
    assert "colab.research.google.com/github/" in intro and intro.count(f"/blob/main/notebooks/{name})") == 1
    tagged = [cell for cell in cells if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    parameters = "".join(tagged[0]["source"])
    for name_in_cell in ("SMOKE", "DATA_DIR", "WORK_DIR", "SSRNET_SMOKE", "SSRNET_DATA_DIR", "SSRNET_WORK_DIR"):
        assert name_in_cell in parameters


@pytest.mark.slow
@pytest.mark.parametrize("name", COLAB_NOTEBOOKS)
def test_colab_notebook_executes_in_smoke_mode(name, utkface_dir, reference_dir, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="nbclient comes with the test extra: pip install -e '.[test]'")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel", reason="ipykernel comes with the test extra: pip install -e '.[test]'")
    work_dir = tmp_path / "work"
    monkeypatch.setenv("SSRNET_SMOKE", "1")
    monkeypatch.setenv("SSRNET_DATA_DIR", str(utkface_dir))
    monkeypatch.setenv("SSRNET_WORK_DIR", str(work_dir))
    monkeypatch.setenv("SSRNET_TF_WEIGHTS_DIR", str(reference_dir))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(str(NOTEBOOK_DIR / name), as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()  # raises CellExecutionError naming the failing cell
    finally:
        nbformat.write(notebook, str(tmp_path / name))  # the executed copy, for reading a failure
    missing = [product for product in PRODUCTS[name] if not os.path.exists(work_dir / product)]
    assert not missing, f"{name} did not write {missing}"
