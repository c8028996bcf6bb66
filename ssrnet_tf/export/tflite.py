"""TFLite (LiteRT) conversion and inference."""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
from typing import Optional, Union

import numpy as np

from ssrnet_tf.utils.atomic import atomic_write_bytes


def convert_to_tflite(
    model, output_path: Optional[Union[str, os.PathLike]] = None
) -> bytes:
    """Converts a Keras model to a float32 ``.tflite`` flatbuffer.

    Args:
        model: A built ``keras.Model`` (inference behaviour is exported:
            dropout off, batch norm in inference mode).
        output_path: If given, the flatbuffer is also written there
            atomically.

    Returns:
        The flatbuffer bytes.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    # The converter exports a temporary SavedModel and prints its whole
    # signature to stdout; keep the user's terminal for our own report.
    with contextlib.redirect_stdout(io.StringIO()):
        flatbuffer = converter.convert()
    if output_path is not None:
        atomic_write_bytes(output_path, flatbuffer)
    return flatbuffer


def _interpreter_class():
    """The LiteRT interpreter, else TensorFlow's bundled one."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel
    except ImportError:
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        Interpreter = tf.lite.Interpreter  # pylint: disable=invalid-name
    return Interpreter


class TFLiteModel:
    """Runs a single-input, single-output ``.tflite`` model on NumPy batches.

    Args:
        model: Path of a ``.tflite`` file, or its bytes.
        num_threads: CPU threads for the interpreter (``None``: its default).

    Example:
        >>> runner = TFLiteModel("ssrnet.tflite")
        >>> ages = runner.predict(images_bgr)  # (N, 1)
    """

    def __init__(self, model: Union[bytes, str, os.PathLike], num_threads: Optional[int] = None):
        interpreter_class = _interpreter_class()
        if isinstance(model, (bytes, bytearray)):
            self._interpreter = interpreter_class(
                model_content=bytes(model), num_threads=num_threads
            )
        else:
            path = pathlib.Path(model)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: .tflite file not found.")
            try:
                self._interpreter = interpreter_class(
                    model_path=str(path), num_threads=num_threads
                )
            except ValueError as error:
                raise ValueError(f"{path}: not a valid .tflite model ({error}).") from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = None

    @property
    def output_names(self):
        """Output names of the model's serving signature (``["age", ...]``)."""
        signatures = self._interpreter.get_signature_list()
        if not signatures:
            return ["output_0"]
        return list(next(iter(signatures.values()))["outputs"])

    def predict_outputs(self, batch: np.ndarray) -> dict:
        """Runs the model and returns every output by name.

        Uses the serving signature, so a Keras model with dict outputs
        (``{"age": ..., "gender": ...}``) keeps its output names; a
        single-output model's output is returned as ``"age"``.

        Args:
            batch: Input batch, as for :meth:`predict`.

        Returns:
            ``{output_name: array}``.
        """
        names = self.output_names
        if len(names) == 1:
            return {"age" if names[0] == "output_0" else names[0]: self.predict(batch)}
        signatures = self._interpreter.get_signature_list()
        key = next(iter(signatures))
        runner = self._interpreter.get_signature_runner(key)
        input_name = signatures[key]["inputs"][0]
        batch = np.asarray(batch).astype(self._input["dtype"])
        self._batch = None  # the signature runner may resize the tensors
        return {name: np.array(value) for name, value in runner(**{input_name: batch}).items()}

    @property
    def input_shape(self):
        """Input shape with ``-1`` for a dynamic batch."""
        return tuple(int(d) for d in self._input["shape_signature"])

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Runs the model on ``batch`` (resizing the batch dimension if needed).

        Args:
            batch: Array matching the model's input shape after the batch
                dimension; cast to the model's input dtype.

        Returns:
            The model's output for the batch.

        Raises:
            ValueError: If ``batch`` has the wrong per-example shape.
        """
        batch = np.asarray(batch)
        expected = self.input_shape[1:]
        if tuple(batch.shape[1:]) != expected:
            raise ValueError(
                f"input batch has per-example shape {tuple(batch.shape[1:])}, "
                f"the model expects {expected}."
            )
        if batch.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input["index"], list(batch.shape))
            self._interpreter.allocate_tensors()
            self._batch = batch.shape[0]
        self._interpreter.set_tensor(self._input["index"], batch.astype(self._input["dtype"]))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output["index"]).copy()
