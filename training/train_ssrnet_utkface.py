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
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import keras  # noqa: E402

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
        batch_size=args.batch_size, epochs=args.epochs, verbose=1,
    )
    if split < len(ages):
        mae = np.abs(model.predict(faces[split:], verbose=0)[:, 0] - ages[split:]).mean()
        print(f"held-out MAE on {len(ages) - split} faces: {mae:.2f} years")

    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Save under a temporary name, then rename: an interrupted save never
    # replaces a previous model with a broken file.
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        tmp_path = pathlib.Path(tmp) / output.name
        model.save(tmp_path)
        os.replace(tmp_path, output)
    print(f"saved {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
