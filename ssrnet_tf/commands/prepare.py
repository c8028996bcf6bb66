"""``ssrnet-tf prepare``: raw labelled photos -> an aligned-crop dataset.

A thin layer over :func:`ssrnet_tf.faces.crop_dataset.prepare_crop_dataset`;
see there for the output layout, resuming and the report. The crop is set
by ``--size/--alignment/--margin``, or taken from a model's stored
ModelSpec with ``--like-model`` so the training crops match that model's.
"""

from __future__ import annotations

import argparse
import json

from ssrnet_tf.commands.common import add_detector_arguments, detector_options

EXAMPLES = (
    "ssrnet-tf prepare my_photos/ my_faces/ --labels ages.csv       # photos + CSV (path,age) -> crops",
    "ssrnet-tf prepare raw_utk/ utk_crops/ --like-model age.tflite   # crops exactly as a model expects",
)


def run(args: argparse.Namespace) -> int:
    """Crops every labelled photo of a folder into a training set."""
    from ssrnet_tf.faces.crop_dataset import prepare_crop_dataset  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.faces.face_cropper import FaceCropper  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.model_spec import ModelSpec  # pylint: disable=import-outside-toplevel

    if args.like_model:
        from ssrnet_tf.faces.age_predictor import load_age_model  # pylint: disable=import-outside-toplevel

        spec = load_age_model(args.like_model).spec
        print(f"crop settings from {args.like_model}: {spec.input_size[0]}x{spec.input_size[1]}, "
              f"alignment {spec.alignment}, margin {spec.margin}")
    else:
        spec = ModelSpec(input_size=(args.size, args.size), alignment=args.alignment, margin=args.margin)
    cropper = FaceCropper(spec, **detector_options(args))
    report = prepare_crop_dataset(
        args.photo_dir, args.output_dir, cropper, labels_csv=args.labels, image_format=args.format,
        skip_multi_face=args.skip_multi_face,
    )
    counts = report["counts"]
    print(json.dumps(counts))
    print(f"{counts['crops']} crops of {counts['cropped']}/{counts['photos']} photos in {args.output_dir}/index.csv "
          f"({counts['reused']} already done); no face: {counts['no_face']}, several faces: "
          f"{counts['several_faces']}, unreadable: {counts['unreadable']}, bad labels: {counts['bad_labels']}, "
          f"other files: {counts['skipped_files']} "
          f"(details in {args.output_dir}/report.json)")
    return 0


def add_parser(commands) -> None:
    """Adds ``prepare`` to the ``ssrnet-tf`` sub-command parsers."""
    from ssrnet_tf.faces.face_template import UTKFACE_MARGIN  # pylint: disable=import-outside-toplevel

    prepare = commands.add_parser(
        "prepare",
        help="turn labelled raw photos into an aligned face-crop dataset",
        description=(
            "Detects the face in every photo (MTCNN), crops it with the same function "
            "`ssrnet-tf predict` uses, and writes the crops, index.csv (path,age,gender,race) "
            "and report.json. Resumable: re-running skips finished photos."
        ),
    )
    prepare.add_argument("photo_dir", help="folder of raw photos")
    prepare.add_argument("output_dir", help="dataset folder to create or resume")
    prepare.add_argument("--labels", help="CSV with path,age[,gender,race] (paths relative to PHOTO_DIR); default: UTKFace-style file names AGE_GENDER_RACE_*.jpg")
    prepare.add_argument("--size", type=int, default=200, help="crop side in pixels [200, the UTKFace size]")
    prepare.add_argument("--alignment", choices=("none", "similarity", "eye_rotation"), default="similarity", help="crop mode [similarity]")
    prepare.add_argument("--margin", type=float, default=UTKFACE_MARGIN, help=f"fraction of the face box added per side [{UTKFACE_MARGIN}: the UTKFace layout]")
    prepare.add_argument("--like-model", metavar="MODEL", help="take size, alignment and margin from a model's stored ModelSpec (.keras/.tflite)")
    add_detector_arguments(prepare, policy="largest", backend=False)
    prepare.add_argument("--skip-multi-face", action="store_true", help="keep nothing from photos with several faces")
    prepare.add_argument("--format", choices=("jpg", "png"), default="jpg", help="crop file format [jpg]")
    prepare.set_defaults(handler=run)
