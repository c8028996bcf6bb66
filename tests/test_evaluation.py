"""Evaluation reports for .keras and .tflite models."""

import json

import numpy as np
import pytest

from ssrnet_tf import cli, model_spec
from ssrnet_tf.evaluation import evaluate_predictions
from ssrnet_tf.export import convert_to_tflite
from ssrnet_tf.models import build_ssrnet

REPORT_FILES = ("report.json", "report.md", "mae_per_group.png", "predicted_vs_true.png", "ca_curve.png",
                "error_histogram.png")


def test_report_files_and_values(tmp_path):
    y_true = np.array([5, 15, 25, 35, 45, 55, 65, 75], float)
    y_pred = y_true + np.array([1, -2, 3, 0, 4, -5, 6, 2], float)
    report = evaluate_predictions(y_true, y_pred, tmp_path, {"model": "m"})
    for name in REPORT_FILES:
        assert (tmp_path / name).stat().st_size > 0, name
    assert report["mae"] == pytest.approx(23 / 8)
    # CA(n) is strict ("absolute errors smaller than n", SSR-Net): errors 1, 2, 0, 2 are < 3 (3 is not).
    assert report["ca_curve"]["3"] == pytest.approx(4 / 8)
    assert json.loads((tmp_path / "report.json").read_text())["count"] == 8
    assert "| 71-81 | 1 | 2.000 |" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_evaluate_command_on_keras_and_tflite(utkface_dir, tmp_path):
    model = build_ssrnet()
    keras_path = model_spec.save_keras(model, tmp_path / "m.keras", model_spec.ModelSpec.for_model(model))
    tflite_path = tmp_path / "m.tflite"
    convert_to_tflite(model, tflite_path)
    maes = []
    for path in (keras_path, tflite_path):
        out = tmp_path / path.suffix[1:]
        assert cli.main(["evaluate", "--model", str(path), "--data", str(utkface_dir), "--limit", "120",
                         "--output-dir", str(out)]) == 0
        for name in REPORT_FILES:
            assert (out / name).is_file(), name
        maes.append(json.loads((out / "report.json").read_text())["mae"])
    assert maes[0] == pytest.approx(maes[1], abs=0.01)
