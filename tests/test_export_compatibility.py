"""Runtime compatibility check: exports right on TFLite 2.14, or refused at load."""

import os

import numpy as np
import pytest

from ssrnet_tf import pretrained
from ssrnet_tf.export import compatibility, convert_to_tflite, export_matrix
from ssrnet_tf.export.compatibility import RuntimeRun, judge
from ssrnet_tf.models import build_ssrnet

from conftest import REPO_ROOT

AGES = np.array([30.0, 25.0, 40.0])


def run(ages=None, error=None, version="2.14.0"):
    return RuntimeRun("tflite_runtime", version, None if ages is None else np.asarray(ages, float), error)


def litert(ages):
    return RuntimeRun("ai_edge_litert", "2.3.0", np.asarray(ages, float))


def test_agreement_with_either_litert_kernel_family():
    # int8 kernels of XNNPACK and the reference kernels round differently;
    # the older runtime may run either.
    xnnpack, reference = litert(AGES + 0.5), litert(AGES)
    assert judge("a.tflite", "int8", "1.14.0", xnnpack, reference, run(AGES + 0.08)).status == "agree"
    failed = judge("a.tflite", "int8", "1.14.0", xnnpack, reference, run(AGES + 0.2))
    assert not failed.ok and "differ by up to 0.200" in failed.status
    assert not judge("a.tflite", "float", "1.14.0", litert(AGES), litert(AGES), run(AGES + 0.06)).ok


def test_refusal_is_right_only_when_the_file_declares_a_newer_runtime():
    refused = run(error="Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'")
    assert judge("a.tflite", "int8", "2.17.0", litert(AGES), litert(AGES), refused).status == "refused"
    wrong = judge("a.tflite", "int8", "1.14.0", litert(AGES), litert(AGES), refused)
    assert not wrong.ok and "declares runtime 1.14.0" in wrong.status
    silently_wrong = judge("a.tflite", "int8", "2.17.0", litert(AGES), litert(AGES), run(AGES - 12))
    assert not silently_wrong.ok and "despite declaring 2.17.0" in silently_wrong.status


def test_check_faces_are_whole_pixel_values_like_an_apps_crops():
    faces = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(compatibility.faces_at(faces, 64), faces)
    resized = compatibility.faces_at(faces + 0.4, 112)
    assert resized.shape == (3, 112, 112, 3) and resized.dtype == np.float32
    np.testing.assert_array_equal(resized, np.round(resized))
    assert resized.min() >= 0 and resized.max() <= 255


def test_worker_matches_the_project_runner(tmp_path):
    from ssrnet_tf.export import TFLiteModel

    path = tmp_path / "ssrnet.tflite"
    flatbuffer = convert_to_tflite(build_ssrnet(), path)
    faces = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 3)).astype("float32")
    runs = compatibility.run_runtime([path], faces)
    assert runs[str(path)].error is None
    np.testing.assert_allclose(runs[str(path)].ages, TFLiteModel(flatbuffer).predict(faces)[:, 0], atol=1e-5)
    assert compatibility.file_kind(flatbuffer) == "float"


def side_python():
    """TFLite 2.14 (tflite-runtime) in a side venv: CI's, else made here."""
    configured = os.environ.get(compatibility.SIDE_PYTHON_ENV)
    if configured:
        return configured
    try:
        return compatibility.create_side_environment(REPO_ROOT / ".venv-tflite214")
    except RuntimeError as error:
        pytest.skip(f"cannot create the tflite-runtime 2.14 side environment: {error}")


@pytest.mark.slow
def test_every_export_mode_agrees_on_tflite_214_or_is_refused(reference_dir, tmp_path):
    """The issue's table: SSR-Net and the shipped compact model's backbone with each head, every mode."""
    python = side_python()
    faces = np.load(reference_dir / "inputs_bgr_uint8_64.npy").astype("float32")
    report = compatibility.build_and_check(
        tmp_path, faces, side_python=python, ssrnet_weights=reference_dir / "ssrnet_3_3_3_64_1.0_1.0_imdb.h5"
    )
    print(report.table())
    verdicts = {os.path.basename(check.path): check for check in report.files}
    # Every default export agrees (dynamic range included: weight-only since
    # the converter's hybrid file of the trained backbone was 0.42 years off).
    assert all(check.ok for check in verdicts.values()), report.table()
    assert verdicts["ssrnet_dynamic.tflite"].kind == "float"
    newer = {name for name, check in verdicts.items() if check.min_runtime == "2.17.0"}
    assert all(verdicts[name].status == "refused" for name in newer)
    assert all(check.status == "agree" for name, check in verdicts.items() if name not in newer)
    # Default exports all run on 2.14; each family has a refused opt-in file.
    assert all(any(name.endswith(f"_{opt_in}.tflite") for opt_in in export_matrix.OPT_IN) for name in newer)
    assert {name.split("_")[0] for name in newer} == {"ssrnet", "mobilenet"}
    assert any(name.startswith("ssrnet_qat") for name in verdicts)
    assert sum(name.endswith("_int8.tflite") for name in verdicts) == 1 + len(export_matrix.AGE_HEADS)  # + SSR-Net
    # The int8 files shipped in the package pass too.
    shipped = [pretrained.shipped_path(f"{name}-int8") for name in pretrained.shipped_models()]
    shipped_report = compatibility.check_files(shipped, faces, side_python=python)
    print(shipped_report.table())
    assert all(check.status == "agree" for check in shipped_report.files), shipped_report.table()
