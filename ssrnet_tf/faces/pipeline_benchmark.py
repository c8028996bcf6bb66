"""Where the time of photo -> ages goes: decode, detect, align, age model.

The library behind ``ssrnet-tf bench --pipeline FOLDER``. Every photo goes
through the stages of :class:`ssrnet_tf.faces.AgePredictor` one by one,
each timed on its own:

* ``decode``: :func:`ssrnet_tf.faces.load_image` (file -> BGR pixels);
* ``detect``: MTCNN (:meth:`FaceCropper.detect`);
* ``align``: one crop per face and the model-input batch;
* ``age``: the age model on all faces of the photo (one batch).

The photos are passed ``repeats`` times; for each photo the fastest pass is
kept (the others are what other processes on the machine cost it), then
the per-photo stage times are summarised as p50 and mean.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

#: Timed stages, in pipeline order.
STAGES = ("decode", "detect", "align", "age")


@dataclasses.dataclass
class PipelineTiming:
    """Stage times of one setting over a folder.

    Attributes:
        label: What was measured (detector backend, threads).
        photos: Photos timed.
        faces: Faces found over all photos (one pass).
        p50_ms: Per-stage median over photos, plus ``"no_decode"`` (detect +
            align + age), ``"total"`` and ``"cpu"`` (CPU time of the calling
            thread for the whole photo: with one thread, what it costs a core
            without the waits for other processes).
        mean_ms: Per-stage means, likewise.
        photos_per_s: ``1000 / mean total``: photos per second, one at a time.
    """

    label: str
    photos: int
    faces: int
    p50_ms: Dict[str, float]
    mean_ms: Dict[str, float]
    photos_per_s: float


@contextlib.contextmanager
def opencv_threads(count: Optional[int]):
    """OpenCV's thread count inside the block (``None``: unchanged)."""
    import cv2  # pylint: disable=import-outside-toplevel

    before = cv2.getNumThreads()
    if count is not None:
        cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def _time_photo(predictor, path) -> Dict[str, float]:
    from ssrnet_tf.faces.loaded_image import load_image  # pylint: disable=import-outside-toplevel

    cropper = predictor.cropper
    cpu_start = time.thread_time()
    marks = [time.perf_counter()]
    loaded = load_image(path)
    marks.append(time.perf_counter())
    detections = cropper.detect(loaded.image)
    marks.append(time.perf_counter())
    crops = [cropper.crop(loaded.image, detection) for detection in detections]
    batch = cropper.model_input(crops)
    marks.append(time.perf_counter())
    if len(batch):
        predictor.model.predict(batch)
    marks.append(time.perf_counter())
    times = {stage: 1e3 * (end - start) for stage, start, end in zip(STAGES, marks[:-1], marks[1:])}
    times["cpu"] = 1e3 * (time.thread_time() - cpu_start)
    times["faces"] = len(crops)
    return times


def time_pipeline(predictor, paths: Sequence, label: str, repeats: int = 3, warmup: int = 2) -> PipelineTiming:
    """Times the stages of ``predictor`` on every photo.

    Args:
        predictor: An :class:`ssrnet_tf.faces.AgePredictor`.
        paths: Image files.
        label: Name of the setting, for the report.
        repeats: Passes over the photos; the fastest per photo is kept.
        warmup: Untimed photos first (interpreters plan their shapes).
    """
    for path in list(paths)[:warmup]:
        _time_photo(predictor, path)
    best: List[Dict[str, float]] = []
    for repeat in range(repeats):
        for index, path in enumerate(paths):
            times = _time_photo(predictor, path)
            times["total"] = sum(times[stage] for stage in STAGES)
            times["no_decode"] = times["total"] - times["decode"]
            if repeat == 0:
                best.append(times)
            elif times["total"] < best[index]["total"]:
                best[index] = times
    keys = STAGES + ("no_decode", "total", "cpu")
    p50 = {key: round(float(np.median([b[key] for b in best])), 3) for key in keys}
    mean = {key: round(float(np.mean([b[key] for b in best])), 3) for key in keys}
    return PipelineTiming(label, len(best), int(sum(b["faces"] for b in best)), p50, mean,
                          round(1e3 / mean["total"], 2) if mean["total"] > 0 else 0.0)


def published_int8(weights: str, output_dir, weights_dir=None):
    """The published SSR-Net as an int8 ``.tflite`` with the demo's crop spec.

    Calibrated on drawn faces: latency does not depend on the calibration.

    Returns:
        The path of the written file.
    """
    import pathlib  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.export import calibration, convert_to_tflite  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.faces.age_predictor import load_age_model  # pylint: disable=import-outside-toplevel

    model = load_age_model(weights, weights_dir=weights_dir)
    path = pathlib.Path(output_dir) / f"ssrnet_{weights}_int8.tflite"
    convert_to_tflite(model.require_keras("export it"), path, quantize="int8",
                      representative_images=calibration.drawn_faces(64), spec=model.spec)
    return path


def format_timings(timings: Sequence[PipelineTiming]) -> str:
    """A text table: p50 ms per stage, without decoding, in total; photos/s."""
    head = f"{'setting':<28} {'photos':>6} {'faces':>5} " + " ".join(f"{s + ' ms':>10}" for s in STAGES)
    head += f" {'no-decode ms':>12} {'total ms':>9} {'cpu ms':>8} {'photos/s':>9}"
    lines = [head]
    for timing in timings:
        cells = " ".join(f"{timing.p50_ms[s]:10.2f}" for s in STAGES)
        lines.append(f"{timing.label:<28} {timing.photos:6d} {timing.faces:5d} {cells} "
                     f"{timing.p50_ms['no_decode']:12.2f} {timing.p50_ms['total']:9.2f} {timing.p50_ms['cpu']:8.2f} "
                     f"{timing.photos_per_s:9.1f}")
    return "\n".join(lines)


__all__ = ["STAGES", "PipelineTiming", "format_timings", "opencv_threads", "published_int8", "time_pipeline"]
