"""Training killed at random instants, and during each write, loses no epoch.

A tiny SSR-Net run on drawn faces is killed (SIGKILL) again and again:
during every kind of write of its run folder (each is a temporary file
renamed into place; killing just before the rename is a kill during that
write), right after randomly chosen renames, and at random times. After every kill, ``log.csv`` must hold
every epoch the backup has committed; after the final ``--resume``,
``log.csv`` has every epoch exactly once, ``best.keras`` is the model of
the best logged validation loss, and no temporary file remains.
"""

import csv
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from ssrnet_tf.training import callbacks
from ssrnet_tf.utils import atomic

TESTS = pathlib.Path(__file__).resolve().parent
EPOCHS = 5
# Every file a run writes into its folder, in the order a run first writes it
# (tests/train_with_kill.py kills at the first rename onto it).
WRITES = ("split.json", "input_report_train.json", "log.csv", "last.keras", "best.pending.keras",
          "best.pending.json", "backup/latest.weights.h5", "backup/training_metadata.json", "best.keras",
          "best.json", "model.keras", "evaluation/report.json", "evaluation/learning_curve.png", "summary.json")


def _faces(folder: pathlib.Path, count: int = 24) -> None:
    from ssrnet_tf.faces import synthetic_face

    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        age = int(rng.integers(5, 80))
        cv2.imwrite(str(folder / f"{age}_{index % 2}_0_2017010100000{index:04d}.jpg"), synthetic_face(64, seed=index))


def _rows(run_dir):
    path = run_dir / "log.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _run(run_dir, data, kill_at=0, name="", when="before", resume=True, random_delay=None):
    """Runs the training; with ``random_delay``, SIGKILLs it that many seconds after its first log write."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KILL_RUN_DIR": str(run_dir), "KILL_AT_REPLACE": str(kill_at),
           "KILL_AT_NAME": name, "KILL_WHEN": when, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(TESTS / "train_with_kill.py"), "train", "--config", "ssrnet", f"data.path={data}",
               "data.batch_size=8", f"run.epochs={EPOCHS}", f"run.output_dir={run_dir}", "--progress", "0"]
    log = run_dir / "log.csv"
    before = log.stat().st_mtime_ns if log.is_file() else None
    process = subprocess.Popen(command + (["--resume"] if resume else []), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    if random_delay is not None:
        deadline = time.time() + 600
        while process.poll() is None and time.time() < deadline:
            if log.is_file() and log.stat().st_mtime_ns != before:
                time.sleep(random_delay)
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
    _, err = process.communicate(timeout=600)
    return process.returncode, err


def _check_no_lost_epoch(run_dir):
    done = callbacks.completed_epochs(run_dir / "backup")
    epochs = [int(row["epoch"]) for row in _rows(run_dir)]
    assert epochs == list(range(len(epochs))), epochs  # each once, in order
    assert len(epochs) >= done, (epochs, done)  # every committed epoch has its row


@pytest.mark.slow
def test_kills_at_any_instant_lose_no_epoch(tmp_path):
    data, run_dir = tmp_path / "faces", tmp_path / "run"
    _faces(data)
    rng = random.Random(16)
    # A fresh run dies writing its split; then each resumed run dies during the first
    # write of one kind, in the order a run makes them (the epoch's log and checkpoint,
    # the pending best, the backup that commits the epoch, the promoted best); then at
    # random: during or right after one of a resumed run's first renames (its input
    # reports and the next epoch's writes), and at a random instant after a log write;
    # then during the final model and reports. Each random kill commits at most one
    # epoch, so epochs remain for it (EPOCHS = 5).
    plan = [dict(name="split.json", resume=False)] + [dict(name=name) for name in WRITES[1:10]]
    plan += [dict(kill_at=rng.randint(1, 8), when=rng.choice(["before", "after"])) for _ in range(2)]
    plan += [dict(random_delay=rng.uniform(0.0, 0.5))]
    plan += [dict(name=name) for name in WRITES[10:]]
    killed_during = []
    for step in plan:
        code, err = _run(run_dir, data, **step)
        assert code in (0, -signal.SIGKILL), err[-2000:]
        if code == -signal.SIGKILL:
            killed_during.append(step.get("name"))
            _check_no_lost_epoch(run_dir)
    assert len(killed_during) == len(plan), killed_during  # no step finished the run early
    assert set(WRITES) <= set(killed_during), set(WRITES) - set(killed_during)
    code, err = _run(run_dir, data)
    assert code == 0, err[-2000:]

    rows = _rows(run_dir)
    assert [int(row["epoch"]) for row in rows] == list(range(EPOCHS))
    losses = [float(row["val_loss"]) for row in rows]
    best = json.loads((run_dir / "best.json").read_text())
    assert best["epoch"] == int(np.argmin(losses)) and best["val_loss"] == pytest.approx(min(losses), rel=1e-6)
    from ssrnet_tf.evaluation import predict_folder

    truth, predicted, _ = predict_folder(str(run_dir / "best.keras"), data, split=run_dir / "split.json", part="val")
    assert float(np.mean(np.abs(predicted - truth))) == pytest.approx(min(losses), rel=1e-3, abs=1e-3)
    leftovers = [p for p in run_dir.rglob("*") if atomic.is_temp_name(p.name) or "pending" in p.name]
    assert not leftovers and not (run_dir / "backup").exists()
    assert (run_dir / "log.csv").stat().st_mode & 0o077 == 0o044 & ~_umask()  # not 0600


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
