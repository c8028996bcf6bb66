"""QAT int8 export of any ssrnet_tf age model, in one call, with its accuracy check.

One path for SSR-Net and for backbone age models:
:func:`ssrnet_tf.export.tf_keras_twin.to_tf_keras_twin` (the generic
Keras 3 -> tf_keras translation), :func:`ssrnet_tf.export.qat.
quantize_aware_model` (for a backbone age model after
:func:`ssrnet_tf.export.qat_backbone.quantize_aware_backbone_model`'s check),
range calibration, fine-tuning (:func:`ssrnet_tf.export.qat.qat_finetune`)
and :func:`ssrnet_tf.export.qat.export_qat_tflite`. ``ssrnet-tf export
--quantize qat`` and the ``export/qat_*.py`` scripts call
:func:`qat_to_tflite` and :func:`qat_experiment`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional, Union

import numpy as np

from ssrnet_tf.export import qat, qat_backbone, tf_keras_twin
from ssrnet_tf.metrics import age_metrics

PathLike = Union[str, os.PathLike]

#: The one output of a QAT export.
AGE_DESCRIPTION = "age in years, float32 (N, 1)"


def quantize_aware(keras3_model, representative_images: Optional[np.ndarray] = None, *, twin=None):
    """The calibrated QAT ``tf_keras`` model of any ssrnet_tf age model.

    Args:
        keras3_model: SSR-Net or a backbone age model (Keras 3).
        representative_images: float32 raw 0-255 BGR faces that set the
            quantization ranges.
        twin: Its :func:`ssrnet_tf.export.tf_keras_twin.to_tf_keras_twin`
            if already made.

    Returns:
        The QAT model from raw pixels to ages ``(N, 1)`` (uncompiled).
    """
    if qat_backbone.is_backbone_model(keras3_model):
        return qat_backbone.quantize_aware_backbone_model(keras3_model, representative_images, twin=twin)
    twin = twin if twin is not None else tf_keras_twin.to_tf_keras_twin(keras3_model)
    return qat.quantize_aware_model(twin, representative_images)


def qat_to_tflite(
    keras3_model,
    faces: np.ndarray,
    ages: np.ndarray,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    calibration_size: int = 500,
    output_path: Optional[PathLike] = None,
    spec=None,
    twin=None,
) -> bytes:
    """Keras 3 age model -> QAT fine-tuning -> int8 ``.tflite``, in one call.

    Args:
        keras3_model: SSR-Net or a backbone age model (Keras 3, trained).
        faces: float32 raw 0-255 BGR faces for calibration and fine-tuning
            (keep evaluation faces out).
        ages: Their ages ``(N,)``.
        epochs, batch_size, learning_rate: The
            :class:`ssrnet_tf.export.qat.QATSchedule` (``epochs=0``: the
            calibrated QAT graph, not fine-tuned).
        calibration_size: Faces (the first ones) that set the initial
            quantization ranges.
        output_path: If given, the ``.tflite`` is written there.
        spec: The :class:`ssrnet_tf.model_spec.ModelSpec` to embed (its
            outputs reduced to ``"age"``); default read off the model.
        twin: Its tf_keras twin if already made.

    Returns:
        The flatbuffer bytes: float32 raw BGR input, ages ``(N, 1)``.
    """
    from ssrnet_tf.model_spec import ModelSpec  # pylint: disable=import-outside-toplevel

    schedule = qat.QATSchedule(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    qat_model = quantize_aware(keras3_model, np.asarray(faces)[:calibration_size], twin=twin)
    qat.qat_finetune(qat_model, faces, ages, schedule)
    spec = spec or ModelSpec.for_model(keras3_model, architecture=f"{keras3_model.name} (QAT int8)")
    spec = dataclasses.replace(spec, outputs={"age": AGE_DESCRIPTION})
    return qat.export_qat_tflite(qat_model, output_path, spec=spec)


def qat_experiment(
    model_source: str,
    out: PathLike,
    *,
    faces_dir: Optional[PathLike] = None,
    split: Optional[PathLike] = None,
    weights_dir: Optional[PathLike] = None,
    ptq_out: Optional[PathLike] = None,
    train_count: int = 2000,
    check_count: int = 1000,
    calibration_count: int = 300,
    epochs: int = 1,
    learning_rate: float = 1e-4,
    float_baseline: bool = False,
    report=print,
) -> Dict[str, float]:
    """QAT-exports a model and compares its MAE with float Keras (and PTQ) on held-out faces.

    The fine-tuning and calibration faces come from a run's ``split.json``
    train part and the check faces from its test part, or both from a
    UTKFace-style folder (disjoint, seeded; they may overlap the faces the
    model was trained on).

    Args:
        model_source: ``.keras`` file, published ``.h5`` file or published
            weights name (``imdb``).
        out: Destination QAT int8 ``.tflite``.
        faces_dir: UTKFace-style folder (ages first in the file names).
        split: A run's ``split.json`` (instead of ``faces_dir``).
        weights_dir: Local folder of published ``.h5`` files.
        ptq_out: Also export post-training int8 here and report it.
        train_count: Fine-tuning faces.
        check_count: Other faces for the MAE check.
        calibration_count: Faces that set the int8 ranges.
        epochs: QAT epochs.
        learning_rate: Adam learning rate.
        float_baseline: Also fine-tune the float twin the same way (BN
            frozen, no fake quantization) and report its MAE.
        report: Called with each line of the report.

    Returns:
        The MAEs by name (``float``, ``qat``, optionally ``ptq``,
        ``float_finetuned``) and ``fully_delegated`` (1.0 or 0.0).

    Raises:
        ValueError: Unless exactly one of ``faces_dir`` and ``split`` is
            given, or with too few faces.
    """
    from ssrnet_tf.faces.age_predictor import load_age_model  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.training.initial_weights import WEIGHTS_DIR_ENV  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.data import utkface  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.export import TFLiteModel, convert_to_tflite  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.model_spec import ModelSpec  # pylint: disable=import-outside-toplevel

    if (faces_dir is None) == (split is None):
        raise ValueError("give exactly one of faces_dir and split.")
    loaded = load_age_model(model_source, weights_dir=weights_dir or os.environ.get(WEIGHTS_DIR_ENV))
    model, spec = loaded.require_keras("fine-tune it with QAT"), loaded.spec
    spec = spec or ModelSpec.for_model(model)
    size = int(model.input_shape[1])
    if split is not None:
        train_faces, train_ages = _split_faces(split, "train", train_count, size)
        check_faces, check_ages = _split_faces(split, "test", check_count, size)
    else:
        faces, ages, _ = utkface.load_utkface_arrays(faces_dir, limit=train_count + check_count, size=size, seed=0)
        if len(faces) <= train_count:
            raise ValueError(f"{faces_dir} has {len(faces)} readable labelled faces; none left for the check.")
        train_faces, train_ages, check_faces, check_ages = (
            faces[:train_count], ages[:train_count], faces[train_count:], ages[train_count:])

    float_ages = model.predict(check_faces, verbose=0, batch_size=250)["age"]
    results = {"float": age_metrics.mean_absolute_error(check_ages, float_ages)}
    report(f"MAE on {len(check_ages)} check faces: float Keras {results['float']:.3f}")
    twin = tf_keras_twin.to_tf_keras_twin(model)
    difference = max(tf_keras_twin.max_twin_difference(model, twin, check_faces[:256]).values())
    report(f"tf_keras twin: max |Keras 3 - twin| {difference:.2e} on {min(256, len(check_faces))} check faces")
    if ptq_out:
        flatbuffer = convert_to_tflite(model, ptq_out, quantize="int8",
                                       representative_images=train_faces[:calibration_count], spec=spec)
        runner = TFLiteModel(flatbuffer, num_threads=1)
        results["ptq"] = age_metrics.mean_absolute_error(check_ages, runner.predict_outputs(check_faces)["age"])
        report(f"PTQ int8 .tflite {results['ptq']:.3f}: {ptq_out}, {len(flatbuffer) / 1024:.1f} KiB, "
               f"XNNPACK {runner.delegation().summary()}")
    flatbuffer = qat_to_tflite(model, train_faces, train_ages, epochs=epochs, learning_rate=learning_rate,
                               calibration_size=calibration_count, output_path=out, spec=spec, twin=twin)
    runner = TFLiteModel(flatbuffer, num_threads=1)
    results["qat"] = age_metrics.mean_absolute_error(check_ages, runner.predict(check_faces))
    results["fully_delegated"] = float(runner.delegation().fully_delegated)
    report(f"QAT ({epochs} epoch(s) on {len(train_ages)} faces): int8 .tflite {results['qat']:.3f}: {out}, "
           f"{len(flatbuffer) / 1024:.1f} KiB, XNNPACK {runner.delegation().summary()}")
    if float_baseline:
        # The same fine-tuning without fake quantization (BN frozen too):
        # what the extra epochs alone give a float model.
        float_model = qat.age_model(tf_keras_twin.to_tf_keras_twin(model))
        for layer in float_model.layers:
            if isinstance(layer, qat.tf_keras.layers.BatchNormalization):
                layer.trainable = False
        qat.qat_finetune(float_model, train_faces, train_ages, epochs=epochs, learning_rate=learning_rate)
        finetuned_ages = float_model.predict(check_faces, verbose=0, batch_size=250)
        results["float_finetuned"] = age_metrics.mean_absolute_error(check_ages, finetuned_ages)
        report(f"float fine-tuned the same way: Keras {results['float_finetuned']:.3f}")
    return results


def _split_faces(split_path: PathLike, part: str, count: int, size: int, seed: int = 0):
    """Up to ``count`` faces of one part of a ``split.json`` (seeded sample), with ages from the file names."""
    from ssrnet_tf.data import images, splits, utkface  # pylint: disable=import-outside-toplevel

    paths = splits.Split.load(split_path).parts[part]
    chosen = np.random.default_rng(seed).permutation(len(paths))[:count]
    faces = np.stack([images.read_bgr(paths[i], size=size) for i in chosen]).astype(np.float32)
    ages = np.array([utkface.parse_utkface_filename(paths[i])[0] for i in chosen], dtype=np.float32)
    return faces, ages
