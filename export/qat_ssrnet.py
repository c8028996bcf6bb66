"""Quantization-aware training of SSR-Net to an int8 .tflite (see ``ssrnet_tf.export.qat``).

Fine-tunes on labelled faces (UTKFace-style folder: age first in the file
names), exports, and prints the MAE of the float Keras model and of the QAT
int8 .tflite on other faces from the same folder.

Example:
    python export/qat_ssrnet.py imdb --weights-dir ../shared/reference/ssrnet \
        --faces ../shared/data/utkface/UTKFace --out runs/imdb_qat_int8.tflite
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from ssrnet_tf.commands.model_source import load_model_and_spec  # noqa: E402
from ssrnet_tf.data import utkface  # noqa: E402
from ssrnet_tf.export import TFLiteModel  # noqa: E402
from ssrnet_tf.export import qat  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help=".keras file, published .h5 file, or published weights name (imdb, ...)")
    parser.add_argument("--weights-dir", help="local folder of published .h5 files")
    parser.add_argument("--faces", required=True, help="UTKFace-style folder for fine-tuning and the check")
    parser.add_argument("--out", required=True, help="destination .tflite")
    parser.add_argument("--train-count", type=int, default=3000, help="fine-tuning faces [3000]")
    parser.add_argument("--check-count", type=int, default=1000, help="other faces for the MAE check [1000]")
    parser.add_argument("--epochs", type=int, default=2, help="QAT epochs [2]")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="Adam learning rate [1e-4]")
    args = parser.parse_args(argv)

    model, spec = load_model_and_spec(args.model, args.weights_dir)
    faces, ages, _ = utkface.load_utkface_arrays(
        args.faces, limit=args.train_count + args.check_count, size=model.input_shape[1], seed=0
    )
    if len(faces) <= args.train_count:
        parser.error(f"{args.faces} has {len(faces)} readable labelled faces; none left for the check.")
    train_faces, train_ages = faces[: args.train_count], ages[: args.train_count]
    check_faces, check_ages = faces[args.train_count :], ages[args.train_count :]
    flatbuffer = qat.qat_ssrnet_to_tflite(
        model, train_faces, train_ages, epochs=args.epochs, learning_rate=args.learning_rate,
        output_path=args.out, spec=spec,
    )
    runner = TFLiteModel(flatbuffer, num_threads=1)
    keras_mae = float(np.abs(model.predict(check_faces, verbose=0, batch_size=250)[:, 0] - check_ages).mean())
    qat_mae = float(np.abs(runner.predict(check_faces)[:, 0] - check_ages).mean())
    print(f"wrote {args.out}: {len(flatbuffer) / 1024:.1f} KiB; XNNPACK {runner.delegation().summary()}")
    print(f"MAE on {len(check_ages)} other faces: float Keras {keras_mae:.3f} | QAT int8 .tflite {qat_mae:.3f} years")
    return 0 if runner.delegation().fully_delegated else 1


if __name__ == "__main__":
    sys.exit(main())
