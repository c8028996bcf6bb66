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


def add_weights_dir_argument(parser: argparse.ArgumentParser) -> None:
    """Adds ``--weights-dir`` (read by :func:`weights_dir_from`)."""
    parser.add_argument("--weights-dir", help="local folder of published .h5 files, searched before the cache and "
                        f"the network [${WEIGHTS_DIR_ENV}]")


def add_detector_arguments(parser: argparse.ArgumentParser, *, policy: str = "all", backend: bool = True) -> None:
    """Adds the face detector and crop options (read by :func:`detector_options`).

    Args:
        parser: The sub-command's parser.
        policy: Default of ``--policy`` (which faces of a photo are kept).
        backend: Whether to add ``--detector`` (the MTCNN backend).
    """
    parser.add_argument("--policy", choices=("all", "largest", "most_confident"), default=policy,
                        help=f"faces kept per photo [{policy}]")
    parser.add_argument("--min-face-size", type=float, default=20.0, help="smallest face in pixels (shorter box side) [20]")
    parser.add_argument("--min-score", type=float, default=0.9, help="smallest detector confidence [0.9]")
    parser.add_argument("--max-detection-side", type=int, default=1280,
                        help="photos are shrunk to this longest side for detection only [1280]")
    if backend:
        parser.add_argument("--detector", choices=("litert", "mtcnn"), default="litert",
                            help="MTCNN backend: the mtcnn package's networks through LiteRT (fast), or the mtcnn "
                            "package itself (reference) [litert]")


def detector_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of :class:`ssrnet_tf.faces.AgePredictor` from :func:`add_detector_arguments`.

    Without ``--detector`` (``backend=False``) they suit
    :class:`ssrnet_tf.faces.FaceCropper` too.
    """
    options = {"policy": args.policy, "min_face_size": args.min_face_size, "min_score": args.min_score,
               "max_detection_side": args.max_detection_side}
    if hasattr(args, "detector"):
        options["detector"] = args.detector
    return options


def check_mae_drop(reference, candidate, folder: str, *, count: int, max_drop: Optional[float],
                   labels=("Keras", ".tflite")) -> int:
    """Prints the MAE of two age models on labelled faces; 1 if ``candidate`` loses more than ``max_drop``.

    Args:
        reference: The :class:`ssrnet_tf.faces.AgeModel` checked against (e.g. the Keras model).
        candidate: The :class:`ssrnet_tf.faces.AgeModel` checked (e.g. its ``.tflite`` export).
        folder: UTKFace-style folder (age first in each file name).
        count: Faces used (a seeded sample).
        max_drop: Largest allowed MAE increase in years; ``None``: report only.
        labels: What the two models are called in the printed line.

    Returns:
        The exit status: 0, or 1 when the drop exceeds ``max_drop``.
    """
    import sys  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.export import calibration  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.metrics import age_metrics  # pylint: disable=import-outside-toplevel

    faces, ages = calibration.labelled_faces(folder, int(reference.spec.input_size[0]), limit=count, seed=1)
    reference_mae = age_metrics.mean_absolute_error(ages, reference.ages(faces))
    candidate_mae = age_metrics.mean_absolute_error(ages, candidate.ages(faces))
    drop = candidate_mae - reference_mae
    print(f"check on {len(ages)} faces from {folder}: MAE {labels[0]} {reference_mae:.3f} | "
          f"{labels[1]} {candidate_mae:.3f} | drop {drop:+.3f} years")
    if max_drop is not None and drop > max_drop:
        print(f"error: MAE drop {drop:.3f} exceeds --max-mae-drop {max_drop}", file=sys.stderr)
        return 1
    return 0
