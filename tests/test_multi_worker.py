"""run.strategy=multi_worker: two workers on localhost, one killed mid-run, both restarted, the run resumes."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import cv2
import pytest

from ssrnet_tf.faces import synthetic
from ssrnet_tf.training import strategy as strategy_lib

EPOCHS = 6


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))  # loopback only
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _faces(folder, count=96):
    folder.mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / f"{5 + i % 60}_{i % 2}_{i % 5}_20170109{i:04d}.jpg.chip.jpg"),
                    synthetic.synthetic_face(72, seed=i))


def _start(index, ports, args, log):
    cluster = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
    env = dict(os.environ, TF_CONFIG=json.dumps(cluster), CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, "-m", "ssrnet_tf.cli", "train", *args], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def _committed(run_dir):
    path = run_dir / "backup" / "training_metadata.json"
    return json.loads(path.read_text())["epoch"] if path.is_file() else 0


def test_tf_config_is_checked_and_names_the_chief(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert strategy_lib.is_chief() and strategy_lib.tf_config() is None
    with pytest.raises(ValueError, match="TF_CONFIG is not set"):
        strategy_lib.choose_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        strategy_lib.tf_config()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}))
    with pytest.raises(ValueError, match="not in the cluster"):
        strategy_lib.tf_config()
    cluster = {"worker": ["a:1", "b:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert not strategy_lib.is_chief() and strategy_lib.worker_name() == "worker 1"
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert strategy_lib.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["c:1"], **cluster},
                                                "task": {"type": "worker", "index": 0}}))
    assert not strategy_lib.is_chief()


@pytest.mark.slow
def test_two_workers_one_killed_both_restarted_resume_from_the_backup(tmp_path):
    faces, run_dir = tmp_path / "faces", tmp_path / "run"
    _faces(faces)
    args = ["--config", "ssrnet", "--progress", "0", f"data.path={faces}", f"run.output_dir={run_dir}",
            f"data.cache_dir={tmp_path / 'cache'}", "run.strategy=multi_worker", f"run.epochs={EPOCHS}",
            "data.batch_size=8", "data.augment=[]", "run.precise_bn_batches=0", "data.test_fraction=0.2"]
    logs = [open(tmp_path / f"worker{i}_first.log", "wb") for i in range(2)]
    ports = _free_ports(2)
    workers = [_start(i, ports, args, logs[i]) for i in range(2)]
    deadline = time.time() + 400
    while _committed(run_dir) < 2 and time.time() < deadline and all(w.poll() is None for w in workers):
        time.sleep(0.1)
    killed_at = _committed(run_dir)
    assert killed_at >= 2 and all(w.poll() is None for w in workers), (
        (tmp_path / "worker0_first.log").read_text()[-3000:], (tmp_path / "worker1_first.log").read_text()[-3000:])
    assert killed_at < EPOCHS
    workers[1].send_signal(signal.SIGKILL)  # one worker dies mid-run
    workers[1].wait()
    time.sleep(1.0)
    workers[0].send_signal(signal.SIGKILL)  # its peer is stuck in a collective: stop it too
    workers[0].wait()
    for log in logs:
        log.close()
    committed = _committed(run_dir)

    logs = [open(tmp_path / f"worker{i}_resumed.log", "wb") for i in range(2)]
    ports = _free_ports(2)
    workers = [_start(i, ports, ["--resume", *args[:]], logs[i]) for i in range(2)]
    codes = [w.wait(timeout=600) for w in workers]
    for log in logs:
        log.close()
    output = [(tmp_path / f"worker{i}_resumed.log").read_text() for i in range(2)]
    assert codes == [0, 0], [text[-3000:] for text in output]

    with open(run_dir / "log.csv", newline="") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs == list(range(EPOCHS))  # no epoch row lost or duplicated
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from_epoch"] == committed >= 2 and summary["replicas"] == 2
    assert summary["execution"]["device"] == "cpu"
    assert (run_dir / "model.keras").is_file() and not (run_dir / "backup").exists()
    # One run folder, one model: the other worker wrote nothing into it.
    assert sorted(p.name for p in run_dir.glob("*.keras")) == ["best.keras", "last.keras", "model.keras"]
    assert "test MAE" in output[0] and "test MAE" in output[1]
