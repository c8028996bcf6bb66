"""An evaluation report: metrics as JSON and Markdown, and four plots.

:func:`evaluate_predictions` takes true and predicted ages and writes into
a folder::

    report.json          every metric (MAE, CA(n), group MAE, sigma, AAR)
    report.md            the same as a readable table
    mae_per_group.png    bar chart of the MAE per age group
    predicted_vs_true.png scatter with the identity line
    ca_curve.png         CA(n) for n = 0..15
    error_histogram.png  signed errors

:func:`predict_folder` gets the predictions of a ``.keras`` or ``.tflite``
model (or the published weights) on a labelled face folder, so one report
serves every model format.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Dict, Optional, Sequence, Union

import numpy as np

from ssrnet_tf import metrics
from ssrnet_tf.utils.atomic import atomic_write_bytes

PathLike = Union[str, os.PathLike]

#: CA(n) curve range of the report.
CA_CURVE = tuple(range(16))


def labelled_table(data: PathLike, *, split: Optional[PathLike] = None, part: str = "test",
                   limit: Optional[int] = None, seed: int = 0):
    """The labelled faces :func:`predict_folder` evaluates (same arguments), as a table.

    Raises:
        ValueError: If ``split`` has no ``part`` or names faces that are not
            in ``data``.
    """
    from ssrnet_tf.data import sources  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.data.csv_table import read_csv_table  # pylint: disable=import-outside-toplevel

    data = pathlib.Path(data)
    table = read_csv_table(data) if data.suffix.lower() == ".csv" else sources.read_dataset("utkface", data, cli_setting="--data")
    if split is not None:
        from ssrnet_tf.data import splits  # pylint: disable=import-outside-toplevel

        saved = splits.Split.load(split)
        if part not in saved.parts:
            raise ValueError(f"{split}: no part {part!r}; it has {sorted(saved.parts)}.")
        table = table.take(saved.indices(table)[part])
    if limit is not None and limit < len(table):
        table = table.take(np.sort(np.random.default_rng(seed).permutation(len(table))[:limit]))
    return table


def predict_folder(model_path: Optional[str], data: PathLike, *, limit: Optional[int] = None, seed: int = 0,
                   weights_dir: Optional[PathLike] = None, batch_size: int = 64,
                   split: Optional[PathLike] = None, part: str = "test", flip_average: bool = False):
    """Predicts the ages of a labelled face folder with any model format.

    Args:
        model_path: ``.keras``, ``.tflite``, published ``.h5``, published or
            shipped registry name (:func:`ssrnet_tf.faces.age_predictor.load_age_model`).
        data: UTKFace-style folder (age first in each file name) or a CSV
            table (``path,age,...``) that :func:`ssrnet_tf.data.read_csv_table`
            reads.
        limit: Evaluate a seeded sample of at most this many faces.
        seed: Seed of that sample.
        weights_dir: Folder of published ``.h5`` files.
        batch_size: Inference batch size.
        split: A ``split.json`` (e.g. a training run's): evaluate only the
            faces of its ``part``, such as the run's held-out test faces.
        part: The split part [``"test"``].
        flip_average: Test-time flip averaging (mean of each face and its mirror).

    Returns:
        ``(true_ages, predicted_ages, info)`` with float arrays ``(N,)`` and
        a dict (model, data, input report counts, and every input entry
        skipped with its reason).

    Raises:
        ValueError: If ``split`` has no ``part`` or names faces that are not
            in ``data`` (paths must be written as in the training config).
    """
    from ssrnet_tf.data import pipeline  # pylint: disable=import-outside-toplevel

    table = labelled_table(data, split=split, part=part, limit=limit, seed=seed)
    from ssrnet_tf.faces.age_predictor import load_age_model  # pylint: disable=import-outside-toplevel

    model = load_age_model(model_path, weights_dir=weights_dir, flip_average=flip_average)
    size = int(model.spec.input_size[0])
    config = pipeline.PipelineConfig(input_size=size, batch_size=batch_size, shuffle=False, cache=None)
    dataset, report = pipeline.make_dataset(table, config, name="evaluate")
    truths, predictions = [], []
    for images, ages in dataset:
        predictions.append(model.ages(images.numpy()))
        truths.append(ages.numpy().reshape(-1))
    info = {"model": model.name, "data": str(data), "input": report.counts(), "flip_average": flip_average,
            "skipped": report.skipped}
    if split is not None:
        info["split"] = f"{part} part of {split}"
    return np.concatenate(truths), np.concatenate(predictions), info


def _plots(y_true: np.ndarray, y_pred: np.ndarray, report: Dict, output_dir: pathlib.Path) -> Dict[str, str]:
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    files = {}

    def save(figure, name):
        path = output_dir / name
        tmp = output_dir / f".{name}.tmp.png"
        figure.tight_layout()
        figure.savefig(tmp, dpi=110)
        plt.close(figure)
        os.replace(tmp, path)
        files[name.rsplit(".", 1)[0]] = str(path)

    groups = list(report["groups"])
    above = report.get("above_groups")
    if above and above["count"]:  # older than LAE's last group: shown, but not part of sigma
        groups.append({**above, "label": f"{above['label']}\n(no group)"})
    figure, axis = plt.subplots(figsize=(7, 3.5))
    labels = [g["label"] for g in groups]
    values = [g["mae"] if g["mae"] is not None else 0.0 for g in groups]
    bars = axis.bar(labels, values, color="#3a7")
    for bar, group in zip(bars, groups):
        axis.annotate(f"n={group['count']}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                      ha="center", va="bottom", fontsize=7)
    axis.axhline(report["mae"], color="#c33", linestyle="--", label=f"overall MAE {report['mae']:.2f}")
    axis.set_xlabel("true age group")
    axis.set_ylabel("MAE (years)")
    axis.legend()
    save(figure, "mae_per_group.png")

    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.scatter(y_true, y_pred, s=4, alpha=0.35)
    top = float(max(y_true.max(), y_pred.max(), 1.0))
    axis.plot([0, top], [0, top], color="#c33", linewidth=1, label="identity")
    axis.set_xlabel("true age")
    axis.set_ylabel("predicted age")
    axis.legend()
    save(figure, "predicted_vs_true.png")

    figure, axis = plt.subplots(figsize=(5, 3.5))
    curve = [metrics.cumulative_accuracy(y_true, y_pred, n) for n in CA_CURVE]
    axis.plot(CA_CURVE, curve, marker="o")
    axis.set_xlabel("error bound n (years, |error| < n)")
    axis.set_ylabel("CA(n)")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    save(figure, "ca_curve.png")

    figure, axis = plt.subplots(figsize=(5, 3.5))
    axis.hist(y_pred - y_true, bins=60, color="#37a")
    axis.set_xlabel("predicted - true age (years)")
    axis.set_ylabel("faces")
    save(figure, "error_histogram.png")
    return files


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _markdown(report: Dict, info: Dict) -> str:
    lines = ["# Age estimation report", "", f"- model: `{info.get('model', '')}`", f"- data: `{info.get('data', '')}`",
             f"- faces: {report['count']}", "", "| metric | value |", "| --- | --- |",
             f"| MAE (years) | {report['mae']:.3f} |"]
    lines += [f"| {key.upper().replace('_', '(', 1)}) | {value:.3f} |" for key, value in report.items()
              if key.startswith("ca_") and isinstance(value, float)]
    lines += [f"| sigma of group MAEs | {report['group_mae_std']:.3f} |", f"| AAR | {report['aar']:.3f} |", "",
              "CA(n): share of faces with |error| " + ("<" if report.get("ca_strict", True) else "<=") + " n years.", "",
              "| age group | faces | MAE |", "| --- | --- | --- |"]
    lines += [f"| {g['label']} | {g['count']} | {_fmt(g['mae'])} |"
              for g in report["groups"]]
    above = report.get("above_groups")
    if above and above["count"]:
        lines += [f"| {above['label']} (in no LAE group, not in sigma) | {above['count']} | {_fmt(above['mae'])} |"]
    lines += ["", "![MAE per group](mae_per_group.png) ![predicted vs true](predicted_vs_true.png)",
              "![CA curve](ca_curve.png) ![errors](error_histogram.png)", ""]
    return "\n".join(lines)


def evaluate_predictions(y_true: Sequence[float], y_pred: Sequence[float], output_dir: PathLike,
                         info: Optional[Dict] = None) -> Dict:
    """Writes the report files for ``y_true`` / ``y_pred`` into ``output_dir``.

    Returns:
        The report dict (as in ``report.json``).
    """
    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = metrics.age_report(y_true, y_pred, ca_thresholds=(3, 5, 10))
    report["ca_curve"] = {str(n): metrics.cumulative_accuracy(y_true, y_pred, n) for n in CA_CURVE}
    report["plots"] = _plots(y_true, y_pred, report, output_dir)
    report["info"] = dict(info or {})
    atomic_write_bytes(output_dir / "report.json", json.dumps(report, indent=2).encode())
    atomic_write_bytes(output_dir / "report.md", _markdown(report, report["info"]).encode())
    return report
