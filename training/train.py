"""Thin script over ``ssrnet-tf train`` (see ``ssrnet_tf.training``).

Example:
    python training/train.py --config ssrnet run.epochs=30
"""

import sys

from ssrnet_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
