"""TFLite (LiteRT) conversion and inference."""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import re
from typing import List, Optional, Union

import numpy as np

from ssrnet_tf.errors import ModelLoadError
from ssrnet_tf.utils import quiet
from ssrnet_tf.utils.atomic import atomic_write_bytes


#: Export modes of :func:`convert_to_tflite`.
QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
#: Input types of an int8 export.
INT8_INPUT_TYPES = ("float32", "int8", "uint8")


def _silent_convert(converter) -> bytes:
    # The converter exports a temporary SavedModel and prints its whole
    # signature to stdout; keep the user's terminal for our own report.
    with contextlib.redirect_stdout(io.StringIO()), quiet.library_warnings_ignored():
        return converter.convert()


def _representative_dataset(images: np.ndarray):
    def generator():
        for index in range(len(images)):
            yield [images[index : index + 1].astype(np.float32)]

    return generator


def _op_output_names(flatbuffer: bytes) -> List[str]:
    from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=import-outside-toplevel

    subgraph = schema.Model.GetRootAsModel(flatbuffer, 0).Subgraphs(0)
    names = []
    for i in range(subgraph.OperatorsLength()):
        operator = subgraph.Operators(i)
        names.extend(subgraph.Tensors(operator.Outputs(j)).Name().decode() for j in range(operator.OutputsLength()))
    outputs = {subgraph.Tensors(subgraph.Outputs(j)).Name().decode() for j in range(subgraph.OutputsLength())}
    return names, outputs


def _float_head_nodes(float_flatbuffer: bytes, layer_names: List[str]) -> List[str]:
    """TFLite op outputs produced by the given Keras layers (or model outputs)."""
    names, outputs = _op_output_names(float_flatbuffer)
    if not layer_names:
        return []
    pattern = re.compile("/(" + "|".join(re.escape(n) for n in layer_names) + r")(_\d+)?/")
    return [name for name in names if pattern.search(name) or name in outputs]


def _set_int8_input(flatbuffer: bytes, input_type: str) -> bytes:
    """Makes the float input of an int8 model take int8 or uint8 pixels.

    ``uint8``: the input tensor becomes uint8 with scale 1 and zero point 0,
    i.e. raw camera bytes, and the leading QUANTIZE op requantizes to int8.
    ``int8``: the leading QUANTIZE op is removed and its int8 output becomes
    the model input (raw pixel - 128 for a 0-255 calibrated input).
    """
    from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.export import flatbuffer as flatbuffer_lib  # pylint: disable=import-outside-toplevel

    model = flatbuffer_lib.read_model(flatbuffer)
    subgraph = model.subgraphs[0]
    input_index = subgraph.inputs[0]
    quantize_codes = flatbuffer_lib.builtin_op_indices(model, "QUANTIZE")
    quantize = [
        (i, op) for i, op in enumerate(subgraph.operators)
        if op.opcodeIndex in quantize_codes and op.inputs[0] == input_index
    ]
    if not quantize:
        raise ValueError("the int8 model has no QUANTIZE op on its input; cannot change the input type.")
    position, operator = quantize[0]
    quantized = subgraph.tensors[operator.outputs[0]]
    if input_type == "int8":
        new_input = int(operator.outputs[0])
        subgraph.inputs = [new_input] + [int(i) for i in subgraph.inputs[1:]]
        subgraph.operators = [op for i, op in enumerate(subgraph.operators) if i != position]
        quantized.name = subgraph.tensors[input_index].name
        quantized.shapeSignature = subgraph.tensors[input_index].shapeSignature
        for signature in model.signatureDefs or []:
            for tensor_map in signature.inputs:
                if tensor_map.tensorIndex == input_index:
                    tensor_map.tensorIndex = new_input
    else:
        tensor = subgraph.tensors[input_index]
        tensor.type = schema.TensorType.UINT8
        params = schema.QuantizationParametersT()
        params.scale, params.zeroPoint = [1.0], [0]
        tensor.quantization = params
    return flatbuffer_lib.write_model(model, len(flatbuffer))


def convert_to_tflite(
    model,
    output_path: Optional[Union[str, os.PathLike]] = None,
    *,
    quantize: str = "none",
    representative_images: Optional[np.ndarray] = None,
    int8_input_type: str = "float32",
    spec=None,
    strip_names: bool = True,
    int8_head_weights: bool = False,
    dynamic_hybrid_ops: bool = False,
) -> bytes:
    """Converts a Keras model to a ``.tflite`` flatbuffer.

    Modes (``quantize``):

    * ``"none"``: float32 weights and activations.
    * ``"float16"``: float16 weights, float32 compute (half the size).
    * ``"dynamic"``: int8 weights, float32 compute ("weight-only"): the
      filters of more than 1,024 weights are stored as per-channel int8 and
      dequantized once when the model is loaded
      (:func:`ssrnet_tf.export.flatbuffer.int8_weight_only`), so every
      runtime computes the same ages. XNNPACK takes the whole graph and
      runs it as fast as float32 (measured: compact backbone model ~0.6 ms,
      SSR-Net 0.41 ms, one thread); for int8 speed choose ``"int8"``.
    * ``"int8"``: full-integer post-training quantization of the
      convolutional feature extractor, calibrated on
      ``representative_images``; the head (dense, multiply and ssrnet_tf
      output layers) stays float32, see
      :mod:`ssrnet_tf.export.int8_friendly`. SSR-Net's average pools become
      equivalent depthwise convolutions so that XNNPACK takes every node.
      A model that scales its pixels (MobileNet's ``x / 127.5 - 1``) is
      exported with ``x / 128 - 1``, the difference folded into its first
      convolution, which int8 represents without rounding
      (:func:`ssrnet_tf.export.int8_friendly.exact_int8_input_scaling`,
      :func:`ssrnet_tf.export.flatbuffer.exact_input_scaling`).

    Args:
        model: A built ``keras.Model`` (inference behaviour is exported).
        output_path: If given, the flatbuffer is also written there
            atomically.
        quantize: One of :data:`QUANTIZE_MODES`.
        representative_images: float32 ``(N, H, W, 3)`` raw 0-255 BGR faces
            for int8 calibration (a few hundred real, aligned faces).
        int8_input_type: ``"float32"`` (default), ``"int8"`` or ``"uint8"``
            (raw camera bytes) input for ``quantize="int8"``.
        spec: Optional :class:`ssrnet_tf.model_spec.ModelSpec` embedded as
            metadata.
        strip_names: Whether to compact the file losslessly (drop internal
            tensor names, empty buffers and repeated vectors;
            :func:`ssrnet_tf.export.flatbuffer.compact_flatbuffer`).
        int8_head_weights: Opt-in, **needs TFLite/LiteRT 2.17 or newer**.
            For ``quantize="int8"``: store the float head's dense weights as
            per-unit int8 (hybrid ops, float activations;
            :func:`ssrnet_tf.export.flatbuffer.int8_fully_connected_weights`).
            Saves 7.8 KB of SSR-Net's 69 KB. Older runtimes (TFLite 2.14)
            refuse such a file at load time; without it every export runs
            on TFLite 2.14 (:mod:`ssrnet_tf.export.compatibility`).
        dynamic_hybrid_ops: Opt-in, **needs TFLite/LiteRT 2.17 or newer**
            for a model with a dense kernel of more than 1,024 weights (a
            backbone head's, not SSR-Net's). For ``quantize="dynamic"``: the
            converter's own dynamic-range file, whose "hybrid" ops also
            quantize activations to int8 at run time. Faster where XNNPACK
            takes every op (SSR-Net: 0.25 ms against 0.41 ms weight-only,
            one thread; the compact backbone model, whose hybrid depthwise
            convolutions XNNPACK leaves to the reference kernels: 0.77 ms
            against ~0.6), but the ages depend on the kernels: 0.58 years
            between LiteRT's own XNNPACK and reference kernels on the
            compact backbone. Its dense kernels have one scale per output
            unit (``FULLY_CONNECTED`` version 12), which TFLite 2.14 refuses.

    Returns:
        The flatbuffer bytes.

    Raises:
        ValueError: For an unknown mode, or int8 without calibration images.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.export import flatbuffer as flatbuffer_lib  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.export import int8_friendly  # pylint: disable=import-outside-toplevel

    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}.")
    if int8_input_type not in INT8_INPUT_TYPES:
        raise ValueError(f"int8_input_type must be one of {INT8_INPUT_TYPES}, got {int8_input_type!r}.")
    if int8_input_type != "float32" and quantize != "int8":
        raise ValueError("int8_input_type applies to quantize='int8' only.")
    if int8_head_weights and quantize != "int8":
        raise ValueError("int8_head_weights applies to quantize='int8' only.")
    if dynamic_hybrid_ops and quantize != "dynamic":
        raise ValueError("dynamic_hybrid_ops applies to quantize='dynamic' only.")

    if quantize != "int8":
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if quantize == "float16" or (quantize == "dynamic" and dynamic_hybrid_ops):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        flatbuffer = _silent_convert(converter)
        if quantize == "dynamic" and not dynamic_hybrid_ops:
            flatbuffer, _ = flatbuffer_lib.int8_weight_only(flatbuffer)
    else:
        if representative_images is None or len(representative_images) == 0:
            raise ValueError("quantize='int8' needs representative_images (real aligned faces) for calibration.")
        import keras  # pylint: disable=import-outside-toplevel

        # Pixel scaling that int8 carries without rounding (x / 128 - 1), so
        # that every runtime computes the same scaled input.
        model = int8_friendly.exact_int8_input_scaling(model)
        nested = any(isinstance(layer, keras.Model) for layer in model.layers)
        if not nested:
            model = int8_friendly.average_pools_as_depthwise(model)
            model = int8_friendly.correct_quantization_bias(model, representative_images)
        float_nodes = _float_head_nodes(
            _silent_convert(tf.lite.TFLiteConverter.from_keras_model(model)),
            int8_friendly.float_head_layer_names(model),
        )
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative_dataset(np.asarray(representative_images))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_nodes)
        with contextlib.redirect_stdout(io.StringIO()), quiet.library_warnings_ignored():
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=converter.representative_dataset, debug_options=options
            )
            flatbuffer = debugger.get_nondebug_quantized_model()
        flatbuffer, _ = flatbuffer_lib.exact_input_scaling(flatbuffer)
        if int8_input_type != "float32":
            flatbuffer = _set_int8_input(flatbuffer, int8_input_type)
        flatbuffer, _ = flatbuffer_lib.narrow_tanh_input_ranges(flatbuffer)
        if int8_head_weights:
            flatbuffer, _ = flatbuffer_lib.int8_fully_connected_weights(flatbuffer)
        else:
            flatbuffer, _ = flatbuffer_lib.per_tensor_hybrid_fully_connected(flatbuffer)
    return finish_flatbuffer(flatbuffer, strip_names=strip_names, spec=spec, output_path=output_path)


def finish_flatbuffer(flatbuffer: bytes, *, strip_names: bool = True, spec=None, output_path=None) -> bytes:
    """The last steps of every export: embed the spec, compact, write.

    Args:
        flatbuffer: A converted ``.tflite`` model.
        strip_names: Whether to compact the file losslessly
            (:func:`ssrnet_tf.export.flatbuffer.compact_flatbuffer`).
        spec: Optional :class:`ssrnet_tf.model_spec.ModelSpec` to embed.
        output_path: If given, the result is written there atomically.

    Returns:
        The final flatbuffer bytes.
    """
    if spec is not None:
        from ssrnet_tf.export.flatbuffer import embed_tflite_spec  # pylint: disable=import-outside-toplevel

        flatbuffer = embed_tflite_spec(flatbuffer, spec)
    if strip_names:
        # Last: any later re-serialisation would write the shared vectors again.
        from ssrnet_tf.export.flatbuffer import compact_flatbuffer  # pylint: disable=import-outside-toplevel

        flatbuffer = compact_flatbuffer(flatbuffer)
    if output_path is not None:
        atomic_write_bytes(output_path, flatbuffer)
    return flatbuffer


def _interpreter_class():
    """The LiteRT interpreter (``ai_edge_litert``; ``tf.lite.Interpreter`` is deprecated)."""
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel

    return Interpreter


def _builtin_without_delegates():
    """The op-resolver type that switches the default XNNPACK delegate off."""
    from ai_edge_litert.interpreter import OpResolverType  # pylint: disable=import-outside-toplevel

    return OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES


class TFLiteModel:
    """Runs a single-input, single-output ``.tflite`` model on NumPy batches.

    Args:
        model: Path of a ``.tflite`` file, or its bytes.
        num_threads: CPU threads for the interpreter (``None``: its default).
        use_xnnpack: Whether the default XNNPACK delegate is applied.

    Example:
        >>> runner = TFLiteModel("ssrnet.tflite")
        >>> ages = runner.predict(images_bgr)  # (N, 1)
    """

    def __init__(
        self,
        model: Union[bytes, str, os.PathLike],
        num_threads: Optional[int] = None,
        use_xnnpack: bool = True,
    ):
        interpreter_class = _interpreter_class()
        options = {"num_threads": num_threads}
        if not use_xnnpack:
            options["experimental_op_resolver_type"] = _builtin_without_delegates()
        if isinstance(model, (bytes, bytearray)):
            self._interpreter = interpreter_class(model_content=bytes(model), **options)
        else:
            path = pathlib.Path(model)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: .tflite file not found.")
            try:
                self._interpreter = interpreter_class(model_path=str(path), **options)
            except ValueError as error:
                raise ModelLoadError(f"{path}: not a valid .tflite model ({error}).") from None
        try:
            self._interpreter.allocate_tensors()
        except RuntimeError as error:
            where = "" if isinstance(model, (bytes, bytearray)) else f"{model}: "
            raise ModelLoadError(f"{where}the TFLite runtime cannot prepare this model: {error}") from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = None

    def _to_input_type(self, batch: np.ndarray) -> np.ndarray:
        """Casts, or quantizes float pixels for an int8/uint8 input."""
        dtype = np.dtype(self._input["dtype"])
        if dtype.kind in "iu" and np.asarray(batch).dtype.kind == "f":
            scale, zero_point = self._input["quantization"]
            info = np.iinfo(dtype)
            batch = np.clip(np.round(batch / scale + zero_point), info.min, info.max)
        return np.asarray(batch).astype(dtype)

    def delegation(self):
        """XNNPACK coverage, a :class:`ssrnet_tf.export.delegation.DelegationReport`."""
        from ssrnet_tf.export.delegation import xnnpack_delegation  # pylint: disable=import-outside-toplevel

        return xnnpack_delegation(self._interpreter)

    @property
    def input_dtype(self):
        """NumPy dtype of the model input (float32, int8 or uint8)."""
        return np.dtype(self._input["dtype"])

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
        batch = self._to_input_type(np.asarray(batch))
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
        self._interpreter.set_tensor(self._input["index"], self._to_input_type(batch))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output["index"]).copy()
