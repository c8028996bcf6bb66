"""Converts an SSR-Net (published weights or a saved .keras) to TFLite float32.

Checks that the .tflite model agrees with Keras on a batch of drawn faces
and prints the file size. Quantized variants come with the export issue.

Example:
    python export/convert_tflite.py --weights imdb \
        --weights-dir ../shared/reference/ssrnet --output runs/ssrnet_imdb.tflite
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import keras  # noqa: E402

from ssrnet_tf import pretrained  # noqa: E402
from ssrnet_tf.data import images  # noqa: E402
from ssrnet_tf.export import TFLiteModel, convert_to_tflite  # noqa: E402
from ssrnet_tf.faces import synthetic_face  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help="published weights: registry name or .h5 path")
    source.add_argument("--keras-model", help="a saved .keras model")
    parser.add_argument("--weights-dir", help="local folder of published .h5 files")
    parser.add_argument("--output", required=True, help="destination .tflite")
    args = parser.parse_args(argv)

    if args.weights:
        model = pretrained.load_pretrained(args.weights, weights_dir=args.weights_dir)
    else:
        model = keras.saving.load_model(args.keras_model)
    flatbuffer = convert_to_tflite(model, args.output)
    size = model.input_shape[1]
    batch = np.stack([images.resize_square(synthetic_face(200, seed=s), size) for s in range(8)]).astype("float32")
    difference = np.abs(TFLiteModel(flatbuffer).predict(batch) - model.predict(batch, verbose=0)).max()
    print(f"wrote {args.output} ({len(flatbuffer) / 1024:.1f} KiB); max |TFLite - Keras| = {difference:.5f} years")
    return 0 if difference <= 0.01 else 1


if __name__ == "__main__":
    sys.exit(main())
