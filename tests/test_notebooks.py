"""Runs the notebooks' code cells in order (magics and shell lines skipped)."""

import json
import pathlib

import pytest

from conftest import REPO_ROOT

# Notebooks with a `parameters` cell (the Colab ones) run in a real kernel in
# test_colab_notebooks.py.
NOTEBOOKS = sorted(path for path in (REPO_ROOT / "notebooks").glob("*.ipynb") if '"parameters"' not in path.read_text())


def code_of(notebook: pathlib.Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        for line in "".join(cell["source"]).splitlines():
            stripped = line.strip()
            # IPython magics and shell escapes only install packages here.
            lines.append(line.replace(stripped, "pass") if stripped[:1] in "%!" else line)
    return "\n".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(notebook, reference_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SSRNET_TF_WEIGHTS_DIR", str(reference_dir))
    monkeypatch.chdir(tmp_path)
    exec(compile(code_of(notebook), str(notebook), "exec"), {"__name__": "__main__"})  # noqa: S102
