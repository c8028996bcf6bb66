"""Every export mode of a model, written as ``.tflite`` files side by side.

What :mod:`ssrnet_tf.export.compatibility` checks when it is given models
rather than files: for one Keras model, the default export of each mode
(float32, float16, dynamic range, int8 with float and with uint8 input, QAT
int8) and each opt-in feature that needs a newer runtime
(:data:`OPT_IN`). :func:`reference_models` names the models the test suite
checks: SSR-Net (published weights when available) and the shipped compact
model's trained backbone with each age head.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

PathLike = Union[str, os.PathLike]

#: Opt-in export features: ``name -> (minimum runtime, convert_to_tflite kwargs)``.
OPT_IN: Dict[str, tuple] = {
    "int8_head_weights": ("2.17.0", {"quantize": "int8", "int8_head_weights": True}),
    "dynamic_hybrid_ops": ("2.17.0", {"quantize": "dynamic", "dynamic_hybrid_ops": True}),
}

#: Default modes: ``name -> convert_to_tflite kwargs``.
MODES: Dict[str, dict] = {
    "float32": {"quantize": "none"},
    "float16": {"quantize": "float16"},
    "dynamic": {"quantize": "dynamic"},
    "int8": {"quantize": "int8"},
    "int8_uint8_input": {"quantize": "int8", "int8_input_type": "uint8"},
}


@dataclasses.dataclass
class NamedModel:
    """A Keras model to export, and how to make its QAT twin.

    Attributes:
        name: File name stem.
        model: The Keras 3 model.
        qat_model: Callable ``(calibration faces) -> QAT tf_keras model``, or
            ``None`` when the family has no QAT export.
    """

    name: str
    model: object
    qat_model: Optional[Callable] = None
    modes: Optional[Sequence[str]] = None


def export_every_mode(
    named: NamedModel,
    out_dir: PathLike,
    calibration: np.ndarray,
    *,
    opt_in: bool = True,
    modes: Optional[Sequence[str]] = None,
) -> List[pathlib.Path]:
    """Writes ``<name>_<mode>.tflite`` for every mode (and opt-in feature).

    Args:
        named: The model.
        out_dir: Destination folder (created).
        calibration: float32 raw BGR faces at the model's input size, for
            int8 calibration and QAT ranges.
        opt_in: Whether the :data:`OPT_IN` features are written too.
        modes: Subset of :data:`MODES` (plus ``"qat"``); default
            ``named.modes``, else all.

    Returns:
        The written paths.
    """
    from ssrnet_tf.export.qat import export_qat_tflite  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.export.tflite import convert_to_tflite  # pylint: disable=import-outside-toplevel

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    modes = modes if modes is not None else named.modes
    wanted = list(modes) if modes is not None else [*MODES, "qat"]
    jobs = {mode: MODES[mode] for mode in wanted if mode in MODES}
    if opt_in:
        jobs.update({name: kwargs for name, (_, kwargs) in OPT_IN.items() if kwargs["quantize"] in wanted})
    written = []
    for mode, kwargs in jobs.items():
        path = out_dir / f"{named.name}_{mode}.tflite"
        extra = {"representative_images": calibration} if kwargs["quantize"] == "int8" else {}
        convert_to_tflite(named.model, path, **kwargs, **extra)
        written.append(path)
    if "qat" in wanted and named.qat_model is not None:
        qat_model = named.qat_model(calibration)
        path = out_dir / f"{named.name}_qat.tflite"
        export_qat_tflite(qat_model, path)
        written.append(path)
        if opt_in:
            path = out_dir / f"{named.name}_qat_int8_head_weights.tflite"
            export_qat_tflite(qat_model, path, int8_head_weights=True)
            written.append(path)
    return written


def _ssrnet(weights: Optional[PathLike]) -> NamedModel:
    from ssrnet_tf.export import qat_export  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.models import build_ssrnet  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.pretrained import load_reference_ssrnet  # pylint: disable=import-outside-toplevel

    model = load_reference_ssrnet(weights) if weights else build_ssrnet()
    return NamedModel("ssrnet", model, lambda faces: qat_export.quantize_aware(model, faces))


#: The shipped model whose trained backbone carries each age head in the check.
TRAINED_BACKBONE_MODEL = "compact-utkface"


def trained_backbone(source: PathLike = TRAINED_BACKBONE_MODEL):
    """The backbone (``"<key>_backbone"`` model, trained weights) of a trained model, and the model.

    Args:
        source: A shipped model's name, or a ``.keras`` file.

    Raises:
        ValueError: If the model is no backbone age model
            (:func:`ssrnet_tf.export.qat_backbone.backbone_parts`).
    """
    from ssrnet_tf import model_spec, pretrained  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.export import qat_backbone  # pylint: disable=import-outside-toplevel

    path = pathlib.Path(source) if str(source).endswith(".keras") else pretrained.shipped_path(str(source))
    model, _ = model_spec.load_keras(path)
    return qat_backbone.backbone_parts(model).backbone, model


def _copy_matching_layers(source, target) -> None:
    """Weights of the target's top-level layers that the source has by name and shape.

    For a backbone age model built on a copy of ``source``'s backbone: the
    backbone (same ``"<key>_backbone"`` name) and the heads ``source`` has.
    """
    sources = {layer.name: layer for layer in source.layers if layer.weights}
    for layer in target.layers:
        match = sources.get(layer.name)
        if match is not None and [w.shape for w in match.weights] == [w.shape for w in layer.weights]:
            layer.set_weights(match.get_weights())


def _backbone(backbone, trained, head: str, extra_heads: Sequence[str] = (),
              modes: Optional[Sequence[str]] = None) -> NamedModel:
    import keras  # pylint: disable=import-outside-toplevel

    from ssrnet_tf import heads  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.export import qat_export  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.models.age_model import build_age_model  # pylint: disable=import-outside-toplevel

    keras.utils.set_random_seed(0)
    # A copy per model (the QAT twin needs every layer called once); its
    # trained weights come with the head's below.
    copy = keras.models.clone_model(backbone)
    task = build_age_model(copy, heads.build_head(head), [heads.build_head(name) for name in extra_heads])
    _copy_matching_layers(trained, task.model)
    name = "_".join([backbone.name[: -len("_backbone")], head, *extra_heads])
    return NamedModel(name, task.model, lambda faces: qat_export.quantize_aware(task.model, faces), modes)


#: Age heads the backbone model is exported with.
AGE_HEADS = ("multi_granularity", "label_distribution", "dex", "regression")


def reference_models(ssrnet_weights: Optional[PathLike] = None,
                     backbone_source: PathLike = TRAINED_BACKBONE_MODEL) -> List[NamedModel]:
    """SSR-Net, and the shipped compact model's trained backbone with each age head.

    A model the compatibility check runs must be a *trained* one: a
    backbone with random weights amplifies one-step int8 rounding into
    years (LiteRT's own XNNPACK and reference kernels gave ages 1.4 years
    apart on a random MobileNetV2's dynamic-range file), so such a file
    cannot tell a runtime that computes something else from rounding noise.
    The backbone is :data:`TRAINED_BACKBONE_MODEL`'s (trained on UTKFace),
    the multi-granularity head keeps its trained weights, the other heads
    are freshly initialised on the trained features.

    SSR-Net and the multi-granularity model (with the gender/race and
    age-group heads too: dict outputs) are exported in every mode. The other
    age heads differ from it only in their dense layers, which only the int8
    export rewrites (float head kept in float, optional int8 head weights),
    so they are exported as int8 and with the opt-in features; the float
    modes are the converter's own and do not depend on the head.

    Args:
        ssrnet_weights: A published SSR-Net ``.h5`` (else random weights).
        backbone_source: Where the trained backbone comes from
            (:func:`trained_backbone`).

    Returns:
        The models.
    """
    backbone, trained = trained_backbone(backbone_source)
    models = [_ssrnet(ssrnet_weights), _backbone(backbone, trained, AGE_HEADS[0], ("multi_task", "age_group"))]
    models += [_backbone(backbone, trained, head, modes=("int8",)) for head in AGE_HEADS[1:]]
    return models
