"""CPU latency benchmark; thin script over ``ssrnet-tf bench``.

With no model arguments it builds SSR-Net(3,3,3) and benchmarks it in every
export mode beside the published graph's float32 file and Keras.

Example:
    python export/benchmark_cpu.py --weights-dir ../shared/reference/ssrnet
    python export/benchmark_cpu.py runs/ssrnet/model.keras my_int8.tflite --threads 1
"""

import sys

from ssrnet_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
