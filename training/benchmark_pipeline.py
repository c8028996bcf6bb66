"""Benchmarks the tf.data input pipeline on real faces: images per second (see ``ssrnet_tf.training.pipeline_benchmark``).

Images/s of every size x cache x augmentation setting, and with ``--configs``
of named configs' augmentation sets; the module docstring says how.

Example:
    python training/benchmark_pipeline.py \
        --data-dir ../shared/data/utkface/UTKFace --sizes 64 224
    python training/benchmark_pipeline.py --sizes 64 --cache memory --configs all
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ssrnet_tf.training import pipeline_benchmark  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=pathlib.Path, default=SHARED / "data" / "utkface" / "UTKFace", help="UTKFace folder")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224], help="input sizes [64 224]")
    parser.add_argument("--batch-size", type=int, default=50, help="images per batch [50, as SSR-Net]")
    parser.add_argument("--limit", type=int, default=None, help="use a random subset of this many faces")
    parser.add_argument("--augment", default=pipeline_benchmark.DEFAULT_AUGMENT,
                        help=f"comma-separated augmentations for the 'on' rows [{pipeline_benchmark.DEFAULT_AUGMENT}]")
    parser.add_argument("--cache", choices=("both", "memory", "none"), default="both",
                        help="which cache settings to time [both]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--configs", nargs="+", default=[],
                        help="also time these training configs' augmentation sets (names in ssrnet_tf/configs, or 'all')")
    parser.add_argument("--skip-table", action="store_true", help="only the --configs rows")
    parser.add_argument("--passes", type=int, default=3, help="timed passes per --configs row; the best counts [3]")
    parser.add_argument("--compare-op", action="store_true",
                        help="--configs rows also with ImageProjectiveTransformV3 resampling (the previous path)")
    parser.add_argument("--verbose", action="store_true", help="log the pipeline reports")
    return pipeline_benchmark.run_pipeline_benchmark(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
