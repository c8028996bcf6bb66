"""The SSR-Net backbone: two heterogeneous streams exposing their tapped maps."""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import keras

from ssrnet_tf.models import ssrnet_config

#: (name, activation, pooling) of the two heterogeneous streams.
STREAMS = (
    ("stream1", "relu", keras.layers.AveragePooling2D),
    ("stream2", "tanh", keras.layers.MaxPooling2D),
)


def feature_map_name(stream: int, block: int) -> str:
    """Key of a tapped feature map: ``"stream<stream>_block<block>"`` (1-based)."""
    return f"stream{stream}_block{block}"


def _stream(inputs, *, name: str, filters: int, activation: str, pooling) -> list:
    """One stream: 4 x (conv 3x3 -> BN -> activation), pooling after blocks 1-3.

    Returns:
        The 4 tapped feature maps: the pooled output of blocks 1-3 and the
        activation of block 4 (which has no pooling).
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


def build_ssrnet_backbone(
    input_shape: Tuple[int, int, int] = (64, 64, 3), stream_widths: Sequence[int] = (32, 16)
) -> keras.Model:
    """Builds the two streams of SSR-Net as a backbone with dict outputs.

    Stream 1 is 4 x (conv 3x3 -> BN -> ReLU) with 2x2 average pooling after
    blocks 1-3; stream 2 the same with tanh and max pooling: the two
    heterogeneous streams of SSR-Net, section 3.4 and figure 3. Every
    block's map is an output, keyed by :func:`feature_map_name`, so that a
    head (:class:`ssrnet_tf.heads.SSRNetHead`) taps the levels it needs.
    A model built on ``backbone.input`` and ``backbone.output`` is flat (no
    nested model), which keeps layer names, weight loading and the QAT
    translation simple.

    Args:
        input_shape: ``(height, width, channels)`` of the raw 0-255 pixels.
        stream_widths: Filters of stream 1 and of stream 2.

    Returns:
        A ``keras.Model`` named ``"ssrnet_backbone"`` from ``"image"`` to
        ``{"stream<s>_block<b>": (batch, h_b, w_b, width_s)}`` (8 maps).

    Example:
        >>> backbone = build_ssrnet_backbone()
        >>> backbone.output["stream1_block2"].shape
        (None, 14, 14, 32)

    Reference:
        Yang et al., "SSR-Net: A Compact Soft Stagewise Regression Network
        for Age Estimation", IJCAI 2018.
    """
    # === Layers and Functional Model ===
    image = keras.Input(shape=tuple(input_shape), name="image")
    feature_maps: Dict[str, keras.KerasTensor] = {}
    for stream, ((name, activation, pooling), filters) in enumerate(zip(STREAMS, stream_widths), start=1):
        taps = _stream(image, name=name, filters=filters, activation=activation, pooling=pooling)
        for block, tap in enumerate(taps, start=1):
            feature_maps[feature_map_name(stream, block)] = tap
    return keras.Model(image, feature_maps, name="ssrnet_backbone")
