"""Per-channel pixel normalisation inside the model (no Lambda)."""

from __future__ import annotations

import keras
from keras import ops

from ssrnet_tf.layers import registration


@registration.register
class PixelNormalization(keras.layers.Layer):
    """Maps raw 0-255 pixels to what a backbone expects, inside the graph.

    Computes ``y = x[..., order] * scale + offset`` per channel, where
    ``order`` optionally reverses the channels (BGR <-> RGB). This is how
    every ssrnet_tf model takes raw 0-255 **BGR** pixels (OpenCV's order)
    while each Keras Applications backbone gets its own preprocessing:

    * ``"tf"`` (MobileNet, MobileNetV2): RGB, ``x / 127.5 - 1``;
    * ``"caffe"`` (ResNet50, VGG16): BGR, minus the ImageNet BGR mean;
    * ``"torch"`` (DenseNet): RGB, ``(x / 255 - mean) / std``;
    * ``"rgb"`` (MobileNetV3, EfficientNet, EfficientNetV2, which normalise
      internally): RGB 0-255, channels reversed only.

    Reversal is a slice-and-concatenate and the affine part a broadcast
    multiply-add, all TFLite builtins.

    Args:
        scale: Per-channel (or scalar) multiplier.
        offset: Per-channel (or scalar) offset added after scaling.
        reverse_channels: Whether to reverse the channel axis first.
        **kwargs: Standard layer arguments.
    """

    def __init__(self, scale=1.0, offset=0.0, reverse_channels=False, **kwargs):
        super().__init__(**kwargs)
        self.scale = [float(v) for v in scale] if isinstance(scale, (list, tuple)) else float(scale)
        self.offset = [float(v) for v in offset] if isinstance(offset, (list, tuple)) else float(offset)
        self.reverse_channels = bool(reverse_channels)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.reverse_channels:
            channels = ops.shape(x)[-1]
            if channels != 3:
                raise ValueError(f"reverse_channels needs 3 channels, got {channels}.")
            x = ops.concatenate([x[..., 2:3], x[..., 1:2], x[..., 0:1]], axis=-1)
        scale = ops.convert_to_tensor(self.scale, dtype=x.dtype)
        offset = ops.convert_to_tensor(self.offset, dtype=x.dtype)
        return x * scale + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {"scale": self.scale, "offset": self.offset, "reverse_channels": self.reverse_channels}
        )
        return config


#: ImageNet statistics used by Keras Applications' ``preprocess_input``.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
_TORCH_STD_RGB = (0.229, 0.224, 0.225)


def pixel_normalization_for(mode: str, name: str = "preprocessing") -> PixelNormalization:
    """The :class:`PixelNormalization` for BGR 0-255 input and a given mode.

    Args:
        mode: ``"tf"``, ``"caffe"``, ``"torch"``, ``"rgb"`` or ``"bgr"``
            (identity).
        name: Layer name.

    Returns:
        The layer.

    Raises:
        ValueError: For an unknown mode.
    """
    if mode == "tf":
        return PixelNormalization(1.0 / 127.5, -1.0, reverse_channels=True, name=name)
    if mode == "caffe":
        return PixelNormalization(1.0, [-m for m in _CAFFE_MEAN_BGR], name=name)
    if mode == "torch":
        scale = [1.0 / (255.0 * s) for s in _TORCH_STD_RGB]
        offset = [-m / s for m, s in zip(_TORCH_MEAN_RGB, _TORCH_STD_RGB)]
        return PixelNormalization(scale, offset, reverse_channels=True, name=name)
    if mode == "rgb":
        return PixelNormalization(reverse_channels=True, name=name)
    if mode == "bgr":
        return PixelNormalization(name=name)
    raise ValueError(
        f"unknown preprocessing mode {mode!r}; valid: 'tf', 'caffe', 'torch', 'rgb', 'bgr'."
    )
