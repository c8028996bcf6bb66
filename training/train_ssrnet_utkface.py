"""Trains SSR-Net from scratch on a folder of UTKFace faces (in memory).

A compact, CPU-friendly run of the paper's recipe (Adam, MAE loss, 64x64
raw BGR input). The full training command, with tf.data, augmentation,
schedules and resumable checkpoints, is ``ssrnet-tf train`` (to come).

Example:
    python training/train_ssrnet_utkface.py \
        --data-dir ../shared/data/utkface/UTKFace --limit 2000 --epochs 10
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import keras  # noqa: E402

from ssrnet_tf import model_spec  # noqa: E402
from ssrnet_tf.data import utkface  # noqa: E402
from ssrnet_tf.models import build_ssrnet  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="UTKFace folder")
    parser.add_argument("--limit", type=int, default=2000, help="faces to sample [2000]")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="held-out fraction [0.2]")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=50, help="paper: 50")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--decay-every", type=int, default=0, help="multiply the learning rate by 0.1 every N epochs (0: never)")
    parser.add_argument("--stage-activation", choices=("relu", "softmax"), default="relu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="runs/ssrnet_utkface.keras", help="where the trained model is saved")
    args = parser.parse_args(argv)

    faces, ages, report = utkface.load_utkface_arrays(args.data_dir, limit=args.limit, seed=args.seed)
    print(f"loaded {len(ages)} faces; skipped {report['skipped']} unlabelled, "
          f"{report['unreadable']} unreadable; {report['missing_race']} lack a race label")
    split = int(round(len(ages) * (1.0 - args.val_fraction)))
    keras.utils.set_random_seed(args.seed)
    model = build_ssrnet(stage_activation=args.stage_activation)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), loss="mae")
    model.fit(
        faces[:split], ages[:split],
        validation_data=(faces[split:], ages[split:]) if split < len(ages) else None,
        batch_size=args.batch_size, epochs=args.epochs, verbose=2,
        callbacks=[keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: args.learning_rate * 0.1 ** (epoch // args.decay_every) if args.decay_every else lr
        )],
    )
    if split < len(ages):
        mae = np.abs(model.predict(faces[split:], verbose=0)[:, 0] - ages[split:]).mean()
        print(f"held-out MAE on {len(ages) - split} faces: {mae:.2f} years")

    output = pathlib.Path(args.output)
    spec = model_spec.ModelSpec.for_model(
        model,
        architecture=f"ssrnet(3,3,3), stage activation {args.stage_activation}",
        training_data=f"UTKFace aligned&cropped, {split} faces (seed {args.seed})",
        alignment="similarity",
    )
    # Saved under a temporary name and renamed: an interrupted save never
    # replaces a previous model with a broken file.
    model_spec.save_keras(model, output, spec)
    print(f"saved {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
