"""Export of ssrnet_tf models for phones (TFLite / LiteRT)."""

from ssrnet_tf.export.tflite import TFLiteModel, convert_to_tflite

__all__ = ["TFLiteModel", "convert_to_tflite"]
