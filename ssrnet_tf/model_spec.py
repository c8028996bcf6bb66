"""What a saved or exported model expects, stored with the model itself.

A model is only usable if the face crop fed to it at inference matches the
one it was trained on (size, channel order, pixel range, alignment and
margin). :class:`ModelSpec` records that, and travels *inside* the model
file, so ``ssrnet-tf predict`` and mobile apps never have to be told again:

* ``.keras`` files carry it as ``ssrnet_tf_spec.json`` inside the archive
  (Keras ignores the extra entry);
* ``.tflite`` files carry it as a flatbuffer metadata entry named
  ``ssrnet_tf_spec`` (readable from any TFLite/LiteRT runtime's metadata
  API, or with :func:`read_tflite_spec`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import zipfile
from typing import Dict, Optional, Tuple, Union

PathLike = Union[str, os.PathLike]

#: Name of the spec inside ``.keras`` archives and ``.tflite`` metadata.
SPEC_NAME = "ssrnet_tf_spec"
_KERAS_ENTRY = SPEC_NAME + ".json"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The input contract and output meaning of an age model.

    Attributes:
        input_size: ``(height, width)`` of the face crop in pixels.
        channel_order: ``"bgr"`` (OpenCV order; every ssrnet_tf model) or
            ``"rgb"``.
        pixel_range: Value range of the input pixels; ``"0-255"`` raw.
        alignment: How the face crop is made: ``"none"`` (the detector box),
            ``"similarity"`` (5-point similarity transform to a template) or
            ``"eye_rotation"`` (rotate eyes level, re-detect); see
            :mod:`ssrnet_tf.faces`.
        margin: Box expansion on each side as a fraction of the box size.
            The default 0.03 with ``"similarity"`` alignment reproduces the
            UTKFace aligned&cropped layout that ssrnet_tf models train on
            (see :data:`ssrnet_tf.faces.UTKFACE_MARGIN`).
        outputs: Output name -> meaning, e.g. ``{"age": "years, (N, 1)"}``.
        architecture: Free text, e.g. ``"ssrnet(3,3,3)"``.
        training_data: Free text, e.g. ``"UTKFace aligned&cropped"``.
    """

    input_size: Tuple[int, int] = (64, 64)
    channel_order: str = "bgr"
    pixel_range: str = "0-255"
    alignment: str = "similarity"
    margin: float = 0.03
    outputs: Dict[str, str] = dataclasses.field(
        default_factory=lambda: {"age": "age in years, float32 (N, 1)"}
    )
    architecture: str = ""
    training_data: str = ""

    def __post_init__(self):
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise ValueError(f"input_size must be (height, width), got {self.input_size}.")
        if self.channel_order not in ("bgr", "rgb"):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {self.channel_order!r}.")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}.")

    def to_json(self) -> str:
        """JSON text of the spec."""
        data = dataclasses.asdict(self)
        data["input_size"] = list(self.input_size)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: Union[str, bytes]) -> "ModelSpec":
        """Parses :meth:`to_json` output (unknown keys are ignored)."""
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def for_model(cls, model, **fields) -> "ModelSpec":
        """A spec whose input size and outputs are read off a Keras model."""
        height, width = model.input_shape[1:3]
        outputs = {name: "" for name in model.output}  # the outputs' keys, as a TFLite signature names them
        if "age" in outputs:
            outputs["age"] = "age in years, float32 (N, 1)"
        fields.setdefault("outputs", outputs)
        return cls(input_size=(height, width), **fields)


#: Crop margin of the original SSR-Net demo: the MTCNN box grown by 40 % per side.
PUBLISHED_MARGIN = 0.4


def default_spec(input_size=(64, 64)) -> ModelSpec:
    """The spec assumed for a model file that stores none.

    The UTKFace aligned&cropped layout every ssrnet_tf model trains on
    (``alignment="similarity"``, ``margin`` 0.03, BGR, raw 0-255): the
    :class:`ModelSpec` defaults, at the model's own input size.
    """
    return ModelSpec(input_size=tuple(input_size))


def published_spec(name: str = "") -> ModelSpec:
    """The spec of the published SSR-Net weights (Yang et al., 2018).

    The crop of the original SSR-Net demo: the MTCNN box grown by 40 % per
    side, no alignment, 64x64 BGR, raw 0-255.

    Args:
        name: Which published weights (``imdb``, ...), for ``training_data``.
    """
    return ModelSpec(input_size=(64, 64), alignment="none", margin=PUBLISHED_MARGIN,
                     architecture="ssrnet(3,3,3)", training_data=f"published SSR-Net weights: {name}")


def save_keras(model, path: PathLike, spec: ModelSpec) -> pathlib.Path:
    """Saves ``model`` as ``.keras`` with ``spec`` inside, atomically.

    Args:
        model: The Keras model.
        path: Destination ending in ``.keras``.
        spec: The model's input contract.

    Returns:
        ``path`` as a path.
    """
    path = pathlib.Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: the file name must end in .keras.")
    from ssrnet_tf.utils.atomic import temp_dir  # pylint: disable=import-outside-toplevel

    with temp_dir(path) as tmp:
        tmp_path = tmp / path.name
        model.save(tmp_path)
        with zipfile.ZipFile(tmp_path, "a") as archive:
            archive.writestr(_KERAS_ENTRY, spec.to_json())
        os.replace(tmp_path, path)
    return path


def read_keras_spec(path: PathLike) -> Optional[ModelSpec]:
    """The spec stored in a ``.keras`` file, or ``None`` if it has none."""
    try:
        with zipfile.ZipFile(path) as archive:
            if _KERAS_ENTRY not in archive.namelist():
                return None
            return ModelSpec.from_json(archive.read(_KERAS_ENTRY))
    except zipfile.BadZipFile:
        raise ValueError(f"{path}: not a .keras archive.") from None


def load_keras(path: PathLike):
    """Loads a ``.keras`` model and its spec.

    An SSR-Net saved before every model returned a dict (its output the bare
    ``(N, 1)`` age tensor) is rebuilt with dict outputs ``{"age": ...}``, its
    weights transferred by layer name
    (:func:`ssrnet_tf.models.ssrnet.upgrade_single_output`).

    Returns:
        ``(model, spec)``; ``spec`` is ``None`` for files saved without one.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ssrnet_tf.errors.ModelLoadError: If it is not a loadable ``.keras``
            archive (broken, truncated, or refused by Keras' safe mode),
            naming the file.
    """
    import keras  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.custom_objects import register_all  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.errors import ModelLoadError, one_line  # pylint: disable=import-outside-toplevel

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found.")
    register_all()
    try:
        spec = read_keras_spec(path)
        model = keras.saving.load_model(path)
    except Exception as error:  # pylint: disable=broad-except  # Keras raises many kinds; name the file
        raise ModelLoadError(f"{path}: not a loadable .keras model ({type(error).__name__}: "
                             f"{one_line(error, 300)})") from error
    from ssrnet_tf.models.ssrnet import upgrade_single_output  # pylint: disable=import-outside-toplevel

    return upgrade_single_output(model), spec  # files saved before dict outputs


def _schema():
    from tensorflow.lite.python import schema_py_generated  # pylint: disable=import-outside-toplevel

    return schema_py_generated


def read_tflite_spec(model: Union[bytes, PathLike]) -> Optional[ModelSpec]:
    """The spec stored in a ``.tflite`` model, or ``None`` if it has none."""
    flatbuffer = model if isinstance(model, (bytes, bytearray)) else pathlib.Path(model).read_bytes()
    schema = _schema()
    root = schema.Model.GetRootAsModel(flatbuffer, 0)
    for i in range(root.MetadataLength()):
        entry = root.Metadata(i)
        if entry.Name() in (SPEC_NAME.encode(), SPEC_NAME):
            data = root.Buffers(entry.Buffer()).DataAsNumpy()
            return ModelSpec.from_json(bytes(data))
    return None
