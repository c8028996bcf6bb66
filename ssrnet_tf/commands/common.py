"""Shared pieces of the command-line sub-commands."""

from __future__ import annotations

import argparse
from typing import List, Optional

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
#: What every ``--model`` / ``MODEL`` argument accepts.
MODEL_HELP = (".keras or .tflite file, published .h5 file, or a published or shipped name "
              "(imdb, wiki, morph2, megaface_asian, ...: `ssrnet-tf weights` lists them)")


def add_model_arguments(parser: argparse.ArgumentParser, *, many: bool = False, help_text: str = MODEL_HELP) -> None:
    """Adds the model as a positional ``MODEL`` and as ``--model``: both work.

    Args:
        parser: The sub-command's parser.
        many: Whether several models are accepted (``MODEL ...`` and a
            repeatable ``--model``).
        help_text: What the argument accepts.
    """
    parser.add_argument("model_positional", nargs="*" if many else "?", metavar="MODEL", help=help_text)
    parser.add_argument("--model", dest="model_option", action="append" if many else "store", metavar="MODEL",
                        help="the same as MODEL" + (" (repeatable)" if many else ""))


def models_from(args: argparse.Namespace) -> List[str]:
    """The models named by ``MODEL ...`` and ``--model``, in that order."""
    positional = args.model_positional or []
    option = args.model_option or []
    positional = [positional] if isinstance(positional, str) else list(positional)
    option = [option] if isinstance(option, str) else list(option)
    return positional + option


def model_from(args: argparse.Namespace, command: str, required: bool = True) -> Optional[str]:
    """The one model named by ``MODEL`` or ``--model``.

    Args:
        args: Parsed arguments of :func:`add_model_arguments`.
        command: The sub-command, for the error message.
        required: If false, ``None`` when no model is named (the command
            then uses its default, e.g. the best shipped model).

    Raises:
        UsageError: If none (and ``required``) or two different ones are
            given (in CLI terms; a ``ValueError``).
    """
    from ssrnet_tf.errors import UsageError  # pylint: disable=import-outside-toplevel

    models = models_from(args)
    if not models and not required:
        return None
    if not models:
        raise UsageError(f"name the model: `ssrnet-tf {command} MODEL ...` or `--model MODEL` ({MODEL_HELP}).")
    if len(set(models)) > 1:
        raise UsageError(f"two models given ({' and '.join(models)}): pass MODEL or --model, not both.")
    return models[0]


def weights_dir_from(args: argparse.Namespace, command: str):
    """``--weights-dir``, else ``$SSRNET_TF_WEIGHTS_DIR``; warns if it is not a folder."""
    import os  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel

    given = getattr(args, "weights_dir", None)
    folder = given or os.environ.get(WEIGHTS_DIR_ENV)
    if folder and not os.path.isdir(folder):
        source = "--weights-dir" if given else f"${WEIGHTS_DIR_ENV}"
        print(f"ssrnet-tf {command}: warning: {source} {folder} is not a folder; looking in the cache instead.",
              file=sys.stderr)
    return folder
