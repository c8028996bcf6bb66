"""``ssrnet-tf demo``: the published SSR-Net on one face, in Keras and TFLite."""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from ssrnet_tf.commands.common import add_weights_dir_argument, weights_dir_from

EXAMPLES = (
    "ssrnet-tf demo                                   # a drawn face, the published imdb weights",
    "ssrnet-tf demo --image face.jpg --weights wiki   # your face crop, other weights",
)


def _median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return sorted(times)[len(times) // 2]


def run(args: argparse.Namespace) -> int:
    """Builds the reference SSR-Net, runs it on a face, in Keras and TFLite."""
    import cv2  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.data import images  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.export import convert_to_tflite  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.faces import load_age_model, synthetic_face  # pylint: disable=import-outside-toplevel

    output_dir = pathlib.Path(args.output_dir)
    weights_dir = weights_dir_from(args, "demo")
    print(f"[1/4] loading SSR-Net(3,3,3) weights {args.weights!r}")
    loaded = load_age_model(args.weights, weights_dir=weights_dir)
    model = loaded.require_keras("convert it")
    print(f"      {model.count_params():,} parameters")

    if args.image:
        face = images.read_bgr(args.image)
        source = args.image
    else:
        face = synthetic_face(200)
        source = "a drawn face (ssrnet_tf.faces.synthetic_face; not a real person)"
    batch = images.resize_square(face, 64)[None].astype(np.float32)  # (1, 64, 64, 3) BGR
    print(f"[2/4] face: {source}")
    keras_age = float(loaded.ages(batch)[0])

    print("[3/4] converting to TFLite float32")
    name = pathlib.Path(str(args.weights)).stem
    tflite_path = output_dir / f"ssrnet_{name}_float32.tflite"
    flatbuffer = convert_to_tflite(model, tflite_path, spec=loaded.spec)
    exported = load_age_model(tflite_path, num_threads=args.threads)
    tflite_age = float(exported.ages(batch)[0])

    print(f"[4/4] timing {args.runs} single-face runs on the CPU")
    keras_ms = _median_ms(lambda: model(batch, training=False), args.runs)
    tflite_ms = _median_ms(lambda: exported.run(batch), args.runs)

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


def add_parser(commands) -> None:
    """Adds ``demo`` to the ``ssrnet-tf`` sub-command parsers."""
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
    add_weights_dir_argument(demo)
    demo.add_argument("--image", help="a face crop (any size; BGR/RGB file as OpenCV reads it)")
    demo.add_argument("--output-dir", default="runs/demo", help="where the .tflite and the annotated face go [runs/demo]")
    demo.add_argument("--runs", type=int, default=50, help="timed runs per engine [50]")
    demo.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads [1]")
    demo.set_defaults(handler=run)

