"""Shipping a trained run inside the package: files, figures, model card, registry entry.

:func:`ship_run` takes a finished training run folder (``ssrnet-tf train``)
and puts into :data:`ssrnet_tf.pretrained.SHIPPED_DIR`:

* ``NAME.keras``: the run's final model without optimizer state, with its
  :class:`ssrnet_tf.model_spec.ModelSpec`;
* ``NAME_int8.tflite``: its default int8 export, calibrated on faces of the
  run's *training* part;
* ``NAME.md``: the model card: training data and its licence terms, the
  command and commit that trained it, and on the run's held-out *test* part
  the MAE (with and without flip averaging), CA(5), MAE per age group with
  ages 0-12 on their own line, for the float and the int8 file, and the
  int8 file's size and one-thread latency;
* an entry in ``models.json`` (file hashes and the card's figures), which
  :func:`ssrnet_tf.pretrained.shipped_models` reads. The package's default
  model (``predict`` without ``--model``) is the shipped model with the
  lowest float test MAE.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import time
from typing import Dict, Optional, Union

import numpy as np

PathLike = Union[str, os.PathLike]

#: The licence terms that come with weights trained on UTKFace.
UTKFACE_TERMS = ("Trained on UTKFace, which is available for non-commercial research purposes only: "
                 "these weights are offered for non-commercial research use only.")
CHILDREN_MAX_AGE = 12


def training_commit(summary: Dict) -> str:
    """The commit that trained a run, from its ``summary.json`` (never the commit that ships it)."""
    from ssrnet_tf.utils import provenance  # pylint: disable=import-outside-toplevel

    recorded = provenance.describe(summary.get("code"))
    return recorded if recorded != "not recorded" else "not recorded by the run"


def _shipping_commit() -> str:
    from ssrnet_tf.utils import provenance  # pylint: disable=import-outside-toplevel

    return provenance.describe(provenance.code_version())


def _training_faces(run_dir: pathlib.Path, data_path: str, size: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` un-augmented faces of the run's training part (int8 calibration)."""
    from ssrnet_tf.data import pipeline, sources, splits  # pylint: disable=import-outside-toplevel

    table = sources.read_dataset("utkface", data_path)
    train = table.take(splits.Split.load(run_dir / "split.json").indices(table)["train"])
    rows = np.sort(np.random.default_rng(seed).permutation(len(train))[:count])
    config = pipeline.PipelineConfig(input_size=size, batch_size=64, shuffle=False, cache=None)
    dataset, _ = pipeline.make_dataset(train.take(rows), config, name="calibration")
    return np.concatenate([images.numpy() for images, _ in dataset]).astype(np.float32)


def _figures(model_path: str, data_path: str, split: pathlib.Path) -> Dict:
    """Test-part figures of one file: MAE (plain and flip-averaged), CA(5), groups, ages 0-12."""
    from ssrnet_tf.evaluation import predict_folder  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.metrics import age_metrics  # pylint: disable=import-outside-toplevel

    ages, predictions, _ = predict_folder(model_path, data_path, split=split, part="test")
    _, flipped, _ = predict_folder(model_path, data_path, split=split, part="test", flip_average=True)
    report = age_metrics.age_report(ages, predictions, ca_thresholds=(5,))
    children = ages <= CHILDREN_MAX_AGE
    return {
        "test_faces": int(ages.size), "mae": round(float(report["mae"]), 3),
        "mae_flip_average": round(float(np.abs(flipped - ages).mean()), 3),
        "ca_5": round(float(report["ca_5"]), 4), "ca_strict": bool(report.get("ca_strict", False)),
        "children_0_12": {"faces": int(children.sum()),
                          "mae": round(float(np.abs(predictions - ages)[children].mean()), 3)},
        "groups": [{"label": g["label"], "faces": g["count"],
                    "mae": None if g["mae"] is None else round(float(g["mae"]), 3)} for g in report["groups"]],
    }


def _write_test_split(split: pathlib.Path, destination: pathlib.Path) -> None:
    """The run's test part as a split of bare file names (usable on any machine)."""
    from ssrnet_tf.data import splits  # pylint: disable=import-outside-toplevel

    saved = splits.Split.load(split)
    names = [os.path.basename(path) for path in saved.parts["test"]]
    splits.Split(parts={"test": names}, method=saved.method, seed=saved.seed, details=saved.details).save(destination)


def _latency(int8_path: str) -> Dict:
    from ssrnet_tf.export import benchmark  # pylint: disable=import-outside-toplevel

    row = benchmark.measure_file(int8_path, threads=(1,), batches=(1,), runs=500, warmup=50, xnnpack_modes=(True,))[0]
    return {"p50_ms": round(row.p50_ms, 3), "p90_ms": round(row.p90_ms, 3), "threads": 1, "xnnpack": True,
            "cpu": benchmark.cpu_name()}


def _card(name: str, entry: Dict) -> str:
    f, i = entry["figures"]["float"], entry["figures"]["int8"]
    t = entry["training"]
    ca = "<" if f.get("ca_strict") else "<="
    lines = [
        f"# `{name}` — {entry['description']}", "",
        f"**Licence and terms.** {entry['licence']}", "",
        "## Use", "",
        f"`ssrnet-tf predict PHOTO --model {name}` (Keras float) or `--model {name}-int8` (the int8 `.tflite`); "
        f"in Python `ssrnet_tf.faces.age_predictor.load_age_model(\"{name}\")`. Input: {entry['input']}.", "",
        "## Training", "",
        f"- data: {t['data']}",
        f"- split: {t['split']}",
        f"- command: `{t['command']}`",
        f"- commit that trained it: `{t['commit']}`"
        + (f" (shipped at `{t['shipped_at_commit']}`)" if t.get("shipped_at_commit") else "")
        + f"; epochs: {t['epochs']}; wall time: {t['wall_minutes']} min on {t['machine']}", "",
        f"## Test split ({f['test_faces']} held-out faces)", "",
        f"| file | MAE | MAE, flip-averaged | CA(5) (share with error {ca} 5) | MAE, ages 0-12 | size | 1-thread p50 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| `{entry['files']['keras']}` (float32) | {f['mae']:.3f} | {f['mae_flip_average']:.3f} | {f['ca_5']:.3f} | "
        f"{f['children_0_12']['mae']:.3f} | {entry['sizes_kib']['keras']:.0f} KiB | - |",
        f"| `{entry['files']['int8']}` (int8) | {i['mae']:.3f} | {i['mae_flip_average']:.3f} | {i['ca_5']:.3f} | "
        f"{i['children_0_12']['mae']:.3f} | {entry['sizes_kib']['int8']:.0f} KiB | {entry['latency']['p50_ms']:.3f} ms |",
        "", f"Latency: LiteRT, XNNPACK, one thread, batch 1, on {entry['latency']['cpu']}.", "",
        "### MAE per age group", "",
        "| true age | faces | float | int8 |", "| --- | --- | --- | --- |",
        f"| 0-{CHILDREN_MAX_AGE} | {f['children_0_12']['faces']} | {f['children_0_12']['mae']:.3f} | "
        f"{i['children_0_12']['mae']:.3f} |",
    ]
    for fg, ig in zip(f["groups"], i["groups"]):
        value = lambda g: "-" if g["mae"] is None else f"{g['mae']:.3f}"  # noqa: E731
        lines.append(f"| {fg['label']} | {fg['faces']} | {value(fg)} | {value(ig)} |")
    lines += ["", "Figures from `python export/ship_model.py` (`ssrnet_tf.export.shipping.ship_run`), "
              "which wrote this card.", ""]
    return "\n".join(lines)


def ship_run(run_dir: PathLike, name: str, description: str, command: str, *,
             data_path: Optional[str] = None, calibration_count: int = 1000,
             out_dir: Optional[PathLike] = None) -> Dict:
    """Ships a finished run as ``name`` (see the module docstring).

    Args:
        run_dir: A finished ``ssrnet-tf train`` run folder (``model.keras``,
            ``split.json``, ``config.yaml``, ``summary.json``).
        name: Registry name (``ssrnet-utkface``).
        description: One line for listings.
        command: The exact command that trained the run (for the card).
        data_path: The face folder the split refers to (default: the run's
            ``data.path``).
        calibration_count: Training faces for int8 calibration.
        out_dir: Destination (default :data:`ssrnet_tf.pretrained.SHIPPED_DIR`).

    Returns:
        The ``models.json`` entry.
    """
    import keras  # pylint: disable=import-outside-toplevel
    import yaml  # pylint: disable=import-outside-toplevel

    from ssrnet_tf import model_spec, pretrained  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.custom_objects import register_all  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.export import convert_to_tflite  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.models.float32_copy import float32_copy  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.models.ssrnet import upgrade_single_output  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.utils.atomic import atomic_write_bytes  # pylint: disable=import-outside-toplevel

    run_dir = pathlib.Path(run_dir)
    out_dir = pathlib.Path(out_dir or pretrained.SHIPPED_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    data_path = data_path or config["data"]["path"]
    split = run_dir / "split.json"

    register_all()
    model = upgrade_single_output(keras.saving.load_model(run_dir / "model.keras", compile=False))  # no optimizer
    spec = model_spec.read_keras_spec(run_dir / "model.keras")
    files = {"keras": f"{name}.keras", "int8": f"{name}_int8.tflite", "card": f"{name}.md",
             "test_split": f"{name}_test_split.json"}
    _write_test_split(split, out_dir / files["test_split"])
    model_spec.save_keras(model, out_dir / files["keras"], spec)
    size = int(model.input_shape[1])
    calibration = _training_faces(run_dir, data_path, size, calibration_count)
    convert_to_tflite(float32_copy(model), out_dir / files["int8"], quantize="int8",
                      representative_images=calibration, spec=spec)
    figures = {kind: _figures(str(out_dir / files[kind]), data_path, out_dir / files["test_split"])
               for kind in ("keras", "int8")}
    parts = json.loads(split.read_text()).get("parts", {})
    counts = {part: len(rows) for part, rows in parts.items()} if isinstance(parts, dict) else {}
    entry = {
        "description": description,
        "licence": UTKFACE_TERMS,
        "input": (f"{spec.input_size[0]}x{spec.input_size[1]} {spec.channel_order.upper()} {spec.pixel_range} face crops, "
                  f"{spec.alignment} alignment, margin {spec.margin} (stored in the files' ModelSpec)"),
        "training": {
            "data": f"the shared UTKFace folder ({data_path}), {sum(counts.values()) or 'all'} faces",
            "split": (f"seeded random split, seed {config['data']['split_seed']}: {config['data']['test_fraction']:.0%} test, "
                      f"{config['data']['val_fraction']:.0%} of the rest validation; faces per part {counts}"),
            "command": command, "commit": training_commit(summary), "shipped_at_commit": _shipping_commit(),
            "epochs": summary.get("epochs"),
            "wall_minutes": round(float(summary.get("wall_seconds_this_process", 0.0)) / 60.0, 1),
            "machine": f"{platform.machine()} CPU ({os.cpu_count()} cores, no GPU)",
            "config": config.get("name", ""),
        },
        "figures": {"float": figures["keras"], "int8": figures["int8"]},
        "latency": _latency(str(out_dir / files["int8"])),
        "sizes_kib": {kind: round(os.path.getsize(out_dir / files[kind]) / 1024.0, 1) for kind in ("keras", "int8")},
        "shipped": time.strftime("%Y-%m-%d"),
    }
    entry["files"] = files
    atomic_write_bytes(out_dir / files["card"], _card(name, entry).encode())
    entry["sha256"] = {kind: pretrained.sha256_of(out_dir / files[kind]) for kind in files}
    index_path = out_dir / "models.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {"default": None, "models": {}}
    index["models"][name] = {key: entry[key] for key in ("description", "files", "sha256", "licence")}
    index["models"][name]["figures"] = {key: entry[key] for key in
                                        ("figures", "latency", "sizes_kib", "training", "input", "shipped")}
    index["default"] = min(index["models"],
                           key=lambda n: index["models"][n]["figures"]["figures"]["float"]["mae"])
    atomic_write_bytes(index_path, json.dumps(index, indent=2).encode())
    return entry


def resave_shipped_keras(name: str, out_dir: Optional[PathLike] = None) -> str:
    """Re-saves a shipped ``NAME.keras`` in the current model format and updates its hash.

    The model is loaded with :func:`ssrnet_tf.model_spec.load_keras` (which
    rebuilds an SSR-Net saved with a single output as a dict-output model,
    weights by layer name) and saved again with the same spec; the
    ``models.json`` entry gets the new SHA-256 and size. The int8 file, the
    card and the figures are unchanged: the model computes the same ages.

    Args:
        name: A shipped model's registry name (``ssrnet-utkface``).
        out_dir: The shipped-models folder (default
            :data:`ssrnet_tf.pretrained.SHIPPED_DIR`).

    Returns:
        The new SHA-256 of ``NAME.keras``.
    """
    from ssrnet_tf import model_spec, pretrained  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.utils.atomic import atomic_write_bytes  # pylint: disable=import-outside-toplevel

    out_dir = pathlib.Path(out_dir or pretrained.SHIPPED_DIR)
    index_path = out_dir / "models.json"
    index = json.loads(index_path.read_text())
    entry = index["models"][name]
    path = out_dir / entry["files"]["keras"]
    model, spec = model_spec.load_keras(path)
    model_spec.save_keras(model, path, spec)
    entry["sha256"]["keras"] = pretrained.sha256_of(path)
    entry["figures"]["sizes_kib"]["keras"] = round(os.path.getsize(path) / 1024.0, 1)
    atomic_write_bytes(index_path, json.dumps(index, indent=2).encode())
    return entry["sha256"]["keras"]
