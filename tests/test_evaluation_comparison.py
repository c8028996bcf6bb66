"""ssrnet_tf.evaluation.comparison: reports side by side."""

import json

import numpy as np
import pytest

from ssrnet_tf.evaluation import comparison, evaluate_predictions


@pytest.fixture(name="reports")
def _reports(tmp_path):
    y_true = np.array([5, 15, 25, 35, 45, 55, 65, 75], float)
    evaluate_predictions(y_true, y_true + 1.0, tmp_path / "a")
    evaluate_predictions(y_true, y_true + 4.0, tmp_path / "b")
    return {"head A": tmp_path / "a", "head B": tmp_path / "b" / "report.json"}


def test_table_has_one_row_per_report_in_order(reports):
    lines = comparison.comparison_table(reports).splitlines()
    assert lines[0].startswith("| model | faces | MAE | CA(3) | CA(5) | CA(10) | sigma | AAR |")
    assert lines[2] == "| head A | 8 | 1.000 | 1.000 | 1.000 | 1.000 | 0.000 | 9.000 |"
    assert lines[3].startswith("| head B | 8 | 4.000 | 0.000 | 1.000 |")
    assert len(lines) == 4


def test_reports_can_be_dicts(reports):
    loaded = json.loads((reports["head A"] / "report.json").read_text())
    assert comparison.comparison_table({"x": loaded}).splitlines()[2].startswith("| x | 8 | 1.000 |")


def test_plot_is_written(reports, tmp_path):
    path = comparison.plot_comparison(reports, tmp_path / "out" / "heads.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="report.json"):
        comparison.load_report(tmp_path)
    with pytest.raises(ValueError, match="at least one"):
        comparison.plot_comparison({}, tmp_path / "x.png")
