"""The ``ssrnet-tf`` command line: a thin layer over the library."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
from typing import List, Optional

#: Environment variable naming a local folder of published weights files.
WEIGHTS_DIR_ENV = "SSRNET_TF_WEIGHTS_DIR"


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return sorted(times)[len(times) // 2]


def run_demo(args: argparse.Namespace) -> int:
    """Builds the reference SSR-Net, runs it on a face, in Keras and TFLite."""
    import cv2  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel

    from ssrnet_tf import pretrained  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.data import images  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.export import TFLiteModel, convert_to_tflite  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.faces import synthetic_face  # pylint: disable=import-outside-toplevel

    output_dir = pathlib.Path(args.output_dir)
    weights_dir = args.weights_dir or os.environ.get(WEIGHTS_DIR_ENV)
    print(f"[1/4] loading SSR-Net(3,3,3) weights {args.weights!r}")
    model = pretrained.load_pretrained(args.weights, weights_dir=weights_dir)
    print(f"      {model.count_params():,} parameters")

    if args.image:
        face = images.read_bgr(args.image)
        source = args.image
    else:
        face = synthetic_face(200)
        source = "a drawn face (ssrnet_tf.faces.synthetic_face; not a real person)"
    batch = images.resize_square(face, 64)[None].astype(np.float32)  # (1, 64, 64, 3) BGR
    print(f"[2/4] face: {source}")
    keras_age = float(model.predict(batch, verbose=0)[0, 0])

    print("[3/4] converting to TFLite float32")
    name = pathlib.Path(str(args.weights)).stem
    tflite_path = output_dir / f"ssrnet_{name}_float32.tflite"
    flatbuffer = convert_to_tflite(model, tflite_path)
    runner = TFLiteModel(flatbuffer, num_threads=args.threads)
    tflite_age = float(runner.predict(batch)[0, 0])

    print(f"[4/4] timing {args.runs} single-face runs on the CPU")
    keras_ms = _median_ms(lambda: model(batch, training=False), args.runs)
    tflite_ms = _median_ms(lambda: runner.predict(batch), args.runs)

    annotated = cv2.resize(face, (256, 256))
    cv2.putText(annotated, f"age {keras_age:.1f}", (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 255), 2)
    face_path = output_dir / "demo_face.png"
    ok, encoded = cv2.imencode(".png", annotated)
    if ok:
        from ssrnet_tf.utils.atomic import atomic_write_bytes  # pylint: disable=import-outside-toplevel

        atomic_write_bytes(face_path, encoded.tobytes())

    print()
    print(f"  predicted age (Keras)        {keras_age:8.2f} years")
    print(f"  predicted age (TFLite fp32)  {tflite_age:8.2f} years  (|diff| {abs(keras_age - tflite_age):.4f})")
    print(f"  TFLite file                  {tflite_path}  ({len(flatbuffer) / 1024:.1f} KiB)")
    print(f"  median latency, batch 1      Keras eager {keras_ms:.2f} ms | TFLite {tflite_ms:.2f} ms ({args.threads or 'default'} threads)")
    print(f"  annotated face               {face_path}")
    if abs(keras_age - tflite_age) > 0.01:
        print("error: TFLite and Keras disagree by more than 0.01 years", file=sys.stderr)
        return 1
    return 0


def run_weights(args: argparse.Namespace) -> int:
    """Lists the published weights, or fetches one into the cache."""
    from ssrnet_tf import pretrained  # pylint: disable=import-outside-toplevel

    if args.name is None:
        for entry in pretrained.REGISTRY.values():
            print(f"{entry.name:16s} {entry.description}\n{'':16s} {entry.url}")
        print(f"cache: {pretrained.default_cache_dir()}")
        return 0
    path = pretrained.get_weights_path(
        args.name, weights_dir=args.weights_dir or os.environ.get(WEIGHTS_DIR_ENV)
    )
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ssrnet-tf``."""
    parser = argparse.ArgumentParser(
        prog="ssrnet-tf", description="Compact, deployable facial age estimation."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="run the published SSR-Net on a face in Keras and TFLite",
        description=(
            "Loads a published SSR-Net, predicts the age of a face (a drawn one "
            "by default), converts the model to TFLite float32, checks that both "
            "agree and times them on the CPU."
        ),
    )
    demo.add_argument("--weights", default="imdb", help="registry name (imdb, wiki, morph2, megaface_asian) or .h5 path [imdb]")
    demo.add_argument("--weights-dir", help=f"local folder of published .h5 files, searched before the cache and the network [${WEIGHTS_DIR_ENV}]")
    demo.add_argument("--image", help="a face crop (any size; BGR/RGB file as OpenCV reads it)")
    demo.add_argument("--output-dir", default="runs/demo", help="where the .tflite and the annotated face go [runs/demo]")
    demo.add_argument("--runs", type=int, default=50, help="timed runs per engine [50]")
    demo.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads [1]")
    demo.set_defaults(handler=run_demo)

    weights = commands.add_parser("weights", help="list the published weights, or fetch one")
    weights.add_argument("name", nargs="?", help="registry name to fetch into the cache")
    weights.add_argument("--weights-dir", help="local folder searched first")
    weights.set_defaults(handler=run_weights)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``ssrnet-tf`` console script."""
    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (FileNotFoundError, KeyError, ValueError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"ssrnet-tf {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
