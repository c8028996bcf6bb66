"""Experiment configs, the trainer, and kill/resume of a real run."""

import csv
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ssrnet_tf import model_spec
from ssrnet_tf.training import config as config_lib
from ssrnet_tf.training import schedules


CONFIG_DIR = config_lib.CONFIG_DIR


def test_named_configs_load():
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        config = config_lib.load_config(path)
        assert config.name == path.stem
        assert config_lib.from_dict(config.to_dict()) == config


def test_ssrnet_config_is_the_paper_recipe():
    config = config_lib.load_config("ssrnet")
    assert config.model.ssrnet["stage_bins"] == [3, 3, 3] and config.model.input_size == 64
    assert (config.optimizer.name, config.optimizer.learning_rate) == ("adam", 0.002)
    assert (config.schedule.kind, config.schedule.milestones, config.run.epochs) == ("step", [30, 60], 90)
    assert config.model.loss == "mae"


def test_overrides_and_their_errors():
    config = config_lib.load_config("ssrnet", ["run.epochs=3", "data.limit=100", "data.augment=[]", "name=smoke"])
    assert (config.run.epochs, config.data.limit, config.data.augment, config.name) == (3, 100, [], "smoke")
    with pytest.raises(ValueError, match="run.epoch"):
        config_lib.load_config("ssrnet", ["run.epoch=3"])
    with pytest.raises(ValueError, match="section.key=value"):
        config_lib.load_config("ssrnet", ["epochs"])
    with pytest.raises(ValueError, match="schedule.kind"):
        config_lib.load_config("ssrnet", ["schedule.kind=cosine"])
    with pytest.raises(FileNotFoundError, match="nope"):
        config_lib.load_config("nope")
    # YAML reads a bare on/off as a boolean.
    assert config_lib.load_config("ssrnet", ["run.mixed_precision=on"]).run.mixed_precision == "on"
    assert config_lib.load_config("ssrnet", ["run.mixed_precision=off"]).run.mixed_precision == "off"


def test_step_and_one_cycle_schedules():
    step = schedules.build_learning_rate(config_lib.ScheduleConfig(kind="step", milestones=[2, 4]), 1.0, 10, 6)
    # Every step of epoch 2 (steps 20-29) trains with the divided rate, including its first.
    assert [float(step(s)) for s in (0, 19, 20, 39, 40)] == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])
    cycle = schedules.OneCycle(1.0, 100, warmup_fraction=0.3)
    values = [float(cycle(s)) for s in (0, 30, 100)]
    assert values[0] == pytest.approx(1 / 25) and values[1] == pytest.approx(1.0) and values[2] == pytest.approx(1e-3, rel=1e-3)
    assert schedules.OneCycle.from_config(cycle.get_config()).get_config() == cycle.get_config()


def _train_command(run_dir, *overrides, resume=False):
    return [sys.executable, "-m", "ssrnet_tf", "train", "--config", "ssrnet", "data.limit=300", "data.batch_size=25",
            f"run.output_dir={run_dir}", *overrides, "--progress", "0"] + (["--resume"] if resume else [])


def _log_epochs(run_dir):
    path = run_dir / "log.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_train_refuses_to_overwrite_and_trains_ssrnet(utkface_dir, tmp_path):
    from ssrnet_tf.training import trainer

    config = config_lib.load_config("ssrnet", [f"data.path={utkface_dir}", "data.limit=300", "run.epochs=2",
                                               f"run.output_dir={tmp_path / 'run'}"])
    summary = trainer.train(config, verbose=0)
    assert summary["test_faces"] == 60 and summary["test_mae"] > 0
    for name in ("config.yaml", "split.json", "log.csv", "last.keras", "best.keras", "model.keras", "summary.json",
                 "input_report_train.json", "evaluation/learning_curve.png"):
        assert (tmp_path / "run" / name).is_file(), name
    assert _log_epochs(tmp_path / "run") == [0, 1]
    _, spec = model_spec.load_keras(tmp_path / "run" / "model.keras")
    assert spec.input_size == (64, 64)
    with pytest.raises(ValueError, match="--resume"):
        trainer.train(config, verbose=0)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(utkface_dir, tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = _train_command(run_dir, f"data.path={utkface_dir}", "run.epochs=4")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(_log_epochs(run_dir)) < 2 and process.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)  # into the next epoch
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = _log_epochs(run_dir)
    assert 2 <= len(killed_at) < 4
    resumed = subprocess.run(_train_command(run_dir, f"data.path={utkface_dir}", "run.epochs=4", resume=True),
                             env=env, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _log_epochs(run_dir) == [0, 1, 2, 3]
    model, spec = model_spec.load_keras(run_dir / "model.keras")
    assert model.count_params() == 40915 and spec is not None
    assert not (run_dir / "backup").exists()


#: tiny_mobilenet_v2 is left out: at this test's overrides (64x64, no ImageNet weights) it is
#: ldl_mobilenet_v2 with alpha 0.35 and BN momentum 0.9, both checked in test_backbones.py.
BACKBONE_CONFIGS = sorted(path.stem for path in CONFIG_DIR.glob("*.yaml")
                          if config_lib.load_config(path).model.architecture == "backbone"
                          and path.stem != "tiny_mobilenet_v2")


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKBONE_CONFIGS)
def test_backbone_configs_train_one_short_epoch(name, utkface_dir, tmp_path):
    from ssrnet_tf.training import trainer

    config = config_lib.load_config(name, [
        f"data.path={utkface_dir}", "data.limit=160", "data.batch_size=16", "model.input_size=64",
        "model.weights=null", "run.epochs=1", "run.steps_per_epoch=3", "stage_two.epochs=1",
        f"run.output_dir={tmp_path / name}",
    ])
    summary = trainer.train(config, verbose=0)
    assert np.isfinite(summary["test_mae"])
    assert (tmp_path / name / "evaluation" / "report.json").is_file()
    if config.stage_two.enabled:
        assert np.isfinite(summary["stage1"]["val_mae"]) and summary["stage2"]["test_mae"] == summary["test_mae"]


@pytest.mark.slow
def test_ssrnet_utkface_fine_tunes_from_the_published_weights(utkface_dir, tmp_path, monkeypatch):
    from ssrnet_tf import pretrained
    from ssrnet_tf.training import initial_weights, trainer

    reference = pathlib.Path(__file__).resolve().parents[2] / "shared" / "reference" / "ssrnet"
    if not (reference / pretrained.REGISTRY["imdb"].filename).is_file():
        pytest.skip(f"published imdb weights not found in {reference} (../shared is absent)")
    monkeypatch.setenv(initial_weights.WEIGHTS_DIR_ENV, str(reference))
    config = config_lib.load_config("ssrnet_utkface", [
        f"data.path={utkface_dir}", "data.limit=200", "run.epochs=1", "run.steps_per_epoch=1",
        "optimizer.learning_rate=1e-9", f"run.output_dir={tmp_path / 'run'}"])
    built = trainer.build_model(config)
    published = pretrained.load_pretrained("imdb", weights_dir=reference)
    faces = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(built.model.predict(faces, verbose=0)["age"], published.predict(faces, verbose=0)["age"], atol=1e-4)
    with pytest.raises(FileNotFoundError, match="initial_weights"):
        trainer.build_model(config_lib.load_config("ssrnet_utkface", ["model.initial_weights=no_such.h5"]))
