"""``ssrnet-tf predict``: ages of every face in images, as JSON lines.

Output (stdout), one JSON object per line:

1. ``{"model", "kind", "spec", "spec_source"}``: the model and the crop it
   gets; ``spec_source`` says whether the spec came from the model file or
   from a documented default (:mod:`ssrnet_tf.faces.age_predictor`).
2. One ``{"image", "size", "faces": [...]}`` per image; each face has
   ``box`` ``[x1, y1, x2, y2]`` and ``landmarks`` in the pixels of the
   original file, ``score``, ``age`` and any other model output. No face:
   ``"faces": []`` and a ``"reason"``; unusable file: an ``"error"``.
   ``"notes"`` tell how the file was decoded (EXIF rotation, reduced-size
   decoding of huge images, grayscale, alpha).
3. ``{"summary": {...}}``: counts, and every entry of the input folders
   not used, with the reason (``skipped_files``: ``{"path", "reason"}``).

Bad images never stop the run; the exit status is 0 once every image has
its line and at least one face was found, 7 (``ExitCode.NO_RESULT``) when
no input produced a face, and another non-zero code of
:class:`ssrnet_tf.errors.ExitCode` if the model itself cannot be loaded.

A video file (``.mp4``, ``.avi``, ...) or a camera index (``0``) gives one
``{"frame", "time", "faces"}`` line per frame and a ``{"video", "frames",
"fps", ...}`` line at its end (:mod:`ssrnet_tf.faces.video`); with
``--annotate DIR`` an annotated copy of the video is written into ``DIR``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import List, Tuple

from ssrnet_tf.commands.common import (MODEL_HELP, add_detector_arguments, add_weights_dir_argument, detector_options,
                                       weights_dir_from)

EXAMPLES = (
    "ssrnet-tf predict photo.jpg                                  # the best shipped model, one JSON line per image",
    "ssrnet-tf predict photo.jpg --model imdb                     # the published SSR-Net instead",
    "ssrnet-tf predict photos/ --model age_int8.tflite --annotate out/   # a folder, with annotated copies",
)


def collect_images(inputs: List[str]) -> Tuple[List[Tuple[pathlib.Path, pathlib.Path]], List[dict]]:
    """``([(image, path relative to its input), ...], skipped)``.

    Folders are searched recursively for files with an image suffix, in
    sorted order; every other entry met (other files, hidden ones, broken
    links, link loops, unsupported formats) is returned in ``skipped`` as
    ``{"path", "reason"}`` (:func:`ssrnet_tf.data.folder_walk.walk_images`).
    A file named directly is always used, whatever its suffix (missing ones
    too, so they get an error line).
    """
    from ssrnet_tf.data.folder_walk import walk_images  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.faces.loaded_image import IMAGE_SUFFIXES  # pylint: disable=import-outside-toplevel

    images, skipped = [], []
    for text in inputs:
        root = pathlib.Path(text)
        if root.is_dir():
            walk = walk_images(root, IMAGE_SUFFIXES)
            images += [(path, path.relative_to(root)) for path in walk.files]
            skipped += walk.skipped
        else:
            images.append((root, pathlib.Path(root.name)))
    return images, skipped


def run(args: argparse.Namespace) -> int:
    """Predicts the age of every face in the given images or folders."""
    from ssrnet_tf.faces.age_predictor import AgePredictor, load_age_model  # pylint: disable=import-outside-toplevel

    weights_dir = weights_dir_from(args, "predict")
    model = load_age_model(args.model, weights_dir=weights_dir, num_threads=args.threads, flip_average=args.flip_average)
    if args.model is None:
        print(f"ssrnet-tf predict: using the shipped model {model.name} (--model picks another)", file=sys.stderr)
    predictor = AgePredictor(model, num_threads=args.threads, **detector_options(args))
    out = sys.stdout
    print(json.dumps({"model": model.name, "kind": model.kind, "spec": json.loads(model.spec.to_json()),
                      "spec_source": model.spec_source}), file=out, flush=True)
    if model.spec_source.startswith("default"):
        print(f"ssrnet-tf predict: note: {model.spec_source}", file=sys.stderr)
    if (model.spec.training_data or "").startswith("none: randomly"):
        print(f"ssrnet-tf predict: warning: {model.name} holds random weights (a latency-benchmark file): "
              "its ages are meaningless.", file=sys.stderr)
    videos = [text for text in args.inputs if _is_video(text)]
    images, skipped = collect_images([text for text in args.inputs if not _is_video(text)])
    counts = {"images": len(images), "faces": 0, "with_faces": 0, "no_face": 0, "errors": 0}
    annotate = [pathlib.Path(args.annotate) / relative if args.annotate else None for _, relative in images]
    for record in predictor.predict_files([path for path, _ in images], annotate):
        counts["faces"] += len(record["faces"])
        counts["with_faces"] += bool(record["faces"])
        counts["errors"] += "error" in record
        counts["no_face"] += "reason" in record
        print(json.dumps(record), file=out, flush=True)
    if videos:
        counts["videos"] = len(videos)
    for text in videos:
        failed, faces = _predict_video(predictor, text, args, out)
        counts["errors"] += failed
        counts["faces"] += faces
    print(json.dumps({"summary": {**counts, "skipped_files": skipped}}), file=out, flush=True)
    if counts["faces"] == 0:
        from ssrnet_tf.errors import ExitCode  # pylint: disable=import-outside-toplevel

        inputs = f"{len(images)} images" + (f" and {len(videos)} videos" if videos else "")
        print(f"ssrnet-tf predict: error: no face found in any of {inputs} "
              f"({counts['errors']} unusable, {counts['no_face']} images without a face)", file=sys.stderr)
        return int(ExitCode.NO_RESULT)
    return 0


def _is_video(text: str) -> bool:
    from ssrnet_tf.faces import video  # pylint: disable=import-outside-toplevel

    return video.is_camera_index(text) or video.is_video_path(text)


def _predict_video(predictor, text: str, args: argparse.Namespace, out) -> Tuple[int, int]:
    """Prints one line per frame and a summary; returns ``(1 if the video failed else 0, faces)``."""
    from ssrnet_tf.faces import video  # pylint: disable=import-outside-toplevel

    source = int(text) if video.is_camera_index(text) else text
    annotate = None
    if args.annotate:
        name = f"camera{source}.mp4" if isinstance(source, int) else pathlib.Path(text).name
        annotate = pathlib.Path(args.annotate) / name
    faces = 0
    try:
        for record in video.predict_video(predictor, source, annotate, max_frames=args.max_frames):
            print(json.dumps(record), file=out, flush=True)
            faces += len(record.get("faces", [])) if "frame" in record else 0
            if "fps" in record:
                print(f"ssrnet-tf predict: {text}: {record['frames']} frames at {record['fps']:.1f} frames/s",
                      file=sys.stderr)
    except video.VideoReadError as error:
        print(json.dumps({"video": text, "frames": 0, "error": str(error)}), file=out, flush=True)
        return 1, 0
    return 0, faces


def add_parser(commands) -> None:
    """Adds ``predict`` to the ``ssrnet-tf`` sub-command parsers."""
    predict = commands.add_parser(
        "predict",
        help="predict the age of every face in images (JSON lines)",
        description=(
            "Detects faces (MTCNN), crops them as the model expects (read from the "
            "ModelSpec stored in the .keras/.tflite file) and prints one JSON line per "
            "image with each face's box, landmarks, score and age."
        ),
    )
    predict.add_argument("inputs", nargs="+", metavar="IMAGE_FOLDER_OR_VIDEO",
                         help="image files and/or folders (searched recursively), video files, or a camera index (0)")
    predict.add_argument("--model", help=MODEL_HELP + " [the best shipped model]")
    predict.add_argument("--flip-average", action="store_true",
                         help="test-time flip averaging: each age is the mean over the face and its mirror image")
    add_weights_dir_argument(predict)
    predict.add_argument("--annotate", metavar="DIR", help="also write a copy of each image with boxes and ages into DIR")
    add_detector_arguments(predict)
    predict.add_argument("--threads", type=int, default=None, help="TFLite interpreter threads (age model and detector) [runtime default]")
    predict.add_argument("--max-frames", type=int, default=None, help="stop a video or camera after this many frames")
    predict.set_defaults(handler=run)
