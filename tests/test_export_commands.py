"""``ssrnet-tf export`` and ``ssrnet-tf bench``."""

import json
import re

import numpy as np
import pytest

from ssrnet_tf import cli, model_spec
from ssrnet_tf.export import TFLiteModel, calibration, convert_to_tflite
from ssrnet_tf.export.benchmark import BenchmarkRow, format_table
from ssrnet_tf.faces import load_age_model
from ssrnet_tf.models import build_ssrnet


def test_int8_export_requires_calibration(tmp_path, capsys):
    model_path = tmp_path / "m.keras"
    model_spec.save_keras(build_ssrnet(), model_path, model_spec.ModelSpec())
    code = cli.main(["export", str(model_path), "--out", str(tmp_path / "m.tflite"), "--quantize", "int8"])
    assert code == 2 and "--calibration-dir" in capsys.readouterr().err


@pytest.mark.parametrize("flag,mode", [("--hybrid-ops", "int8"), ("--per-unit-dense-weights", "dynamic")])
def test_opt_in_flags_name_their_mode(flag, mode, tmp_path, capsys):
    model_path = tmp_path / "m.keras"
    model_spec.save_keras(build_ssrnet(), model_path, model_spec.ModelSpec())
    code = cli.main(["export", str(model_path), "--out", str(tmp_path / "m.tflite"), "--quantize", mode, flag,
                     "--calibration-dir", str(tmp_path)])
    assert code == 2 and flag in capsys.readouterr().err


def test_export_dynamic_prints_its_minimum_runtime_and_hybrid_ops_need_a_flag(tmp_path, capsys):
    model_path = tmp_path / "m.keras"
    model_spec.save_keras(build_ssrnet(), model_path, model_spec.ModelSpec())
    out = tmp_path / "m.tflite"
    assert cli.main(["export", str(model_path), "--out", str(out), "--quantize", "dynamic"]) == 0
    assert "minimum runtime: TFLite / LiteRT 2.7.0" in capsys.readouterr().out
    assert cli.main(["export", str(model_path), "--out", str(out), "--quantize", "dynamic", "--hybrid-ops"]) == 0
    assert "minimum runtime: TFLite / LiteRT 2.4.0" in capsys.readouterr().out


def test_export_keras_file_keeps_its_spec(tmp_path):
    model_path = tmp_path / "m.keras"
    spec = model_spec.ModelSpec(margin=0.25, architecture="ssrnet test")
    model_spec.save_keras(build_ssrnet(stage_bins=(3, 3)), model_path, spec)
    out = tmp_path / "m.tflite"
    assert cli.main(["export", str(model_path), "--out", str(out), "--quantize", "float16"]) == 0
    assert model_spec.read_tflite_spec(out) == spec


def test_bench_on_given_files(tmp_path, capsys):
    path = tmp_path / "m.tflite"
    convert_to_tflite(build_ssrnet(), path)
    code = cli.main(["bench", str(path), "--threads", "1", "--batches", "1", "4", "--runs", "5",
                     "--output-dir", str(tmp_path / "out")])
    assert code == 0
    out = capsys.readouterr().out
    # Fully delegated; the node count depends on the TensorFlow version
    # (90 with TF 2.21; the CI floor's converter writes another graph).
    assert "CPU:" in out and "m.tflite" in out and "speed-up" in out and re.search(r"\b(\d+)/\1\b", out), out
    report = json.loads((tmp_path / "out" / "benchmark.json").read_text())
    assert {(r["xnnpack"], r["batch"]) for r in report["rows"]} == {(True, 1), (True, 4), (False, 1), (False, 4)}
    assert all(r["p50_ms"] > 0 and r["peak_rss_mib"] > 0 for r in report["rows"])
    assert (tmp_path / "out" / "benchmark.png").stat().st_size > 1000


def test_format_table_aligns_columns():
    row = BenchmarkRow("a/x.tflite", "litert", 1, True, 1, 0.5, 0.6, 0.7, 2000.0, 90.0, None, 80.0, "9/9 nodes")
    lines = format_table([row, row]).splitlines()
    assert len(lines) == 4 and len({len(line.rstrip()) for line in lines[2:]}) == 1


@pytest.mark.slow
def test_export_int8_with_accuracy_check(reference_dir, utkface_dir, tmp_path, capsys):
    out = tmp_path / "imdb_int8.tflite"
    code = cli.main([
        "export", "imdb", "--weights-dir", str(reference_dir), "--out", str(out), "--quantize", "int8",
        "--calibration-dir", str(utkface_dir), "--calibration-count", "200",
        "--check", str(utkface_dir), "--check-count", "300", "--max-mae-drop", "0.15",
    ])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "MAE Keras" in printed and "drop" in printed
    assert TFLiteModel(out).delegation().fully_delegated
    assert model_spec.read_tflite_spec(out).architecture == "ssrnet(3,3,3)"
    # An impossible bound makes the command fail.
    code = cli.main([
        "export", "imdb", "--weights-dir", str(reference_dir), "--out", str(out), "--quantize", "dynamic",
        "--check", str(utkface_dir), "--check-count", "100", "--max-mae-drop", "-1",
    ])
    assert code == 1


@pytest.mark.slow
def test_bench_default_builds_every_export_mode(reference_dir, utkface_dir, tmp_path, capsys):
    code = cli.main(["bench", "--weights", "imdb", "--weights-dir", str(reference_dir), "--threads", "1",
                     "--batches", "1", "--runs", "5", "--xnnpack-only", "--output-dir", str(tmp_path)])
    assert code == 0
    names = {p.name for p in tmp_path.iterdir()}
    for mode in ("none", "float16", "dynamic", "int8"):
        assert f"ssrnet_{mode}.tflite" in names
    assert {"published_graph_float32.tflite", "ssrnet.keras", "benchmark.json"} <= names
    # Every file bench exports from the published weights has their crop and their ages.
    faces, _ = calibration.labelled_faces(utkface_dir, 64, limit=6, seed=3)
    published = load_age_model("imdb", weights_dir=reference_dir)
    for name in ("ssrnet.keras", "ssrnet_none.tflite", "ssrnet_float16.tflite", "ssrnet_int8_int8-input.tflite"):
        model = load_age_model(tmp_path / name)
        assert model.spec == published.spec, name
        tolerance = 1.5 if "int8" in name else 0.05  # int8 calibrated on drawn faces
        np.testing.assert_allclose(model.ages(faces), published.ages(faces), atol=tolerance, err_msg=name)
