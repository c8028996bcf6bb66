"""The ssrnet-tf command line."""

import os
import re
import subprocess
import sys

import pytest

from ssrnet_tf import cli
from ssrnet_tf.errors import ExitCode
from conftest import REPO_ROOT
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


def test_version_and_bare_command_print_and_exit_zero(capsys):
    from ssrnet_tf import __version__

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "first steps:" in out and "ssrnet-tf predict" in out and "COMMAND --help" in out


def test_every_command_has_a_description_and_an_example():
    import argparse

    parser = cli.build_parser()
    (commands,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]  # pylint: disable=protected-access
    assert len(commands.choices) >= 8
    for name, sub in commands.choices.items():
        assert sub.description and len(sub.description) > 40, f"{name} has no description"
        examples = [line.strip() for line in (sub.epilog or "").splitlines()[1:]]
        assert examples and all(line.startswith("ssrnet-tf ") or line.startswith("--") for line in examples[:1]), name
        assert any(line.startswith(f"ssrnet-tf {name}") for line in examples), f"{name} has no example of itself"


@pytest.mark.parametrize("argv", [["export", "imdb", "--out", "x.tflite"], ["export", "--model", "imdb", "--out", "x.tflite"]])
def test_the_model_is_positional_or_an_option(argv):
    from ssrnet_tf.commands.common import model_from

    assert model_from(cli.build_parser().parse_args(argv), "export") == "imdb"


def test_two_models_or_none_is_a_cli_error():
    from ssrnet_tf.commands.common import model_from

    parser = cli.build_parser()
    with pytest.raises(ValueError, match="--model"):
        model_from(parser.parse_args(["export", "--out", "x.tflite"]), "export")
    with pytest.raises(ValueError, match="not both"):
        model_from(parser.parse_args(["export", "imdb", "--model", "wiki", "--out", "x.tflite"]), "export")
    assert parser.parse_args(["bench", "a.tflite", "--model", "b.tflite"]).model_option == ["b.tflite"]


def test_unknown_config_lists_the_names(capsys):
    assert cli.main(["train", "--config", "no_such_config"]) == ExitCode.NOT_FOUND
    err = capsys.readouterr().err
    assert "ssrnet" in err and "agn_compact" in err


def test_missing_data_speaks_cli(tmp_path, capsys):
    assert cli.main(["train", "--config", "ssrnet", f"data.path={tmp_path / 'UTKFace'}",
                     f"run.output_dir={tmp_path / 'run'}"]) == ExitCode.NOT_FOUND
    err = capsys.readouterr().err
    assert f"data.path={tmp_path / 'UTKFace'}: not found" in err and "as data.path=" in err
    assert "read_utkface" not in err


def test_missing_weights_dir_is_warned(tmp_path, capsys):
    code = cli.main(["weights", "no_such_weights", "--weights-dir", str(tmp_path / "nowhere")])
    assert code == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "--weights-dir" in err and "is not a folder" in err
    assert "imdb" in err  # the unknown name lists the valid ones


NOISE = re.compile(r"^(?:[IWEF]\d{4} |WARNING: All log messages|INFO: Created TensorFlow|fully_quantize)|Warning|warn",
                   re.M)


@pytest.mark.slow
def test_normal_commands_print_no_tensorflow_logs_or_warnings(reference_dir, utkface_dir, tmp_path):
    """predict, export (int8) and a short train: stderr has no TF/absl lines and no warnings."""
    import cv2

    calibration = tmp_path / "faces"
    calibration.mkdir()
    for path in sorted(utkface_dir.glob("*.jpg"))[:16]:
        (calibration / path.name).symlink_to(path)
    cv2.imwrite(str(tmp_path / "face.png"), cv2.resize(synthetic_face(200), (400, 400)))
    env = {**os.environ, "SSRNET_TF_WEIGHTS_DIR": str(reference_dir), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    commands = {
        "export": ["export", "imdb", "--out", str(tmp_path / "m.tflite"), "--quantize", "int8",
                   "--calibration-dir", str(calibration), "--calibration-count", "16"],
        "predict": ["predict", str(tmp_path / "face.png"), "--model", str(tmp_path / "m.tflite")],
        "train": ["train", "--config", "ssrnet", f"data.path={utkface_dir}", "data.limit=120", "run.epochs=1",
                  f"run.output_dir={tmp_path / 'run'}", "--progress", "2"],
    }
    for name, argv in commands.items():
        result = subprocess.run([sys.executable, "-m", "ssrnet_tf", *argv], capture_output=True, text=True,
                                timeout=600, env=env, cwd=tmp_path)
        assert result.returncode == 0, f"{name}: {result.stderr[-2000:]}"
        assert not NOISE.search(result.stderr), f"{name} printed to stderr:\n{result.stderr[-2000:]}"
    verbose = subprocess.run([sys.executable, "-m", "ssrnet_tf", "--verbose", *commands["predict"]],
                             capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert verbose.returncode == 0 and "I0000" in verbose.stderr  # --verbose shows them
