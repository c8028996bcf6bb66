"""The notebooks: committed clean, and executed headless as Colab runs them.

Each notebook runs in a real IPython kernel (nbclient), so magics, shell
lines and the `google.colab` guards behave as in Jupyter. The kernel's
Python is a fresh venv layered over this one (as Colab has TensorFlow
preinstalled), its working folder holds the wheel built from this checkout
(as if uploaded to Colab's /content), and the install cell installs that
wheel: the notebook imports the wheel's ssrnet_tf, not the checkout. SMOKE
trains on a few hundred real UTKFace faces for a few steps, so this checks
the notebooks, not the models.
"""

import json
import os
import shutil

import pytest

from conftest import REPO_ROOT, make_layered_venv

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(path.name for path in NOTEBOOK_DIR.glob("*.ipynb"))
COLAB_NOTEBOOKS = ("train_ssrnet_colab.ipynb", "backbones_heads_colab.ipynb", "export_and_benchmark.ipynb")

#: Files each notebook must leave under SSRNET_WORK_DIR (the demo: in its working folder).
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
    "ssrnet_reference_demo.ipynb": ("./ssrnet_imdb_float32.tflite",),  # "./": the kernel's working folder
}


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _source(cell) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_valid_and_has_no_outputs(name):
    nbformat = pytest.importorskip("nbformat", reason="nbformat comes with the test extra: pip install -e '.[test]'")
    path = NOTEBOOK_DIR / name
    nbformat.validate(nbformat.read(str(path), as_version=4))
    for index, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{name} cell {index} has outputs; clear them before committing"
            assert cell["execution_count"] is None, f"{name} cell {index} has an execution count"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_has_intro_badge_and_install_cell(name):
    cells = _cells(NOTEBOOK_DIR / name)
    intro = _source(cells[0])
    assert cells[0]["cell_type"] == "markdown" and intro.startswith("# ")
    assert "colab.research.google.com/github/" in intro and intro.count(f"/blob/main/notebooks/{name})") == 1
    install = _source(cells[1])
    assert "INSTALL_FROM" in install and "raise RuntimeError" in install, "cell 1 must be the install cell"
    assert sum("INSTALL_FROM =" in _source(cell) for cell in cells) == 1


@pytest.mark.parametrize("name", COLAB_NOTEBOOKS)
def test_colab_notebook_has_one_parameters_cell(name):
    cells = _cells(NOTEBOOK_DIR / name)
    tagged = [cell for cell in cells if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    parameters = _source(tagged[0])
    for name_in_cell in ("SMOKE", "DATA_DIR", "WORK_DIR", "SSRNET_SMOKE", "SSRNET_DATA_DIR", "SSRNET_WORK_DIR"):
        assert name_in_cell in parameters


def test_only_training_notebooks_ask_colab_for_a_gpu():
    for name in NOTEBOOKS:
        metadata = json.loads((NOTEBOOK_DIR / name).read_text())["metadata"]
        wants_gpu = metadata.get("accelerator") == "GPU" or "gpuType" in metadata.get("colab", {})
        assert wants_gpu == (name in ("train_ssrnet_colab.ipynb", "backbones_heads_colab.ipynb")), name


def _client(name, tmp_path, kernel_name="python3"):
    nbclient = pytest.importorskip("nbclient", reason="nbclient comes with the test extra: pip install -e '.[test]'")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel", reason="ipykernel comes with the test extra: pip install -e '.[test]'")
    notebook = nbformat.read(str(NOTEBOOK_DIR / name), as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name=kernel_name,
                                     resources={"metadata": {"path": str(tmp_path)}})
    return nbclient, nbformat, notebook, client


def test_failed_install_stops_the_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("SSRNET_TF_INSTALL_FROM", str(tmp_path / "no_such_wheel-0.0-py3-none-any.whl"))
    nbclient, _, notebook, client = _client("ssrnet_reference_demo.ipynb", tmp_path)
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="the notebook stops here"):
        client.execute()
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells[0].execution_count is not None
    assert all(cell.execution_count is None for cell in code_cells[1:]), "the notebook went on after a failed install"


def _colab_like_kernel(tmp_path, monkeypatch) -> str:
    """A kernel in a fresh venv layered over this one; returns its name."""
    python = make_layered_venv(tmp_path / "colab_venv")
    spec_dir = tmp_path / "jupyter" / "kernels" / "colab-like"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "colab-like", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "colab-like"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_installs_the_wheel_and_runs(name, built_wheel, utkface_dir, reference_dir, tmp_path, monkeypatch):
    content = tmp_path / "content"  # the kernel's working folder, as Colab's /content
    content.mkdir()
    shutil.copy2(built_wheel, content / built_wheel.name)
    work_dir = content / "work"
    monkeypatch.setenv("SSRNET_TF_INSTALL_FROM", f"./{built_wheel.name}")
    monkeypatch.setenv("SSRNET_SMOKE", "1")
    monkeypatch.setenv("SSRNET_DATA_DIR", str(utkface_dir))
    monkeypatch.setenv("SSRNET_WORK_DIR", str(work_dir))
    monkeypatch.setenv("SSRNET_TF_WEIGHTS_DIR", str(reference_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    _, nbformat, notebook, client = _client(name, content, _colab_like_kernel(tmp_path, monkeypatch))
    try:
        client.execute()  # raises CellExecutionError naming the failing cell
    finally:
        nbformat.write(notebook, str(tmp_path / name))  # the executed copy, for reading a failure
    installed = "".join(output.get("text", "") for output in notebook.cells[1].outputs)
    assert str(tmp_path / "colab_venv") in installed, f"ssrnet_tf was not imported from the wheel: {installed!r}"
    missing = [product for product in PRODUCTS[name]
               if not os.path.exists((content if product.startswith("./") else work_dir) / product)]
    assert not missing, f"{name} did not write {missing}"
