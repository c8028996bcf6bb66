"""Export of ssrnet_tf models for phones (TFLite / LiteRT)."""

from ssrnet_tf.export.tflite import QUANTIZE_MODES, TFLiteModel, convert_to_tflite

__all__ = ["QUANTIZE_MODES", "TFLiteModel", "convert_to_tflite"]
