"""Shared constants of the command-line sub-commands."""

from ssrnet_tf.training.initial_weights import WEIGHTS_DIR_ENV  # noqa: F401 (re-exported)


def positive_int(text: str) -> int:
    """``argparse`` type: an integer >= 1 (so ``--limit -1`` cannot silently drop a face)."""
    import argparse  # pylint: disable=import-outside-toplevel

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: must be >= 1")
    return value
