"""Ages for every face in a photograph: detector + cropper + age model.

The library's one model loader, behind ``predict``, ``evaluate``,
``export`` and ``bench``. :func:`load_age_model` opens a ``.keras`` or
``.tflite`` file, a published ``.h5`` file, a published weights name
(``imdb``, ``wiki``, ``morph2``, ``megaface_asian``) or the name of a model
shipped in the package (``ssrnet-utkface``, ``compact-utkface-int8``, ...),
and reads the crop the model expects from the
:class:`ssrnet_tf.model_spec.ModelSpec` stored in the file. Without a
stored spec it falls back to, and says so in ``spec_source``:

* ``.keras`` / ``.tflite`` without a spec:
  :func:`ssrnet_tf.model_spec.default_spec`, the UTKFace layout
  (``alignment="similarity"``, ``margin=UTKFACE_MARGIN`` = 0.03, BGR, raw
  0-255, the model's own input size), i.e. the crops ssrnet_tf models are
  trained on;
* published SSR-Net weights: :func:`ssrnet_tf.model_spec.published_spec`,
  the crop of the original SSR-Net demo (``alignment="none"``,
  ``margin=0.4``: the MTCNN box grown by 40 % per side, 64x64 BGR).

A ``.keras`` or ``.tflite`` file written from a loaded model
(:meth:`AgeModel.save_keras`, ``ssrnet-tf export``) stores the spec in use,
so the same weights get the same crop in every format.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ssrnet_tf.faces.face_cropper import FaceCropper
from ssrnet_tf.faces.face_template import UTKFACE_MARGIN
from ssrnet_tf.faces.loaded_image import ImageReadError, load_image
from ssrnet_tf.model_spec import default_spec, published_spec

PathLike = Union[str, os.PathLike]


@dataclasses.dataclass
class AgeModel:
    """An age model of any supported kind, behind one call.

    Attributes:
        name: What the model was loaded from.
        kind: ``"keras"``, ``"tflite"`` or ``"published"``.
        spec: The :class:`ssrnet_tf.model_spec.ModelSpec` in use.
        spec_source: Where ``spec`` came from (the model file, or which
            documented default and why).
        run: ``batch -> {output_name: (N, ...) array}``.
        flip_average: Test-time flip averaging: every output is the mean of
            the model's outputs for the faces and for their mirror images
            (twice the inference cost).
    """

    name: str
    kind: str
    spec: object
    spec_source: str
    run: Callable[[np.ndarray], Dict[str, np.ndarray]]
    flip_average: bool = False
    keras_model: Optional[object] = None

    @classmethod
    def from_keras(cls, model, spec, name: str, *, kind: str = "keras",
                   spec_source: str = "given") -> "AgeModel":
        """An :class:`AgeModel` around a Keras model already in memory.

        Args:
            model: The Keras model.
            spec: Its :class:`ssrnet_tf.model_spec.ModelSpec`.
            name: What the model is (for reports).
            kind: ``"keras"`` or ``"published"``.
            spec_source: Where ``spec`` came from.
        """
        return cls(name, kind, spec, spec_source, _keras_runner(model), keras_model=model)

    def predict(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        """``{output_name: array}`` for a float32 ``(N, H, W, 3)`` batch."""
        outputs = {name: np.asarray(value) for name, value in self.run(batch).items()}
        if not self.flip_average:
            return outputs
        mirrored = self.run(np.ascontiguousarray(np.asarray(batch)[:, :, ::-1]))
        return {name: (value + np.asarray(mirrored[name])) / 2.0 for name, value in outputs.items()}

    def ages(self, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Predicted ages ``(N,)`` of a float32 ``(N, H, W, 3)`` face array, in batches."""
        if len(faces) == 0:
            return np.zeros((0,), np.float32)
        return np.concatenate([np.asarray(self.predict(faces[start:start + batch_size])["age"]).reshape(-1)
                               for start in range(0, len(faces), batch_size)])

    def save_keras(self, path: PathLike) -> pathlib.Path:
        """Saves a Keras-backed model as ``.keras`` with its spec inside.

        Raises:
            ValueError: For a ``.tflite`` model (it has no Keras graph).
        """
        from ssrnet_tf.model_spec import save_keras  # pylint: disable=import-outside-toplevel

        return save_keras(self.require_keras("save it as .keras"), path, self.spec)

    def require_keras(self, purpose: str):
        """The Keras model, or a one-line ``ValueError`` naming the file and ``purpose``."""
        if self.keras_model is None:
            raise ValueError(f"{self.name}: a .tflite file cannot be converted again; to {purpose}, "
                             "give the .keras file, a published .h5 file or a registry name.")
        return self.keras_model


def _keras_runner(model) -> Callable:
    def run(batch):
        return {name: np.asarray(value) for name, value in model(batch, training=False).items()}

    return run


def load_age_model(name_or_path: Optional[PathLike] = None, *, weights_dir: Optional[PathLike] = None,
                   num_threads: Optional[int] = None, flip_average: bool = False) -> AgeModel:
    """Opens an age model and the spec of its input.

    Args:
        name_or_path: A ``.keras`` or ``.tflite`` file, a published ``.h5``
            weights file, a published weights name (``imdb``, ...) or the
            name of a model shipped in the package (``ssrnet-utkface``,
            ``compact-utkface-int8``, ...; :func:`ssrnet_tf.pretrained.shipped_models`).
            ``None``: the best shipped model (:func:`ssrnet_tf.pretrained.default_model_name`).
        weights_dir: Folder of published ``.h5`` files, searched before the
            download cache (see :func:`ssrnet_tf.pretrained.load_pretrained`).
        num_threads: TFLite interpreter threads.
        flip_average: Average each output over the face and its mirror image.

    Returns:
        An :class:`AgeModel`.

    Raises:
        FileNotFoundError: If the file does not exist.
        KeyError: For an unknown published name.
        ValueError: If the file is not a model of a supported kind.
    """
    from ssrnet_tf import pretrained  # pylint: disable=import-outside-toplevel

    if name_or_path is None:
        name_or_path = pretrained.default_model_name()
    model = _load_age_model(str(name_or_path), weights_dir, num_threads)
    return dataclasses.replace(model, flip_average=flip_average)


def _load_age_model(text: str, weights_dir: Optional[PathLike], num_threads: Optional[int]) -> AgeModel:
    from ssrnet_tf import model_spec, pretrained  # pylint: disable=import-outside-toplevel

    if text in pretrained.shipped_files():
        shipped = pretrained.shipped_path(text)
        model = _load_age_model(str(shipped), weights_dir, num_threads)
        return dataclasses.replace(model, name=f"{text} (shipped in the package: {shipped.name})")
    suffix = pathlib.Path(text).suffix.lower()
    if suffix == ".keras":
        model, spec = model_spec.load_keras(text)
        source = "model file (.keras)"
        if spec is None:
            spec = default_spec(model.input_shape[1:3])
            source = _DEFAULT_SOURCE.format(suffix=".keras")
        return AgeModel.from_keras(model, spec, text, spec_source=source)
    if suffix == ".tflite":
        from ssrnet_tf.export.tflite import TFLiteModel  # pylint: disable=import-outside-toplevel

        if not pathlib.Path(text).is_file():
            raise FileNotFoundError(f"{text}: model file not found.")
        runner = TFLiteModel(text, num_threads=num_threads)
        spec = model_spec.read_tflite_spec(text)
        source = "model file (.tflite metadata)"
        if spec is None:
            spec = default_spec(runner.input_shape[1:3])
            source = _DEFAULT_SOURCE.format(suffix=".tflite")
        return AgeModel(text, "tflite", spec, source, runner.predict_outputs)
    model = pretrained.load_pretrained(text, weights_dir=weights_dir)
    source = "default for published SSR-Net weights: the original SSR-Net demo crop (MTCNN box + 40 % margin, no alignment)"
    return AgeModel.from_keras(model, published_spec(pathlib.Path(text).stem), text, kind="published",
                               spec_source=source)


_DEFAULT_SOURCE = ("default: the {suffix} file stores no ModelSpec; assumed the UTKFace layout "
                   f"(similarity alignment, margin {UTKFACE_MARGIN}, BGR 0-255)")


class AgePredictor:
    """Finds every face in an image and predicts its age.

    All faces of an image go through the age model in one batch;
    :meth:`predict_files` batches the faces of several images.

    Args:
        model: An :class:`AgeModel`.
        policy, min_face_size, min_score, max_detection_side: As for
            :class:`ssrnet_tf.faces.FaceCropper`.
        max_pixels: Pixel budget of :func:`ssrnet_tf.faces.load_image`.
        detector: Face detector backend, ``"litert"`` or ``"mtcnn"`` (see
            :class:`ssrnet_tf.faces.FaceDetector`).
        num_threads: LiteRT threads of the detector.

    Example:
        >>> predictor = AgePredictor(load_age_model("model.keras"))
        >>> predictor.predict_file("group.jpg")["faces"][0]["age"]
    """

    def __init__(self, model: AgeModel, *, policy: str = "all", min_face_size: float = 20.0,
                 min_score: float = 0.9, max_detection_side: int = 1280, max_pixels: Optional[int] = None,
                 detector: str = "litert", num_threads: Optional[int] = None):
        self.model = model
        self.cropper = FaceCropper(model.spec, policy=policy, min_face_size=min_face_size,
                                   min_score=min_score, max_detection_side=max_detection_side,
                                   backend=detector, num_threads=num_threads)
        self.max_pixels = max_pixels

    def face_entries(self, crops: Sequence, outputs: Dict[str, np.ndarray], scale: float = 1.0) -> List[Dict]:
        """JSON face entries (box, landmarks, score, model outputs) of crops.

        Args:
            crops: :class:`ssrnet_tf.faces.FaceCrop` list.
            outputs: ``{output_name: (len(crops), ...)}`` model outputs.
            scale: Multiplies coordinates (to report original-file pixels).
        """
        faces = []
        for index, crop in enumerate(crops):
            entry = crop.to_json(scale)
            for name, values in outputs.items():
                value = np.asarray(values[index], np.float64)
                entry[name] = round(float(value.reshape(-1)[0]), 4) if value.size == 1 else np.round(value, 4).tolist()
            faces.append(entry)
        return faces

    def predict_crops(self, crop_lists: Sequence[Sequence]) -> List[Dict[str, np.ndarray]]:
        """Model outputs for the crops of several images, in one batch.

        Returns:
            One ``{output_name: array}`` per crop list (empty lists too).
        """
        counts = [len(crops) for crops in crop_lists]
        flat = [crop for crops in crop_lists for crop in crops]
        if not flat:
            return [{} for _ in counts]
        outputs = self.model.predict(self.cropper.model_input(flat))
        bounds = np.cumsum([0] + counts)
        return [{name: values[start:end] for name, values in outputs.items()}
                for start, end in zip(bounds[:-1], bounds[1:])]

    def predict_array(self, image_bgr: np.ndarray, scale: float = 1.0) -> List[Dict]:
        """Face entries (box, landmarks, score, model outputs) for an image.

        Args:
            image_bgr: uint8 BGR image.
            scale: Multiplies coordinates (to report original-file pixels).
        """
        crops = self.cropper.crops(image_bgr)
        return self.face_entries(crops, self.predict_crops([crops])[0], scale)

    def predict_file(self, path: PathLike, annotate_path: Optional[PathLike] = None) -> Dict:
        """The JSON record of one image file; never raises for bad images.

        Returns:
            ``{"image", "size", "faces", ...}``; with ``"reason"`` when no
            face was found, ``"error"`` when the file could not be used, and
            ``"notes"`` on how it was decoded.
        """
        return next(self.predict_files([path], [annotate_path]))

    def predict_files(self, paths: Sequence[PathLike], annotate_paths: Optional[Sequence] = None,
                      images_per_batch: int = 16) -> Iterator[Dict]:
        """The records of several image files, in order (never raises for bad images).

        The faces of up to ``images_per_batch`` images go through the age
        model as one batch.

        Args:
            paths: Image files.
            annotate_paths: Per file, where to write an annotated copy (or
                ``None``).
            images_per_batch: Images whose faces share one model batch.

        Yields:
            One record per file, as :meth:`predict_file` returns.
        """
        annotate_paths = list(annotate_paths) if annotate_paths is not None else [None] * len(paths)
        for start in range(0, len(paths), images_per_batch):
            group = [self._detect_file(path) for path in paths[start:start + images_per_batch]]
            try:
                outputs = self.predict_crops([crops for _, _, crops in group])
            except Exception as error:  # pylint: disable=broad-except  # one bad batch must not stop a folder
                outputs = [{} for _ in group]
                for record, _, crops in group:
                    if crops:
                        record["error"] = f"{record['image']}: the model failed: {type(error).__name__}: {error}"
            for (record, loaded, crops), output, annotate in zip(group, outputs, annotate_paths[start:]):
                if crops and "error" not in record:
                    record["faces"] = self.face_entries(crops, output, loaded.scale)
                if loaded is not None and "error" not in record:
                    if not record["faces"]:
                        record["reason"] = self._no_face_reason(loaded)
                    if annotate is not None:
                        self._annotate(loaded, record, annotate)
                yield record

    def _detect_file(self, path: PathLike) -> Tuple[Dict, Optional[object], List]:
        """``(record, loaded image or None, crops)`` of one file."""
        from ssrnet_tf.data.folder_walk import display_path  # pylint: disable=import-outside-toplevel

        record: Dict = {"image": display_path(path)}
        try:
            options = {} if self.max_pixels is None else {"max_pixels": self.max_pixels}
            loaded = load_image(path, **options)
        except ImageReadError as error:
            record.update(faces=[], error=str(error))
            return record, None, []
        record["size"] = list(loaded.original_size)
        if loaded.notes:
            record["notes"] = list(loaded.notes)
        record["faces"] = []
        try:
            crops = self.cropper.crops(loaded.image)
        except Exception as error:  # pylint: disable=broad-except  # one bad image must not stop a folder
            record["error"] = f"{path}: face detection failed: {type(error).__name__}: {error}"
            return record, loaded, []
        return record, loaded, crops

    def _no_face_reason(self, loaded) -> str:
        detector = self.cropper.detector
        height, width = loaded.image.shape[:2]
        if min(height, width) < max(12.0, detector.min_face_size):
            return (f"image is {width}x{height} pixels, smaller than the smallest face searched for "
                    f"({detector.min_face_size:g} px)")
        return f"no face found (smallest face {detector.min_face_size:g} px, confidence >= {detector.min_score:g})"

    @staticmethod
    def _annotate(loaded, record: Dict, annotate_path: PathLike) -> None:
        import cv2  # pylint: disable=import-outside-toplevel

        from ssrnet_tf.faces.face_annotation import draw_faces  # pylint: disable=import-outside-toplevel
        from ssrnet_tf.utils.atomic import atomic_write_bytes  # pylint: disable=import-outside-toplevel

        annotate_path = pathlib.Path(annotate_path)
        if annotate_path.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp"):
            annotate_path = annotate_path.with_name(annotate_path.name + ".png")
        ok, encoded = cv2.imencode(annotate_path.suffix, draw_faces(loaded.image, record["faces"], loaded.scale))
        try:
            if not ok:
                raise OSError(f"OpenCV cannot encode {annotate_path.suffix} files")
            atomic_write_bytes(annotate_path, encoded.tobytes())
        except OSError as error:
            record["annotate_error"] = f"{annotate_path}: {error}"
            return
        record["annotated"] = str(annotate_path)
        if loaded.scale != 1.0:
            record["annotated_scale"] = round(loaded.scale, 4)  # the copy is the reduced decode


__all__ = ["AgeModel", "AgePredictor", "default_spec", "load_age_model", "published_spec"]
