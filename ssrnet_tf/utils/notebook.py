"""Helpers for the notebooks in ``notebooks/``: the accelerator check and
running ``ssrnet-tf`` commands so that a failure stops the notebook.

A shell line ``!ssrnet-tf train ...`` in Colab or Jupyter only sets
``_exit_code`` when the command fails, and the next cell carries on with a
missing model. :func:`run_cli` runs the same command in the notebook's own
process (TensorFlow is imported once) and raises when it fails.
"""

from __future__ import annotations

import shlex
import sys
import warnings
from typing import List

#: Printed when training would run on the CPU.
NO_GPU_BANNER = (
    "!" * 78 + "\n"
    "!!  NO GPU: TensorFlow sees no GPU, so training runs on the CPU and the full\n"
    "!!  configs take hours. In Colab: Runtime > Change runtime type > GPU (e.g. T4),\n"
    "!!  then Runtime > Run all. Export and the CPU benchmark do not need a GPU.\n"
    + "!" * 78
)


def accelerator_names() -> List[str]:
    """Names of the GPUs TensorFlow sees (e.g. ``["Tesla T4"]``); empty on CPU."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    names = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        names.append(details.get("device_name", device.name))
    return names


def check_accelerator() -> bool:
    """Says which GPU training will use, or warns loudly that there is none.

    Returns:
        Whether a GPU is present.
    """
    names = accelerator_names()
    if names:
        print(f"GPU: {', '.join(names)} -- training runs on the GPU (mixed float16 by default).")
        return True
    print(NO_GPU_BANNER, flush=True)
    warnings.warn("No GPU found: training will run on the CPU.", RuntimeWarning, stacklevel=2)
    return False


def run_cli(*args) -> None:
    """Runs ``ssrnet-tf ARGS...`` in this process, echoing the command line.

    Args:
        *args: The command's words (``str()`` is applied to each), e.g.
            ``run_cli("export", model_path, "--out", "m.tflite")``.

    Raises:
        RuntimeError: If the command exits with a non-zero status or its
            arguments are rejected.

    Example:

    >>> run_cli("weights")  # doctest: +SKIP
    $ ssrnet-tf weights
    """
    from ssrnet_tf import cli  # pylint: disable=import-outside-toplevel

    argv = [str(arg) for arg in args]
    command = "ssrnet-tf " + shlex.join(argv)
    print(f"$ {command}", flush=True)
    try:
        status = cli.main(argv)
    except SystemExit as error:  # argparse: --help (0) or rejected arguments (2)
        status = error.code if isinstance(error.code, int) or error.code is None else 2
    sys.stdout.flush()
    sys.stderr.flush()
    if status:
        raise RuntimeError(f"`{command}` failed with exit status {status} (see its message above).")
