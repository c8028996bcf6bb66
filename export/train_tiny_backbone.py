"""Trains the tiny backbone age model (config ``tiny_mobilenet_v2``) for export experiments.

A thin script over ``ssrnet-tf train --config tiny_mobilenet_v2``: MobileNetV2
alpha 0.35 at 64x64 from scratch, a few CPU minutes, clearly better than the
mean age; the run folder holds ``model.keras`` and ``split.json`` for
``export/qat_backbone.py``. Overrides go after the options, as for
``ssrnet-tf train``.

Example:
    python export/train_tiny_backbone.py data.path=../shared/data/utkface/UTKFace \
        model.head=label_distribution run.output_dir=runs/qat_backbone/ldl_mobilenet_v2_64
"""

import sys

from ssrnet_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "--config", "tiny_mobilenet_v2", *sys.argv[1:]]))
