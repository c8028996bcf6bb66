"""Training killed at random instants, and during each write, loses no epoch.

A tiny SSR-Net run on drawn faces is killed (SIGKILL) again and again:
at chosen renames of its run folder (before a rename: during that write;
after it), and at random times. After every kill, ``log.csv`` must hold
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
EPOCHS = 4


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


def _run(run_dir, data, kill_at=0, when="before", resume=True, random_delay=None):
    """Runs the training; with ``random_delay``, SIGKILLs it that many seconds after its first log write."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KILL_RUN_DIR": str(run_dir), "KILL_AT_REPLACE": str(kill_at),
           "KILL_WHEN": when, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
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
    # Renames of a fresh run: config.yaml, split.json, 3 input reports, then per epoch log.csv,
    # last.keras, [best.pending.keras, best.pending.json,] backup weights, backup metadata (the
    # commit); a resumed run starts with the 3 input reports (and may first promote a pending best).
    plan = [dict(kill_at=9, when="before", resume=False),  # writing best.pending.json of epoch 0
            dict(kill_at=6, when="before"),  # writing the best model or the backup (with the backup first: log.csv)
            dict(kill_at=rng.choice([7, 8, 9]), when="after"),  # e.g. right after the commit, before the promotion
            dict(random_delay=rng.uniform(0.0, 2.0))]  # any instant after a log write
    kills = 0
    for step in plan:
        code, err = _run(run_dir, data, **step)
        if code == 0:
            break  # the run finished before this kill point
        assert code == -signal.SIGKILL, err[-2000:]
        kills += 1
        _check_no_lost_epoch(run_dir)
    assert kills >= 3
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
