"""Run folders: one process per folder, --resume only on run folders, training that stops on a non-finite loss."""

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import pytest

from ssrnet_tf.faces import synthetic
from ssrnet_tf.training import callbacks as run_callbacks
from ssrnet_tf.training import config as config_lib
from ssrnet_tf.training import run_lock, trainer


def _faces(folder, count=40):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"{5 + i % 60}_{i % 2}_{i % 5}_20170109{i:04d}.jpg.chip.jpg"),
                    synthetic.synthetic_face(72, seed=i))
    return folder


def _config(tmp_path, run_dir, *extra):
    return config_lib.load_config("ssrnet", [
        f"data.path={_faces(tmp_path / 'faces')}", f"run.output_dir={run_dir}", f"data.cache_dir={tmp_path / 'cache'}",
        "run.epochs=1", "run.steps_per_epoch=2", "data.batch_size=8", "data.augment=[]", "run.precise_bn_batches=0",
        "data.test_fraction=0.2", *extra])


def test_resume_on_a_folder_that_is_not_a_run_folder_refuses_and_deletes_nothing(tmp_path):
    folder = tmp_path / "mine"
    (folder / "tmp_keep").mkdir(parents=True)
    for name in ("tmp_keep/a.keras", "tmp_keep/b.keras", "notes.txt"):
        (folder / name).write_text("user data")
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    with pytest.raises(ValueError, match="not a run folder.*no config.yaml.*nothing in it was changed"):
        trainer.train(_config(tmp_path, folder), resume=True, verbose=0)
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != run_lock.LOCK_NAME) == before
    assert all((folder / name).read_text() == "user data" for name in ("tmp_keep/a.keras", "notes.txt"))


def test_a_live_lock_refuses_a_second_run_and_names_its_holder(tmp_path):
    run_dir = tmp_path / "run"
    with run_lock.run_lock(run_dir):
        with pytest.raises(run_lock.RunFolderInUse, match=f"in use by pid {os.getpid()}"):
            trainer.train(_config(tmp_path, run_dir), verbose=0)
        with pytest.raises(run_lock.RunFolderInUse):
            with run_lock.run_lock(run_dir):
                pass
    assert run_lock.holds_only_the_lock(run_dir)  # nothing else was written by the refused run


def test_a_stale_lock_of_a_killed_process_is_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    code = ("import sys, time\nfrom ssrnet_tf.training import run_lock\n"
            "with run_lock.run_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(run_lock.RunFolderInUse, match=f"pid {holder.pid}"):
        with run_lock.run_lock(run_dir):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with run_lock.run_lock(run_dir):  # the kernel released it with the process
        assert f"pid {os.getpid()}" in (run_dir / run_lock.LOCK_NAME).read_text()


def test_non_finite_loss_stops_at_once_with_epoch_and_batch():
    stop = run_callbacks.StopOnNonFiniteLoss(0.002)
    stop.on_epoch_begin(2)
    stop.on_train_batch_end(4, {"loss": 3.5})  # finite: nothing happens
    with pytest.raises(run_callbacks.TrainingDiverged, match=r"nan in epoch 3, batch 6.*learning_rate=0.0002"):
        stop.on_train_batch_end(5, {"loss": float("nan")})


@pytest.mark.slow
def test_a_diverging_run_stops_and_writes_no_nan_model(tmp_path):
    run_dir = tmp_path / "run"
    config = _config(tmp_path, run_dir, "optimizer.learning_rate=1e30", "run.steps_per_epoch=4", "run.epochs=2")
    started = time.time()
    with pytest.raises(run_callbacks.TrainingDiverged, match="epoch 1, batch"):
        trainer.train(config, verbose=0)
    assert time.time() - started < 300
    for name in ("model.keras", "last.keras", "best.keras", "summary.json"):
        assert not (run_dir / name).exists(), name
    assert json.loads((run_dir / "code.json").read_text()).keys() == {"commit", "dirty"}
