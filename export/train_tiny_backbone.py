"""Trains a tiny backbone age model from scratch in minutes, for export experiments.

Not a way to train a good model (use ``ssrnet-tf train``): it gives the
int8 and QAT exports (``export/qat_backbone.py``) a float model that is
clearly better than predicting the mean age, on a CPU, in a few minutes.
Keras' MobileNet BN momentum of 0.999 would leave the moving statistics near
their initial values after a few hundred steps, so it is lowered to 0.9.

Writes ``model.keras`` (with its ModelSpec) and ``split.json`` (its seeded
``train`` and held-out ``test`` faces) to ``--out-dir``.

Example:
    python export/train_tiny_backbone.py --faces ../shared/data/utkface/UTKFace \
        --head label_distribution --out-dir runs/qat_backbone/ldl_mobilenet_v2_64
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ssrnet_tf import heads, model_spec  # noqa: E402
from ssrnet_tf.data import images, splits, utkface  # noqa: E402
from ssrnet_tf.models.age_model import build_age_model  # noqa: E402


def _read(records, size):
    faces = np.stack([images.read_bgr(record.path, size=size) for record in records]).astype(np.float32)
    return faces, np.array([record.age for record in records], dtype=np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", required=True, help="UTKFace-style folder (age first in file names)")
    parser.add_argument("--out-dir", required=True, help="folder for model.keras and split.json")
    parser.add_argument("--backbone", default="mobilenet_v2", help="[mobilenet_v2]")
    parser.add_argument("--head", default="label_distribution", choices=sorted(heads.HEADS), help="[label_distribution]")
    parser.add_argument("--input-size", type=int, default=64, help="[64]")
    parser.add_argument("--alpha", type=float, default=0.35, help="[0.35]")
    parser.add_argument("--train-count", type=int, default=4000, help="[4000]")
    parser.add_argument("--test-count", type=int, default=1000, help="held-out faces [1000]")
    parser.add_argument("--epochs", type=int, default=8, help="[8]")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="Adam [2e-3]")
    parser.add_argument("--seed", type=int, default=0, help="[0]")
    args = parser.parse_args(argv)

    records, _ = utkface.list_utkface(args.faces)
    random.Random(args.seed).shuffle(records)
    train_records = records[: args.train_count]
    test_records = records[args.train_count : args.train_count + args.test_count]
    out_dir = pathlib.Path(args.out_dir)
    split = splits.Split(
        parts={"train": [str(r.path) for r in train_records], "test": [str(r.path) for r in test_records]},
        method="random",
        seed=args.seed,
        details={"dataset": "utkface", "script": "export/train_tiny_backbone.py"},
    )
    split.save(out_dir / "split.json")
    train_faces, train_ages = _read(train_records, args.input_size)
    test_faces, test_ages = _read(test_records, args.input_size)

    keras.utils.set_random_seed(args.seed)
    task = build_age_model(
        args.backbone, heads.build_head(args.head), input_size=args.input_size, alpha=args.alpha, weights=None
    )
    for layer in task.model.get_layer(f"{args.backbone}_backbone").layers[-1].layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    task.compile(keras.optimizers.Adam(args.learning_rate))
    task.model.fit(
        train_faces, task.encode_targets({"age": train_ages}), batch_size=32, epochs=args.epochs, verbose=2
    )
    predictions = task.model.predict(test_faces, verbose=0, batch_size=250)["age"][:, 0]
    spec = model_spec.ModelSpec.for_model(
        task.model,
        architecture=f"{args.backbone} a{args.alpha} + {args.head} (tiny, from scratch)",
        training_data=f"{len(train_ages)} UTKFace faces, {args.epochs} epochs",
    )
    model_spec.save_keras(task.model, out_dir / "model.keras", spec)
    print(f"MAE on {len(test_ages)} held-out faces: {np.abs(predictions - test_ages).mean():.3f} "
          f"(mean predictor {np.abs(train_ages.mean() - test_ages).mean():.3f}); wrote {out_dir / 'model.keras'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
