"""Photo -> ages on one thread: LiteRT MTCNN vs the mtcnn package.

The library behind ``export/benchmark_faces.py``.

Builds 640x480 test frames from UTKFace photos (one face padded into a
larger noisy frame; group photos of four tiled faces), then reports:

1. **Same faces?** Both detector backends on every frame: faces found by
   one and not the other, box IoU and landmark error (fraction of the eye
   distance) of matched faces, and the gap between the int8 ages of the
   crops each backend yields.
2. **Latency**: detection + alignment + int8 age per one-face frame, one
   thread (LiteRT and OpenCV), best of ``--repeats`` runs per frame, p50
   over frames; the same for the mtcnn package (TensorFlow's threads).
3. **Video**: a 640x480 video of one moving face through
   :func:`ssrnet_tf.faces.video.predict_video` (reading, detection, ages),
   frames per second, best of ``--repeats`` passes.

Other processes on the machine slow these figures; best-of-N keeps the
runs least disturbed by them. Every figure is also given in CPU time of the
one working thread (``time.thread_time``): what the work costs one core,
without the time spent waiting for it while other processes run.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import tempfile
import time
from typing import Optional

import cv2
import numpy as np

from ssrnet_tf.export.benchmark import cpu_name
from ssrnet_tf.faces import detector_comparison, pipeline_benchmark, video
from ssrnet_tf.faces.age_predictor import AgePredictor, load_age_model
from ssrnet_tf.faces.face_collage import Placement, paste_faces
from ssrnet_tf.utils.atomic import atomic_write_bytes


def make_frames(data_dir: pathlib.Path, singles: int, groups: int, seed: int):
    """``(one-face frames, four-face group frames, the faces used)``, 640x480, from a face folder."""
    paths = sorted(data_dir.glob("*.jpg"))
    random.Random(seed).shuffle(paths)
    faces = [cv2.imread(str(p)) for p in paths[: singles + 4 * groups]]
    rng = np.random.default_rng(seed)
    single = [detector_comparison.single_face_frame(f, (640, 480), rng, seed=k) for k, f in enumerate(faces[:singles])]
    group = [detector_comparison.group_frame(faces[singles + 4 * k: singles + 4 * k + 4], (640, 480), seed=k)
             for k in range(groups)]
    return single, group, faces


def compare_backends(predictors, frames, float_model):
    """Matched-face statistics of the litert backend against the mtcnn one.

    Ages: the int8 model of the predictors and ``float_model`` (an
    :class:`ssrnet_tf.faces.AgeModel`, e.g. the Keras one) on the crops each
    backend yields.
    """
    pairs, unmatched, age_gaps, float_gaps = [], 0, [], []
    for frame in frames:
        found = {name: p.cropper.crops(frame) for name, p in predictors.items()}
        pairing = detector_comparison.pair_detections(found["mtcnn"], found["litert"])
        pairs += pairing.pairs
        unmatched += len(pairing.reference_only) + len(pairing.test_only)
        if pairing.pairs:
            ages = {name: predictors[name].predict_crops([found[name]])[0]["age"].reshape(-1) for name in found}
            age_gaps += [abs(float(ages["mtcnn"][i] - ages["litert"][j])) for i, j, _, _ in pairing.pairs]
            floats = {name: float_model.ages(predictors[name].cropper.model_input(found[name])) for name in found}
            float_gaps += [abs(float(floats["mtcnn"][i] - floats["litert"][j])) for i, j, _, _ in pairing.pairs]
    ious = np.array([p[2] for p in pairs])
    errors = np.array([p[3] for p in pairs])
    return {
        "frames": len(frames), "matched_faces": len(pairs), "unmatched_faces": unmatched,
        "iou_min": round(float(ious.min()), 4) if len(ious) else None,
        "iou_p1": round(float(np.percentile(ious, 1)), 4) if len(ious) else None,
        "share_landmarks_within_3pct_eye_distance": round(float(np.mean(errors <= 0.03)), 4) if len(errors) else None,
        "landmark_error_max": round(float(errors.max()), 4) if len(errors) else None,
        "int8_age_gap_max_years": round(max(age_gaps), 4) if age_gaps else None,
        "float_age_gap_max_years": round(max(float_gaps), 4) if float_gaps else None,
    }


def frame_latency(predictor, frames, repeats: int) -> dict:
    """Detect + align + age per frame: best of ``repeats`` per frame, p50 over frames."""
    predictor.predict_array(frames[0])  # plans the interpreters
    wall, cpu = [], []
    for frame in frames:
        runs = []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.thread_time()
            predictor.predict_array(frame)
            runs.append((time.perf_counter() - start, time.thread_time() - start_cpu))
        wall.append(min(r[0] for r in runs))
        cpu.append(min(r[1] for r in runs))
    return {"p50_ms": round(1e3 * float(np.median(wall)), 2), "p90_ms": round(1e3 * float(np.percentile(wall, 90)), 2),
            "cpu_p50_ms": round(1e3 * float(np.median(cpu)), 2), "cpu_p90_ms": round(1e3 * float(np.percentile(cpu, 90)), 2),
            "frames": len(frames), "repeats": repeats}


def video_fps(predictor, face, frames: int, repeats: int) -> dict:
    """Frames per second of :func:`ssrnet_tf.faces.video.predict_video` on a video of one moving face."""
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "one_face_640x480.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
        for index in range(frames):
            center = (200 + 240 * index / max(1, frames - 1), 240 + 30 * np.sin(index / 5))
            writer.write(paste_faces((640, 480), [face], [Placement(center, 0.0, 1.0)], seed=index)[0])
        writer.release()
        summaries, cpu_fps = [], []
        for _ in range(repeats):
            start_cpu = time.thread_time()
            *records, summary = video.predict_video(predictor, str(path))
            cpu_fps.append(summary["frames"] / (time.thread_time() - start_cpu))
            summaries.append(summary)
    best = max(summaries, key=lambda s: s["fps"])
    return {"frames": best["frames"], "frames_with_a_face": sum(bool(r["faces"]) for r in records),
            "fps": best["fps"], "fps_all_passes": [s["fps"] for s in summaries],
            "cpu_fps": round(max(cpu_fps), 2)}


def write_frames(data_dir, folder, count: int, seed: int = 0) -> None:
    """Writes ``count`` one-face frames as JPEG files into ``folder`` (e.g. for ``bench --pipeline``)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(make_frames(pathlib.Path(data_dir), count, 0, seed)[0]):
        cv2.imwrite(str(folder / f"frame_{index:03d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])


def _age_models(model: Optional[str], weights: Optional[str], output_dir: pathlib.Path, weights_dir):
    """``(int8 .tflite path or shipped name, float model name)`` of the model to run."""
    if weights is not None:
        return pipeline_benchmark.published_int8(weights, output_dir, weights_dir=weights_dir), weights
    return f"{model}-int8", model


def run_backend_benchmark(data_dir, output, *, model: Optional[str] = "ssrnet-utkface", weights: Optional[str] = None,
                          weights_dir=None, singles: int = 60, groups: int = 15, repeats: int = 5,
                          video_frames: int = 150, seed: int = 0, compare: bool = True, command: str = "") -> dict:
    """Same faces?, latency and video frames per second of both MTCNN backends; prints as it goes.

    Args:
        data_dir: Folder of face photos (UTKFace).
        output: The JSON report to write; a published model's int8 file goes
            beside it.
        model: A model shipped in the package (:mod:`ssrnet_tf.pretrained`):
            its int8 ``.tflite`` is timed, its ``.keras`` gives the float ages.
        weights: Instead of ``model``, published SSR-Net weights (``imdb``,
            ...), run as int8 calibrated on drawn faces.
        weights_dir: Folder of published ``.h5`` files.
        singles: One-face frames.
        groups: Four-face group frames.
        repeats: Timed runs per frame / video passes.
        video_frames: Frames of the test video.
        seed: Seed of the face sample.
        compare: Whether to compare the backends' faces (else only timings).
        command: The command line, recorded in the report.

    Returns:
        The report written to ``output``.
    """
    output = pathlib.Path(output)
    print(f"# cpu: {cpu_name()}, {os.cpu_count()} logical cores; LiteRT and OpenCV on 1 thread")
    output.parent.mkdir(parents=True, exist_ok=True)
    int8_model, float_name = _age_models(model, weights, output.parent, weights_dir)
    single, group, faces = make_frames(pathlib.Path(data_dir), singles, groups, seed)
    predictors = {name: AgePredictor(load_age_model(int8_model, num_threads=1), detector=name, num_threads=1)
                  for name in ("mtcnn", "litert")}
    report = {"command": command, "cpu": cpu_name(), "age_model": str(int8_model)}
    with pipeline_benchmark.opencv_threads(1):
        if compare:
            float_model = load_age_model(float_name, weights_dir=weights_dir)
            report["same_faces"] = {"single": compare_backends(predictors, single, float_model),
                                    "group": compare_backends(predictors, group, float_model)}
            print("same faces:", json.dumps(report["same_faces"], indent=1))
        report["latency_litert"] = frame_latency(predictors["litert"], single, repeats)
        print("detect + align + int8 age, litert, 1 thread:", report["latency_litert"])
        report["latency_mtcnn"] = frame_latency(predictors["mtcnn"], single[:10], 2)
        # Its TensorFlow ops run on TF's own threads: only the wall-clock figures count.
        print("detect + align + int8 age, mtcnn package (TensorFlow threads):", report["latency_mtcnn"])
        report["video_litert"] = video_fps(predictors["litert"], faces[0], video_frames, repeats)
        print("640x480 video, one face, litert, 1 thread:", report["video_litert"])
    atomic_write_bytes(output, json.dumps(report, indent=2).encode())
    print(f"JSON: {output}")
    return report


__all__ = ["compare_backends", "frame_latency", "make_frames", "run_backend_benchmark", "video_fps", "write_frames"]
