"""SSR-Net as a Keras functional model."""

from __future__ import annotations

import dataclasses
from typing import Optional

import keras

from ssrnet_tf.layers import SoftStagewiseRegression
from ssrnet_tf.models import ssrnet_config
from ssrnet_tf.models.ssrnet_fusion import fusion_block

#: (activation, pooling) of the two heterogeneous streams.
_STREAMS = (
    ("stream1", "relu", keras.layers.AveragePooling2D),
    ("stream2", "tanh", keras.layers.MaxPooling2D),
)


def _stream(inputs, *, name: str, filters: int, activation: str, pooling):
    """One SSR-Net stream: 4 x (conv 3x3 -> BN -> act), pooling after 1-3.

    Returns:
        List of the 4 tapped feature maps: the pooled output of blocks 1-3
        and the activation of block 4 (which has no pooling).
    """
    taps = []
    x = inputs
    for block in range(1, ssrnet_config.NUM_BLOCKS + 1):
        prefix = f"{name}_block{block}"
        x = keras.layers.Conv2D(filters, 3, name=f"{prefix}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
        x = keras.layers.Activation(activation, name=f"{prefix}_act")(x)
        if block < ssrnet_config.NUM_BLOCKS:
            x = pooling(2, name=f"{prefix}_pool")(x)
        taps.append(x)
    return taps


def build_ssrnet(
    config: Optional[ssrnet_config.SSRNetConfig] = None, **overrides
) -> keras.Model:
    """Builds SSR-Net (Yang et al., IJCAI 2018) as a functional model.

    Two heterogeneous streams (conv 3x3 -> BN -> ReLU -> average pooling, and
    conv 3x3 -> BN -> tanh -> max pooling) feed one fusion block per stage;
    stage ``k`` taps both streams at block ``stage_levels[k]``. The stage
    outputs are combined by :class:`ssrnet_tf.layers.SoftStagewiseRegression`
    (eq. 7). The model takes raw 0-255 pixels in the channel order it was
    trained on (BGR for the published weights) and returns ages ``(N, 1)``.

    Args:
        config: The hyper-parameters; defaults to the reference
            SSR-Net(3,3,3) with 40,915 parameters.
        **overrides: Fields of :class:`SSRNetConfig` that replace those of
            ``config``, e.g. ``stage_bins=(4, 2)``.

    Returns:
        An uncompiled ``keras.Model`` named ``"ssrnet"``.

    Raises:
        ValueError: For a bad configuration, naming the argument.

    Example:
        >>> model = build_ssrnet(stage_bins=(3, 3, 3))
        >>> model.count_params()
        40915
    """
    config = config or ssrnet_config.SSRNetConfig()
    if overrides:
        config = dataclasses.replace(config, **overrides)
    height, width, _ = config.input_shape
    spatial = [
        min(h, w)
        for h, w in zip(
            ssrnet_config.stream_spatial_sizes(height),
            ssrnet_config.stream_spatial_sizes(width),
        )
    ]

    # === Streams ===
    inputs = keras.Input(shape=config.input_shape, name="image")
    stream_taps = [
        _stream(inputs, name=name, filters=filters, activation=act, pooling=pool)
        for (name, act, pool), filters in zip(_STREAMS, config.stream_widths)
    ]

    # === Fusion blocks ===
    probabilities, scales, shifts = [], [], []
    for stage, (bins, level) in enumerate(
        zip(config.stage_bins, config.resolved_stage_levels), start=1
    ):
        # Reduce the tapped map to a small grid, as the reference does
        # (14 -> 3 with pool 4 at block 2, 31 -> 3 with pool 8 at block 1).
        pool_size = min(2 ** (ssrnet_config.NUM_BLOCKS - level), spatial[level - 1])
        p, delta, eta = fusion_block(
            stream_taps[0][level - 1],
            stream_taps[1][level - 1],
            stage=stage,
            bins=bins,
            pool_size=pool_size,
            filters=config.fusion_filters,
            dropout=config.dropout,
            stage_activation=config.stage_activation,
        )
        probabilities.append(p)
        scales.append(delta)
        shifts.append(eta)

    # === Soft stagewise regression ===
    age = SoftStagewiseRegression(
        stage_bins=config.stage_bins,
        lambda_local=config.lambda_local,
        lambda_d=config.lambda_d,
        age_range=config.age_range,
        min_scale=config.min_scale,
        dtype="float32",  # eq. 7 stays float32 under mixed precision
        name="age",
    )(probabilities + scales + shifts)
    return keras.Model(inputs, age, name="ssrnet")
