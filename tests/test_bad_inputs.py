"""Bad inputs: every command reports each one exactly, and refusals are one line with their exit code.

The corpus comes from ``tests/bad_corpus.py`` (drawn faces, no data set
needed); each test compares a command's report with the corpus' expected
outcome entry by entry.
"""

import csv
import json
import os
import pathlib
import zipfile

import numpy as np
import pytest

from ssrnet_tf import cli, model_spec
from ssrnet_tf.data.folder_walk import display_path
from ssrnet_tf.errors import ExitCode
from ssrnet_tf.training import config as config_lib
from ssrnet_tf.utils import atomic

import bad_corpus  # pylint: disable=wrong-import-order  # tests/ is on sys.path (rootdir conftest)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_corpus")
    entries = bad_corpus.make_corpus(root)
    return root, root / "photos", entries


@pytest.fixture(scope="module")
def model_path(corpus):
    from ssrnet_tf.models import build_ssrnet

    model = build_ssrnet()
    return model_spec.save_keras(model, corpus[0] / "ssrnet.keras", model_spec.ModelSpec.for_model(model))


def _check_skipped(entries, folder, skipped, command, in_records=()):
    """Every entry not used is in ``skipped`` with its reason; nothing else is.

    Outcomes starting with one of ``in_records`` are reported per image
    (predict's error lines), not as skipped entries.
    """
    reasons = {entry["path"]: entry["reason"] for entry in skipped}
    expected_skips = set()
    for entry in entries:
        key = display_path(entry.path(folder))
        outcome = entry.expected(command)
        if outcome in ("used", "no_face") or (in_records and outcome.startswith(in_records)):
            assert key not in reasons, (entry.kind, reasons.get(key))
            continue
        assert key in reasons, f"{entry.kind}: not reported by {command}"
        assert reasons[key].startswith(outcome), (entry.kind, reasons[key], outcome)
        expected_skips.add(key)
    return expected_skips, reasons


def test_corpus_has_at_least_20_kinds(corpus):
    _, folder, entries = corpus
    assert len({entry.kind for entry in entries}) >= 20
    assert sorted(os.listdir(folder)) == sorted(os.fsdecode(entry.name) for entry in entries)


def test_evaluate_reports_every_bad_entry(corpus, model_path, tmp_path, capsys):
    _, folder, entries = corpus
    code = cli.main(["evaluate", "--model", str(model_path), "--data", str(folder), "--output-dir", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    skipped = report["info"]["skipped"]
    expected, reasons = _check_skipped(entries, folder, skipped, "evaluate")
    assert set(reasons) == expected
    used = [e for e in entries if e.evaluate == "used"]
    assert report["count"] == len(used) and report["info"]["input"]["read"] == len(entries)
    assert f"skipped {len(entries) - len(used)} of {len(entries)} inputs" in capsys.readouterr().out


def test_predict_reports_every_bad_entry(corpus, model_path, capsys):
    _, folder, entries = corpus
    assert cli.main(["predict", str(folder), "--model", str(model_path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    records = {line["image"]: line for line in lines[1:-1]}
    summary = lines[-1]["summary"]
    expected, reasons = _check_skipped(entries, folder, summary["skipped_files"], "predict",
                                       in_records=("not a decodable image", "file is empty", "too large"))
    assert set(reasons) == expected
    for entry in entries:
        key, outcome = display_path(entry.path(folder)), entry.predict
        if key in expected or entry.path(folder).is_dir():
            assert key not in records
        elif outcome == "used":
            assert records[key]["faces"], entry.kind
        elif outcome == "no_face":
            assert not records[key]["faces"] and records[key]["reason"], entry.kind
        else:
            assert outcome in records[key]["error"], (entry.kind, records[key])
    for name, outcome in bad_corpus.nested(entries).items():
        assert records[str(folder / name)]["faces"], name
    assert summary["images"] == len(records)


def test_prepare_reports_every_bad_entry(corpus, tmp_path, capsys):
    _, folder, entries = corpus
    out = tmp_path / "crops"
    assert cli.main(["prepare", str(folder), str(out), "--size", "64"]) == 0
    report = json.loads((out / "report.json").read_text())
    problems = report["skipped_files"] + report["bad_labels"] + [
        {"path": e["path"], "reason": e["error"].split(": ", 1)[-1]} for e in report["unreadable"]]
    no_face = {e["path"] for e in report["no_face"]}
    expected, reasons = _check_skipped(entries, folder, problems, "prepare")
    assert set(reasons) == expected
    with open(out / "index.csv", newline="", encoding="utf-8") as handle:
        sources = {row["source"] for row in csv.DictReader(handle)}
    for entry in entries:
        key, relative = display_path(entry.path(folder)), display_path(entry.name.decode("utf-8", "surrogateescape"))
        if entry.prepare == "used" and not entry.path(folder).is_dir():
            assert relative in sources, entry.kind
        elif entry.prepare == "no_face":
            assert key in no_face, entry.kind
    assert set(bad_corpus.nested(entries)) <= sources
    assert "other files: 7" in capsys.readouterr().out


def test_prepare_with_a_label_table(corpus, tmp_path):
    root, folder, _ = corpus
    out = tmp_path / "crops"
    assert cli.main(["prepare", str(folder), str(out), "--size", "64", "--labels", str(root / "labels.csv")]) == 0
    report = json.loads((out / "report.json").read_text())
    reasons = [e["reason"] for e in report["bad_labels"]] + [e["error"] for e in report["unreadable"]]
    for path, _, outcome in bad_corpus.LABEL_ROWS[1:]:
        assert sum(outcome in reason for reason in reasons) == 1, (path, outcome, reasons)
    assert report["counts"]["crops"] == 1


@pytest.mark.slow
def test_tiny_train_reports_every_bad_entry(corpus, tmp_path):
    _, folder, entries = corpus
    run_dir = tmp_path / "run"
    code = cli.main(["train", "--config", "ssrnet", f"data.path={folder}", "data.batch_size=4", "run.epochs=1",
                     "data.cache=null", f"run.output_dir={run_dir}", "--progress", "0"])
    assert code == 0
    skipped, used = {}, 0
    for name in ("train", "val", "test"):
        report = json.loads((run_dir / f"input_report_{name}.json").read_text())
        used += report["counts"]["used"]
        for entry in report["skipped"]:
            skipped.setdefault(entry["path"], entry)
    expected, reasons = _check_skipped(entries, folder, list(skipped.values()), "evaluate")
    assert set(reasons) == expected
    assert used == sum(e.evaluate == "used" for e in entries)
    assert (run_dir / "best.keras").is_file() and not list(run_dir.glob("best.pending*"))
    assert not [p for p in run_dir.rglob("*") if atomic.is_temp_name(p.name)]


# Refusals: one line on stderr, a distinct exit code, no traceback.

def _one_line(capsys, command, code):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith(f"ssrnet-tf {command}: error: "), err
    assert not any("Traceback" in line for line in err)
    return err[-1]


@pytest.mark.parametrize("override, key", [
    ("run.epochs=three", "run.epochs = 'three'"), ("data.batch_size='fifty'", "data.batch_size = 'fifty'"),
    ("optimizer.learning_rate=fast", "optimizer.learning_rate = 'fast'"), ("run.epochs=0", "run.epochs = 0"),
    ("run.epochs=-2", "run.epochs = -2"), ("run.steps_per_epoch=0", "run.steps_per_epoch = 0"),
    ("schedule.kind=cosine", "schedule.kind = 'cosine'"), ("model.dropout=1.5", "model.dropout = 1.5"),
])
def test_bad_config_values_are_refused(override, key, tmp_path, capsys):
    code = cli.main(["train", "--config", "ssrnet", override, f"run.output_dir={tmp_path / 'run'}"])
    assert code == ExitCode.CONFIG
    line = _one_line(capsys, "train", code)
    assert key in line and "must be" in line
    assert not (tmp_path / "run").exists()


def test_config_values_are_converted_when_nothing_is_lost():
    config = config_lib.load_config("ssrnet", ["optimizer.learning_rate=1e-3", "run.epochs=3.0",
                                               "run.mixed_precision=off"])
    assert config.optimizer.learning_rate == 0.001 and config.run.epochs == 3 and config.run.mixed_precision == "off"
    with pytest.raises(config_lib.ConfigError, match="run.epochs"):
        config_lib.ExperimentConfig(run=config_lib.RunConfig(epochs=0))


def test_resume_revalidates_and_accepts_a_correction(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stored = config_lib.load_config("ssrnet", [f"run.output_dir={run_dir}"]).to_dict()
    stored["run"]["epochs"] = "three"  # a hand edit, or a version that did not check
    (run_dir / "config.yaml").write_text(config_lib.yaml.safe_dump(stored))
    argv = ["train", "--config", "ssrnet", f"run.output_dir={run_dir}", "data.path=/nonexistent"]
    assert cli.main(argv + ["--resume"]) == ExitCode.CONFIG
    line = _one_line(capsys, "train", ExitCode.CONFIG)
    assert "config.yaml" in line and "run.epochs = 'three'" in line and "--resume" in line
    assert cli.main(argv + ["run.epochs=2", "--resume"]) == ExitCode.NOT_FOUND  # now valid: it gets as far as the data
    assert config_lib.load_run_config(run_dir / "config.yaml").run.epochs == 2
    _one_line(capsys, "train", ExitCode.NOT_FOUND)


def test_export_refuses_a_keras_name(capsys, tmp_path):
    assert cli.main(["export", "imdb", "--out", str(tmp_path / "x.keras")]) == ExitCode.USAGE
    assert ".tflite" in _one_line(capsys, "export", ExitCode.USAGE)
    assert not (tmp_path / "x.keras").exists()


def test_broken_and_unsafe_keras_files_are_named(model_path, tmp_path, capsys):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(model_path.read_bytes()[:5000])
    unsafe = tmp_path / "unsafe.keras"
    with zipfile.ZipFile(model_path) as source, zipfile.ZipFile(unsafe, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                config["module"], config["class_name"] = "os", "system"
                data = json.dumps(config).encode()
            target.writestr(item, data)
    for path, command in ((broken, ["bench", str(broken), "--runs", "1"]), (unsafe, ["bench", str(unsafe)]),
                          (unsafe, ["predict", str(model_path), "--model", str(unsafe)])):
        assert cli.main(command) == ExitCode.BAD_MODEL
        assert str(path) in _one_line(capsys, command[0], ExitCode.BAD_MODEL)


def test_predict_without_any_face_exits_non_zero(corpus, model_path, capsys):
    _, folder, _ = corpus
    code = cli.main(["predict", str(folder / "45_1_0_20170101000000017.jpg"), str(folder / "notes.txt"),
                     "--model", str(model_path)])
    assert code == ExitCode.NO_RESULT
    assert "no face found in any of 2 images" in _one_line(capsys, "predict", code)


def test_ctrl_c_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    from ssrnet_tf.commands import weights

    def interrupted(args):
        raise KeyboardInterrupt

    def failing(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "build_parser", _parser_with(weights, interrupted))
    assert cli.main(["weights"]) == ExitCode.INTERRUPTED
    assert "interrupted" in _one_line(capsys, "weights", ExitCode.INTERRUPTED)
    monkeypatch.setattr(cli, "build_parser", _parser_with(weights, failing))
    assert cli.main(["weights"]) == ExitCode.INTERNAL
    assert "RuntimeError: boom" in _one_line(capsys, "weights", ExitCode.INTERNAL)
    with pytest.raises(RuntimeError):
        cli.main(["weights", "--debug"])
    monkeypatch.setenv("SSRNET_TF_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main(["weights"])


def _parser_with(module, handler):
    import argparse

    def build():
        parser = argparse.ArgumentParser(prog="ssrnet-tf")
        commands = parser.add_subparsers(dest="command", required=True)
        module.add_parser(commands)
        commands.choices["weights"].set_defaults(handler=handler)
        return parser

    return build


def test_written_files_get_the_users_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic.atomic_write_bytes(tmp_path / "a.json", b"{}")
        assert path.stat().st_mode & 0o777 == 0o644
        stale = tmp_path / f"a.json.{2 ** 22 + 12345}.abc.tmp"  # a pid that is not running
        stale.write_bytes(b"half")
        live = tmp_path / f"a.json.{os.getpid()}.abc.tmp"  # this process is still writing it
        live.write_bytes(b"half")
        assert atomic.remove_temp_files(tmp_path) == [stale]
        live.unlink()
        assert not stale.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    finally:
        os.umask(old)


def test_float32_tiff_is_read(tmp_path, capfd):
    import cv2

    if int(cv2.__version__.split(".")[0]) < 5:
        pytest.skip(f"OpenCV {cv2.__version__} round-trips float32 TIFF with other values (0.5 -> 188); "
                    "float32 TIFF input is checked with OpenCV >= 5 only")

    from ssrnet_tf.faces.loaded_image import load_image

    path = tmp_path / "f.tif"
    path.write_bytes(cv2.imencode(".tiff", np.full((20, 30, 3), 0.5, np.float32))[1].tobytes())
    loaded = load_image(path)
    assert loaded.image.shape == (20, 30, 3) and int(loaded.image[0, 0, 0]) == 127
    assert "WARN" not in capfd.readouterr().err
