"""Quantization-aware training of a backbone age model to an int8 .tflite (see ``ssrnet_tf.export.qat_backbone``).

Takes a trained ``.keras`` model with a Keras Applications backbone
(MobileNetV2 or MobileNet) and an age head, fine-tunes it with QAT on
labelled faces, exports the int8 .tflite, and prints the MAE of the float
Keras model, of the post-training int8 export (PTQ, for comparison) and of
the QAT int8 .tflite on other faces, with file sizes and XNNPACK coverage.

With ``--split`` (a training run's ``split.json``) the fine-tuning and
calibration faces come from its train part and the check faces from its
held-out test part; without it both are drawn from ``--faces``, which may
overlap the faces the model was trained on.

Example:
    python export/qat_backbone.py runs/ldl/model.keras --split runs/ldl/split.json \
        --out runs/ldl/qat_int8.tflite --ptq-out runs/ldl/ptq_int8.tflite
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from ssrnet_tf import model_spec  # noqa: E402
from ssrnet_tf.data import images, splits, utkface  # noqa: E402
from ssrnet_tf.export import TFLiteModel, convert_to_tflite  # noqa: E402
from ssrnet_tf.export import qat, qat_backbone  # noqa: E402


def split_faces(split_path, part: str, count: int, size: int, seed: int = 0):
    """Up to ``count`` faces of one part of a ``split.json`` (seeded sample), with ages from the file names."""
    paths = splits.Split.load(split_path).parts[part]
    chosen = np.random.default_rng(seed).permutation(len(paths))[:count]
    faces = np.stack([images.read_bgr(paths[i], size=size) for i in chosen]).astype(np.float32)
    ages = np.array([utkface.parse_utkface_filename(paths[i])[0] for i in chosen], dtype=np.float32)
    return faces, ages


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="trained .keras backbone age model (ssrnet-tf train)")
    parser.add_argument("--split", help="the run's split.json: fine-tune on its train part, check on its test part")
    parser.add_argument("--faces", help="UTKFace-style folder for fine-tuning and the check (without --split)")
    parser.add_argument("--out", required=True, help="destination QAT int8 .tflite")
    parser.add_argument("--ptq-out", help="also export post-training int8 here and report it")
    parser.add_argument("--train-count", type=int, default=2000, help="fine-tuning faces [2000]")
    parser.add_argument("--check-count", type=int, default=1000, help="other faces for the MAE check [1000]")
    parser.add_argument("--calibration-count", type=int, default=300, help="faces that set int8 ranges [300]")
    parser.add_argument("--epochs", type=int, default=1, help="QAT epochs [1]")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="Adam learning rate [1e-4]")
    parser.add_argument("--float-baseline", action="store_true",
                        help="also fine-tune the float model the same way and report its MAE")
    args = parser.parse_args(argv)
    if bool(args.split) == bool(args.faces):
        parser.error("give exactly one of --split and --faces.")

    model, spec = model_spec.load_keras(args.model)
    spec = spec or model_spec.ModelSpec.for_model(model)
    size = model.input_shape[1]
    if args.split:
        train_faces, train_ages = split_faces(args.split, "train", args.train_count, size)
        check_faces, check_ages = split_faces(args.split, "test", args.check_count, size)
    else:
        faces, ages, _ = utkface.load_utkface_arrays(args.faces, limit=args.train_count + args.check_count, size=size)
        if len(faces) <= args.train_count:
            parser.error(f"{args.faces} has {len(faces)} readable labelled faces; none left for the check.")
        train_faces, train_ages = faces[: args.train_count], ages[: args.train_count]
        check_faces, check_ages = faces[args.train_count :], ages[args.train_count :]

    def mae(predictions) -> float:
        return float(np.abs(np.asarray(predictions).reshape(-1) - check_ages).mean())

    outputs = model.predict(check_faces, verbose=0, batch_size=250)
    print(f"MAE on {len(check_ages)} check faces: float Keras {mae(outputs['age'] if isinstance(outputs, dict) else outputs):.3f}")
    twin = qat_backbone.to_tf_keras_twin(model)
    difference = max(qat_backbone.max_twin_difference(model, twin, check_faces[:256]).values())
    print(f"tf_keras twin: max |Keras 3 - twin| {difference:.2e} on 256 check faces")
    if args.ptq_out:
        flatbuffer = convert_to_tflite(
            model, args.ptq_out, quantize="int8", representative_images=train_faces[: args.calibration_count], spec=spec
        )
        runner = TFLiteModel(flatbuffer, num_threads=1)
        print(f"PTQ int8 .tflite {mae(runner.predict_outputs(check_faces)['age']):.3f}: {args.ptq_out}, "
              f"{len(flatbuffer) / 1024:.1f} KiB, XNNPACK {runner.delegation().summary()}")
    qat_model = qat_backbone.quantize_aware_backbone_model(
        model, train_faces[: args.calibration_count], twin=twin
    )
    qat.qat_finetune(qat_model, train_faces, train_ages, epochs=args.epochs, learning_rate=args.learning_rate)
    simulated_mae = mae(qat_model.predict(check_faces, verbose=0, batch_size=250))
    qat_spec = dataclasses.replace(spec, outputs={"age": "age in years, float32 (N, 1)"})
    flatbuffer = qat.export_qat_tflite(qat_model, args.out, spec=qat_spec)
    runner = TFLiteModel(flatbuffer, num_threads=1)
    print(f"QAT ({args.epochs} epoch(s) on {len(train_ages)} faces): Keras simulation {simulated_mae:.3f}, "
          f"int8 .tflite {mae(runner.predict(check_faces)):.3f}: {args.out}, {len(flatbuffer) / 1024:.1f} KiB, "
          f"XNNPACK {runner.delegation().summary()}")
    if args.float_baseline:
        # The same fine-tuning without fake quantization (BN frozen too):
        # what the extra epochs alone give a float model.
        float_model = qat_backbone.age_model(twin)
        for layer in float_model.layers:
            if isinstance(layer, qat_backbone.tf_keras.layers.BatchNormalization):
                layer.trainable = False
        qat.qat_finetune(float_model, train_faces, train_ages, epochs=args.epochs, learning_rate=args.learning_rate)
        print(f"float fine-tuned the same way: Keras {mae(float_model.predict(check_faces, verbose=0, batch_size=250)):.3f}")
    return 0 if runner.delegation().fully_delegated else 1


if __name__ == "__main__":
    sys.exit(main())
