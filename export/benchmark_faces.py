"""Photo -> ages on one thread: LiteRT MTCNN vs the mtcnn package.

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

Example:
    python export/benchmark_faces.py --data-dir ../shared/data/utkface/UTKFace \\
        --weights-dir ../shared/reference/ssrnet
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import shlex
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from ssrnet_tf import pretrained  # noqa: E402
from ssrnet_tf.export.benchmark import cpu_name  # noqa: E402
from ssrnet_tf.faces import AgePredictor, Placement, detector_comparison, load_age_model, paste_faces  # noqa: E402
from ssrnet_tf.faces import pipeline_benchmark, video  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "utkface" / "UTKFace"
DEFAULT_WEIGHTS_DIR = ROOT.parent / "shared" / "reference" / "ssrnet"


def make_frames(data_dir: pathlib.Path, singles: int, groups: int, seed: int):
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

    Ages: the int8 model of the predictors and ``float_model`` (Keras) on
    the crops each backend yields.
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
            floats = {name: np.asarray(float_model(predictors[name].cropper.model_input(found[name]))).reshape(-1)
                      for name in found}
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=pathlib.Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--weights-dir", type=pathlib.Path, default=DEFAULT_WEIGHTS_DIR)
    parser.add_argument("--weights", default="imdb", help="published SSR-Net weights, run as int8 [imdb]")
    parser.add_argument("--singles", type=int, default=60, help="one-face frames [60]")
    parser.add_argument("--groups", type=int, default=15, help="four-face group photos [15]")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per frame / video passes [5]")
    parser.add_argument("--video-frames", type=int, default=150, help="[150]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=pathlib.Path, default=pathlib.Path("runs/bench/faces.json"))
    parser.add_argument("--skip-comparison", action="store_true", help="only the timings")
    parser.add_argument("--write-frames", type=pathlib.Path, metavar="DIR",
                        help="only write the one-face frames as JPEG files into DIR (e.g. for ssrnet-tf bench --pipeline)")
    args = parser.parse_args(argv)

    if args.write_frames:
        args.write_frames.mkdir(parents=True, exist_ok=True)
        for index, frame in enumerate(make_frames(args.data_dir, args.singles, 0, args.seed)[0]):
            cv2.imwrite(str(args.write_frames / f"frame_{index:03d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
        print(f"{args.singles} frames written to {args.write_frames}")
        return 0
    print(f"# command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"# cpu: {cpu_name()}, {os.cpu_count()} logical cores; LiteRT and OpenCV on 1 thread")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    model_path = pipeline_benchmark.published_int8(args.weights, args.output.parent, weights_dir=args.weights_dir)
    single, group, faces = make_frames(args.data_dir, args.singles, args.groups, args.seed)
    predictors = {name: AgePredictor(load_age_model(model_path, num_threads=1), detector=name, num_threads=1)
                  for name in ("mtcnn", "litert")}
    report = {"command": shlex.join(sys.argv), "cpu": cpu_name(), "age_model": str(model_path)}
    with pipeline_benchmark.opencv_threads(1):
        if not args.skip_comparison:
            float_model = pretrained.load_pretrained(args.weights, weights_dir=args.weights_dir)
            report["same_faces"] = {"single": compare_backends(predictors, single, float_model),
                                    "group": compare_backends(predictors, group, float_model)}
            print("same faces:", json.dumps(report["same_faces"], indent=1))
        report["latency_litert"] = frame_latency(predictors["litert"], single, args.repeats)
        print("detect + align + int8 age, litert, 1 thread:", report["latency_litert"])
        report["latency_mtcnn"] = frame_latency(predictors["mtcnn"], single[:10], 2)
        # Its TensorFlow ops run on TF's own threads: only the wall-clock figures count.
        print("detect + align + int8 age, mtcnn package (TensorFlow threads):", report["latency_mtcnn"])
        report["video_litert"] = video_fps(predictors["litert"], faces[0], args.video_frames, args.repeats)
        print("640x480 video, one face, litert, 1 thread:", report["video_litert"])
    args.output.write_text(json.dumps(report, indent=2))
    print(f"JSON: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
