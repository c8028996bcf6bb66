"""Several evaluation reports side by side: one table and one figure.

Each report is what :func:`ssrnet_tf.evaluation.evaluate_predictions`
writes (``report.json``), e.g. the test-split report of two training runs
(``RUN/evaluation/report.json``) or of a Keras model and its ``.tflite``.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
from typing import Dict, Mapping, Union

import numpy as np

from ssrnet_tf.utils.atomic import atomic_write_bytes

PathLike = Union[str, os.PathLike]
ReportSource = Union[PathLike, Dict]


def load_report(source: ReportSource) -> Dict:
    """A report dict from a dict, a ``report.json`` or a folder holding one.

    Raises:
        FileNotFoundError: If no ``report.json`` is there.
    """
    if isinstance(source, dict):
        return source
    path = pathlib.Path(source)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: evaluation report not found.")
    return json.loads(path.read_text())


def _value(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def comparison_table(reports: Mapping[str, ReportSource]) -> str:
    """A Markdown table: one row per named report.

    Columns: faces, MAE, CA(3), CA(5), CA(10), sigma of the group MAEs, AAR.

    Args:
        reports: ``{name: report dict, report.json or its folder}`` in the
            order of the rows.

    Returns:
        The table as Markdown text.
    """
    lines = ["| model | faces | MAE | CA(3) | CA(5) | CA(10) | sigma | AAR |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, source in reports.items():
        report = load_report(source)
        cells = [str(report["count"])] + [_value(report.get(key)) for key in
                                          ("mae", "ca_3", "ca_5", "ca_10", "group_mae_std", "aar")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_comparison(reports: Mapping[str, ReportSource], path: PathLike) -> pathlib.Path:
    """Writes one PNG: CA(n) curves (left) and MAE per age group (right).

    Args:
        reports: ``{name: report dict, report.json or its folder}``.
        path: The PNG to write (its folder is created).

    Returns:
        ``path`` as a ``pathlib.Path``.

    Raises:
        ValueError: If ``reports`` is empty.
    """
    if not reports:
        raise ValueError("plot_comparison needs at least one report.")
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    loaded = {name: load_report(source) for name, source in reports.items()}
    figure, (curve_axis, group_axis) = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(loaded)
    for index, (name, report) in enumerate(loaded.items()):
        curve = sorted((int(n), value) for n, value in report["ca_curve"].items())
        curve_axis.plot([n for n, _ in curve], [value for _, value in curve], marker="o", markersize=3,
                        label=f"{name} (MAE {report['mae']:.2f})")
        groups = report["groups"]
        positions = np.arange(len(groups)) + (index - (len(loaded) - 1) / 2) * width
        group_axis.bar(positions, [g["mae"] if g["mae"] is not None else 0.0 for g in groups], width, label=name)
    curve_axis.set_xlabel("error bound n (years, |error| <= n)")
    curve_axis.set_ylabel("CA(n)")
    curve_axis.set_ylim(0, 1)
    curve_axis.grid(alpha=0.3)
    curve_axis.legend()
    labels = [g["label"] for g in next(iter(loaded.values()))["groups"]]
    group_axis.set_xticks(np.arange(len(labels)), labels)
    group_axis.set_xlabel("true age group")
    group_axis.set_ylabel("MAE (years)")
    group_axis.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
