"""The learning-curve plot reads a run's log.csv."""

import csv

from ssrnet_tf.evaluation import learning_curve


def _write_log(path, columns, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def test_plot_of_train_and_validation_mae_with_learning_rate(tmp_path):
    rows = [{"epoch": e, "learning_rate": 1e-3 if e < 2 else 1e-4, "age_mae": 10 - e, "val_age_mae": 11 - e}
            for e in range(4)]
    _write_log(tmp_path / "log.csv", ["epoch", "learning_rate", "age_mae", "val_age_mae"], rows)
    path = learning_curve.plot_learning_curve(tmp_path / "log.csv", tmp_path / "out" / "curve.png", "run")
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "out").glob(".*"))  # no temp file left


def test_a_log_without_mae_gives_no_plot(tmp_path):
    _write_log(tmp_path / "log.csv", ["epoch", "loss"], [{"epoch": 0, "loss": 1.0}])
    assert learning_curve.plot_learning_curve(tmp_path / "log.csv", tmp_path / "curve.png") is None
    assert not (tmp_path / "curve.png").exists()
