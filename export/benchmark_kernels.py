"""int8 file on LiteRT's two CPU kernel sets: test MAE of each and the per-face age gap.

XNNPACK (LiteRT's default) and the builtin reference kernels (what TFLite
2.14 and apps without XNNPACK run) both compute valid int8 arithmetic but
round differently. This runs a shipped model's int8 file, or another
``.tflite`` file, both ways on the model's held-out test faces.

Example:
    python export/benchmark_kernels.py --model compact-utkface
    git show 47b171d:ssrnet_tf/pretrained_models/compact-utkface_int8.tflite > /tmp/old.tflite
    python export/benchmark_kernels.py --model compact-utkface --file /tmp/old.tflite
"""

import argparse
import pathlib
import sys

import numpy as np

from ssrnet_tf import pretrained
from ssrnet_tf.data import pipeline
from ssrnet_tf.evaluation import labelled_table
from ssrnet_tf.export.tflite import TFLiteModel

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="compact-utkface", help="shipped model: its test split [compact-utkface]")
    parser.add_argument("--file", type=pathlib.Path, help="a .tflite file to run instead of the model's int8 file")
    parser.add_argument("--data-dir", type=pathlib.Path, default=SHARED / "data" / "utkface" / "UTKFace")
    args = parser.parse_args(argv)
    path = args.file or pretrained.shipped_path(f"{args.model}-int8")
    split = pretrained.SHIPPED_DIR / pretrained.shipped_models()[args.model].files["test_split"]
    runners = {"XNNPACK": TFLiteModel(path, num_threads=1), "builtin": TFLiteModel(path, num_threads=1, use_xnnpack=False)}
    size = int(runners["XNNPACK"].input_shape[1])
    config = pipeline.PipelineConfig(input_size=size, batch_size=64, shuffle=False, cache=None)
    dataset, _ = pipeline.make_dataset(labelled_table(args.data_dir, split=split), config, name="test faces")
    ages, predictions = [], {name: [] for name in runners}
    for images, labels in dataset:
        ages.append(labels.numpy().reshape(-1))
        for name, runner in runners.items():
            predictions[name].append(runner.predict(images.numpy()).reshape(-1))
    ages = np.concatenate(ages)
    predictions = {name: np.concatenate(values) for name, values in predictions.items()}
    gap = np.abs(predictions["XNNPACK"] - predictions["builtin"])
    print(f"{path}: {ages.size} test faces of {args.model}")
    for name, values in predictions.items():
        print(f"  MAE {name}: {np.abs(values - ages).mean():.3f}")
    print(f"  per-face age gap XNNPACK vs builtin: mean {gap.mean():.3f}, p99 {np.percentile(gap, 99):.3f}, "
          f"max {gap.max():.3f} years")
    return 0


if __name__ == "__main__":
    sys.exit(main())
