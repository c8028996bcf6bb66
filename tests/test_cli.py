"""The ssrnet-tf command line."""

import subprocess
import sys

import pytest

from ssrnet_tf import cli
from ssrnet_tf.errors import ExitCode
from ssrnet_tf.faces import synthetic_face


def test_weights_lists_the_registry(capsys):
    assert cli.main(["weights"]) == 0
    out = capsys.readouterr().out
    for name in ("imdb", "wiki", "morph2", "megaface_asian"):
        assert name in out


def test_unknown_weights_is_a_clear_error(capsys, tmp_path):
    code = cli.main(["demo", "--weights", str(tmp_path / "missing.h5"), "--output-dir", str(tmp_path)])
    assert code == ExitCode.NOT_FOUND
    assert "missing.h5" in capsys.readouterr().err


def test_synthetic_face_is_deterministic():
    face = synthetic_face(128, seed=3)
    assert face.shape == (128, 128, 3) and face.dtype.name == "uint8"
    assert (face == synthetic_face(128, seed=3)).all()
    with pytest.raises(ValueError, match="size"):
        synthetic_face(8)


@pytest.mark.slow
def test_demo_runs_end_to_end(reference_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ssrnet_tf", "demo", "--weights-dir", str(reference_dir),
         "--output-dir", str(tmp_path), "--runs", "3"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "predicted age (TFLite fp32)" in result.stdout
    assert (tmp_path / "ssrnet_imdb_float32.tflite").stat().st_size > 100_000
    assert (tmp_path / "demo_face.png").is_file()
