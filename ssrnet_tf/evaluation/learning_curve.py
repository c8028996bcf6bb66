"""Learning-curve plot of a run: training and validation MAE per epoch, learning rate.

Reads a run's ``log.csv`` (:class:`ssrnet_tf.training.callbacks.RunLogger`)
and draws the training MAE and the validation MAE of each epoch on the left
axis and the learning rate (log scale) on the right one, so that a
validation curve that does not follow the training curve, or a learning-rate
drop, is seen at a glance.
"""

from __future__ import annotations

import csv
import os
import pathlib
from typing import Dict, List, Optional, Union

PathLike = Union[str, os.PathLike]

#: Log columns holding the MAE of the age, by preference (a model with heads logs ``age_mae``).
TRAIN_MAE_COLUMNS = ("age_mae", "mae")
VAL_MAE_COLUMNS = ("val_age_mae", "val_mae")


def read_log(log_csv: PathLike) -> List[Dict[str, str]]:
    """The rows of a ``log.csv``."""
    with open(log_csv, newline="") as handle:
        return list(csv.DictReader(handle))


def _column(rows: List[Dict[str, str]], names) -> Optional[List[float]]:
    for name in names:
        if rows and all(row.get(name) not in (None, "") for row in rows):
            return [float(row[name]) for row in rows]
    return None


def plot_learning_curve(log_csv: PathLike, path: PathLike, title: str = "") -> Optional[pathlib.Path]:
    """Writes the learning-curve PNG of ``log_csv`` to ``path``.

    Args:
        log_csv: A run's ``log.csv``.
        path: The PNG to write (atomically).
        title: Figure title (e.g. the experiment name).

    Returns:
        ``path``, or ``None`` when the log has no epoch with an MAE column.
    """
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    import matplotlib.ticker  # pylint: disable=import-outside-toplevel

    rows = read_log(log_csv)
    train = _column(rows, TRAIN_MAE_COLUMNS)
    val = _column(rows, VAL_MAE_COLUMNS)
    if train is None and val is None:
        return None
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure, axis = plt.subplots(figsize=(7, 4))
    if train is not None:
        axis.plot(epochs, train, marker="o", markersize=3, color="#37a", label="training MAE")
    if val is not None:
        axis.plot(epochs, val, marker="o", markersize=3, color="#c33", label="validation MAE")
    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axis.set_ylabel("MAE (years)")
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    lines, labels = axis.get_legend_handles_labels()
    rates = _column(rows, ("learning_rate",))
    if rates is not None and all(rate > 0 for rate in rates):  # NaN (not recorded) fails too
        rate_axis = axis.twinx()
        rate_axis.plot(epochs, rates, color="#888", linestyle="--", label="learning rate")
        rate_axis.set_yscale("log")
        rate_axis.set_ylabel("learning rate (log scale)")
        more_lines, more_labels = rate_axis.get_legend_handles_labels()
        lines, labels = lines + more_lines, labels + more_labels
    axis.legend(lines, labels, loc="upper right")
    axis.set_title(title or "learning curve")
    figure.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    os.replace(tmp, path)
    return path
