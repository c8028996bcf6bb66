"""Thin script over ``ssrnet-tf export`` (see ``ssrnet_tf.export``).

Example:
    python export/export_tflite.py imdb --weights-dir ../shared/reference/ssrnet \
        --out runs/imdb_int8.tflite --quantize int8 --calibration-dir FACES --check FACES
"""

import sys

from ssrnet_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
