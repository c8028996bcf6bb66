"""SSR-Net as a Keras functional model: the two-stream backbone and the SSR-Net head."""

from __future__ import annotations

import dataclasses
from typing import Optional

import keras

from ssrnet_tf.models import ssrnet_config
from ssrnet_tf.models.age_model import AgeTask
from ssrnet_tf.models.ssrnet_backbone import build_ssrnet_backbone


def build_ssrnet_task(
    config: Optional[ssrnet_config.SSRNetConfig] = None, *, loss: str = "mae", **overrides
) -> AgeTask:
    """Builds SSR-Net (Yang et al., IJCAI 2018) with its head, as a task.

    The backbone (:func:`ssrnet_tf.models.build_ssrnet_backbone`) holds the
    two heterogeneous streams (conv 3x3 -> BN -> ReLU -> average pooling, and
    conv 3x3 -> BN -> tanh -> max pooling) and exposes the map of every
    block; the head (:class:`ssrnet_tf.heads.SSRNetHead`) puts one fusion
    block per stage on the maps of block ``stage_levels[k]`` and combines
    the stage outputs by soft stagewise regression (eq. 7). The model is
    flat (no nested model) and, like every ssrnet_tf age model, returns a
    dict ``{"age": (N, 1)}``. It takes raw 0-255 pixels in the channel order
    it was trained on (BGR for the published weights).

    Args:
        config: The hyper-parameters; defaults to the reference
            SSR-Net(3,3,3) with 40,915 parameters.
        loss: The head's loss on ``"age"``: ``"mae"`` (the paper's L1) or
            ``"mse"``.
        **overrides: Fields of :class:`SSRNetConfig` that replace those of
            ``config``, e.g. ``stage_bins=(4, 2)``.

    Returns:
        An :class:`ssrnet_tf.models.age_model.AgeTask` with the uncompiled
        model named ``"ssrnet"`` and its one head.

    Raises:
        ValueError: For a bad configuration, naming the argument.
    """
    from ssrnet_tf.heads.ssrnet_head import SSRNetHead  # pylint: disable=import-outside-toplevel  # heads import models

    config = config or ssrnet_config.SSRNetConfig()
    if overrides:
        config = dataclasses.replace(config, **overrides)
    head = SSRNetHead.from_ssrnet_config(config, loss=loss)

    # === Functional Model ===
    backbone = build_ssrnet_backbone(config.input_shape, config.stream_widths)
    outputs = head.build_outputs(backbone.output)
    return AgeTask(model=keras.Model(backbone.input, outputs, name="ssrnet"), heads=[head])


def build_ssrnet(config: Optional[ssrnet_config.SSRNetConfig] = None, **overrides) -> keras.Model:
    """Builds the SSR-Net model of :func:`build_ssrnet_task`.

    Args:
        config: The hyper-parameters; defaults to the reference
            SSR-Net(3,3,3) with 40,915 parameters.
        **overrides: Fields of :class:`SSRNetConfig` that replace those of
            ``config``.

    Returns:
        An uncompiled ``keras.Model`` named ``"ssrnet"`` from raw pixels to
        ``{"age": (N, 1)}``.

    Example:
        >>> model = build_ssrnet(stage_bins=(3, 3, 3))
        >>> model.count_params()
        40915
    """
    return build_ssrnet_task(config, **overrides).model


def _tapped_level(model, layer_name: str) -> int:
    """Stream block (1-4) whose output feeds ``layer_name``."""
    producer = model.get_layer(layer_name).input._keras_history[0].name  # pylint: disable=protected-access
    for level in range(1, ssrnet_config.NUM_BLOCKS + 1):
        if producer.startswith(f"stream1_block{level}_"):
            return level
    raise ValueError(f"'{layer_name}' is fed by '{producer}', not by a stream block; is this an SSR-Net?")


def infer_ssrnet_config(model) -> ssrnet_config.SSRNetConfig:
    """Reads the :class:`SSRNetConfig` of an SSR-Net off its layers.

    Args:
        model: A model from :func:`build_ssrnet`, loaded from a ``.keras``
            file saved from one (also the single-output format of ssrnet_tf
            before dict outputs).

    Returns:
        The config that rebuilds the same architecture.

    Raises:
        ValueError: If the model lacks SSR-Net's layer names.
    """
    try:
        age = model.get_layer("age").get_config()
        num_stages = len(age["stage_bins"])
        return ssrnet_config.SSRNetConfig(
            input_shape=tuple(model.input_shape[1:]),
            stage_bins=tuple(age["stage_bins"]),
            lambda_local=age["lambda_local"],
            lambda_d=age["lambda_d"],
            age_range=age["age_range"],
            min_scale=age["min_scale"],
            stream_widths=tuple(model.get_layer(f"{s}_block1_conv").filters for s in ("stream1", "stream2")),
            fusion_filters=model.get_layer("stage1_stream1_conv").filters,
            dropout=model.get_layer("stage1_stream1_dropout").rate,
            stage_activation=model.get_layer("stage1_probabilities").get_config()["activation"],
            stage_levels=tuple(_tapped_level(model, f"stage{k}_stream1_conv") for k in range(1, num_stages + 1)),
        )
    except (KeyError, ValueError) as error:
        raise ValueError(f"cannot read an SSR-Net config off '{model.name}': {error}") from None


def rebuild_ssrnet(model, config: Optional[ssrnet_config.SSRNetConfig] = None) -> keras.Model:
    """A new :func:`build_ssrnet` model with the weights of ``model``, by layer name.

    Upgrades a single-output SSR-Net saved before dict outputs, or checks a
    model against the config it is said to have.

    Args:
        model: An SSR-Net (either output format).
        config: The config to build; default read off ``model``
            (:func:`infer_ssrnet_config`).

    Returns:
        The new model, returning ``{"age": (N, 1)}``.

    Raises:
        ValueError: If eq. 7's settings or a weight shape differ from
            ``config`` (naming the layer), or ``model`` is no SSR-Net.
    """
    from ssrnet_tf.models.weight_transfer import transfer_weights  # pylint: disable=import-outside-toplevel

    inferred = infer_ssrnet_config(model)
    config = config or inferred
    if tuple(inferred.input_shape) != tuple(config.input_shape):
        raise ValueError(f"'{model.name}' takes {inferred.input_shape} inputs, the config {config.input_shape}; "
                         "pass the config the model was built with.")
    fields = ("stage_bins", "lambda_local", "lambda_d", "age_range", "min_scale")
    differing = {key: (getattr(inferred, key), getattr(config, key)) for key in fields
                 if getattr(inferred, key) != getattr(config, key)}
    if differing:
        raise ValueError(f"the model's eq. 7 settings differ from the config (model, config): {differing}; "
                         "pass the config the model was built with.")
    rebuilt = build_ssrnet(config)
    transfer_weights(model, rebuilt)
    return rebuilt


def upgrade_single_output(model):
    """``model``, or its dict-output rebuild if it is a single-output SSR-Net.

    ``.keras`` files saved by ssrnet_tf before every model returned a dict
    hold an SSR-Net whose output is the bare ``(N, 1)`` age tensor; the
    rebuild (:func:`rebuild_ssrnet`) returns ``{"age": ...}`` with the same
    weights and ages. Other models are returned as they are.
    """
    from ssrnet_tf.layers.soft_stagewise_regression import SoftStagewiseRegression  # pylint: disable=import-outside-toplevel

    if keras.tree.is_nested(model.output):
        return model
    if not any(isinstance(layer, SoftStagewiseRegression) and layer.name == "age" for layer in model.layers):
        return model
    return rebuild_ssrnet(model)
