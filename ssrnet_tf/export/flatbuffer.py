"""Lossless and near-lossless rewrites of a ``.tflite`` flatbuffer.

The TFLite converter writes every tensor's shape, quantization scales and
zero points as separate vectors, names every tensor after the TensorFlow ops
fused into it and gives every activation its own empty buffer. For a model
as small as SSR-Net (41 k parameters) that bookkeeping is a third of the
file. :func:`compact_flatbuffer` removes it without changing the graph:

* internal tensor names are dropped (inputs and outputs keep theirs, so
  signatures and runtimes work as before);
* tensors without constant data share buffer 0 (the schema's empty buffer);
* identical vectors (the all-zero int64 zero points of every per-channel
  quantized tensor, repeated shapes, identical constants) are written once
  and referenced by offset, which flatbuffers allows; constant data stays
  16-byte aligned, as the converter writes it.

:func:`int8_fully_connected_weights` is the one lossy rewrite: the float32
weights of ``FULLY_CONNECTED`` ops that full-integer export keeps in float
(SSR-Net's head, see :mod:`ssrnet_tf.export.int8_friendly`) become int8 with
one symmetric scale per output unit, and the op runs "hybrid" (float
activations, int8 weights), which both the reference kernels and XNNPACK's
dynamically quantized fully connected operator execute.

Every rewrite that needs more of a runtime than the converter's output says
so in the file, as the converter itself does: the operator version
(:func:`use_operator_version`; a runtime that does not register that version
refuses the file at load time, "Didn't find op for builtin opcode ... version
...") and the model's ``min_runtime_version`` metadata
(:func:`require_min_runtime`, read back by :func:`min_runtime_version`).
TensorFlow's tables ``tensorflow/compiler/mlir/lite/tools/versioning/
op_version.cc`` and ``runtime_version.cc`` define both.
"""

from __future__ import annotations

import re
from typing import Dict, Optional, Tuple

import numpy as np

from ssrnet_tf import model_spec

#: Alignment of constant tensor data, as the TFLite converter writes it.
_DATA_ALIGNMENT = 16

#: Name of the metadata entry holding the oldest runtime that runs a model.
MIN_RUNTIME_METADATA = "min_runtime_version"
#: Bytes of that entry's buffer (a NUL-padded version string, as the
#: converter writes it).
_MIN_RUNTIME_BYTES = 16

#: ``FULLY_CONNECTED`` with float input and output and int8 weights quantized
#: per output unit ("hybrid, per channel") is operator version 12, first run
#: by TFLite 2.17 (op_version.cc, runtime_version.cc). Older runtimes run the
#: same file as version 1-11 hybrid ops with *one* scale for the whole
#: matrix: TFLite 2.14 computes a wrong age without any error.
PER_CHANNEL_HYBRID_FC_VERSION = 12
PER_CHANNEL_HYBRID_FC_RUNTIME = "2.17.0"

#: The first runtime of each ``(builtin op, version)`` this project's files
#: use, from TensorFlow's ``runtime_version.cc``. A file whose every operator
#: code is listed gets its ``min_runtime_version`` recomputed by
#: :func:`declare_min_runtime`; otherwise the converter's value is only raised.
_RUNTIME_OF = {
    "ADD": ("1.5.0", "1.14.0", "2.4.0", "2.6.0"),
    "AVERAGE_POOL_2D": ("1.5.0", "1.14.0", "2.3.0"),
    "CONCATENATION": ("1.5.0", "1.14.0", "2.3.0"),
    "CONV_2D": ("1.5.0", "1.14.0", "1.14.0", "2.3.0", "2.4.0", "2.9.0"),
    "DEPTHWISE_CONV_2D": ("1.5.0", "1.12.0", "1.14.0", "2.2.0", "2.3.0", "2.3.0"),
    "DEQUANTIZE": ("1.13.1", "1.14.0", "1.15.0", "2.2.0", "2.7.0"),
    "DIV": ("1.6.0", "2.3.0"),
    "FULLY_CONNECTED": (
        "1.5.0", "1.10.0", "1.14.0", "1.14.0", "2.0.0", "2.1.0", "2.3.0", "2.3.0", "2.3.0", "2.11.0", "2.15.0", "2.17.0",
    ),
    "LOGISTIC": ("1.14.0", "1.14.0", "2.3.0"),
    "MAXIMUM": ("1.14.0", "1.14.0", "2.3.0", "2.3.0"),
    "MAX_POOL_2D": ("1.5.0", "1.14.0", "2.3.0"),
    "MEAN": ("1.6.0", "1.14.0", "2.4.0"),
    "MUL": ("1.5.0", "1.14.0", "1.15.0", "2.3.0", "2.6.0"),
    "PAD": ("1.5.0", "1.14.0", "2.4.0", "2.6.0"),
    "QUANTIZE": ("1.14.0", "1.15.0", "2.7.0"),
    "RELU": ("1.5.0", "2.1.0", "2.5.0"),
    "RELU6": ("1.5.0", "1.14.0", "2.5.0"),
    "RESHAPE": ("1.5.0",),
    "SOFTMAX": ("1.5.0", "1.14.0", "2.3.0"),
    "STRIDED_SLICE": ("1.6.0", "1.14.0", "2.1.0", "2.2.0", "2.5.0", "2.6.0"),
    "SUM": ("1.10.0", "1.15.0"),
    "TANH": ("1.14.0", "1.14.0", "2.3.0"),
}


def _schema():
    from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=import-outside-toplevel

    return schema


def read_model(flatbuffer: bytes):
    """The object-API ``ModelT`` of a flatbuffer."""
    schema = _schema()
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))


def _dedup_builder_class():
    import flatbuffers  # pylint: disable=import-outside-toplevel

    class DedupBuilder(flatbuffers.Builder):
        """A builder that writes each distinct numeric vector once."""

        def __init__(self, initial_size: int):
            super().__init__(initial_size)
            self._vectors: Dict[Tuple[str, bytes], int] = {}

        def CreateNumpyVector(self, x):  # pylint: disable=invalid-name
            x = np.ascontiguousarray(x)
            key = (x.dtype.str, x.tobytes())
            if key not in self._vectors:
                if x.dtype == np.uint8:
                    # Buffer data: keep the converter's alignment.
                    self.StartVector(1, x.size, _DATA_ALIGNMENT)
                    self.head -= x.size
                    self.Bytes[self.head : self.head + x.size] = x.tobytes()
                    self.vectorNumElems = x.size
                    self._vectors[key] = self.EndVector()
                else:
                    self._vectors[key] = super().CreateNumpyVector(x)
            return self._vectors[key]

    return DedupBuilder


def write_model(model, size_hint: int = 1 << 16) -> bytes:
    """Serialises a ``ModelT``, writing identical numeric vectors once."""
    builder = _dedup_builder_class()(size_hint)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _as_arrays(model) -> None:
    """Makes every quantization vector a numpy array (so it can be shared)."""
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            params = tensor.quantization
            if params is None:
                continue
            for field, dtype in (("scale", np.float32), ("zeroPoint", np.int64), ("min", np.float32), ("max", np.float32)):
                value = getattr(params, field)
                if value is not None and not isinstance(value, np.ndarray):
                    setattr(params, field, np.asarray(value, dtype=dtype))


def _drop_internal_names(model) -> None:
    for subgraph in model.subgraphs:
        keep = {int(i) for i in subgraph.inputs} | {int(i) for i in subgraph.outputs}
        for index, tensor in enumerate(subgraph.tensors):
            if index not in keep:
                tensor.name = None


def _share_empty_buffers(model) -> None:
    """Points data-less tensors at buffer 0 and drops the unused buffers."""
    def has_data(index: int) -> bool:
        data = model.buffers[index].data
        return data is not None and len(data) > 0

    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            if not has_data(tensor.buffer):
                tensor.buffer = 0
    used = {0}
    for subgraph in model.subgraphs:
        used.update(int(t.buffer) for t in subgraph.tensors)
    used.update(int(m.buffer) for m in (model.metadata or []))
    order = sorted(used)
    new_index = {old: new for new, old in enumerate(order)}
    model.buffers = [model.buffers[old] for old in order]
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            tensor.buffer = new_index[int(tensor.buffer)]
    for entry in model.metadata or []:
        entry.buffer = new_index[int(entry.buffer)]


def compact_flatbuffer(flatbuffer: bytes) -> bytes:
    """Drops internal names, empty buffers and repeated vectors (lossless).

    The graph, every constant and every quantization parameter are unchanged:
    the model computes bit-identical outputs.

    Args:
        flatbuffer: A ``.tflite`` model.

    Returns:
        The smaller flatbuffer.
    """
    model = read_model(flatbuffer)
    _drop_internal_names(model)
    _share_empty_buffers(model)
    _as_arrays(model)
    return write_model(model, len(flatbuffer))


def _version_key(version: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def runtime_at_least(version: str, minimum: str) -> bool:
    """Whether runtime ``version`` (``"2.14.0"``) is ``minimum`` or newer."""
    return _version_key(version) >= _version_key(minimum)


def min_runtime_version(flatbuffer_or_model) -> Optional[str]:
    """The ``min_runtime_version`` a ``.tflite`` model declares, if any.

    Args:
        flatbuffer_or_model: ``.tflite`` bytes or a ``ModelT``.

    Returns:
        A version string such as ``"1.14.0"``, or ``None`` when the file has
        no such metadata.
    """
    model = read_model(flatbuffer_or_model) if isinstance(flatbuffer_or_model, (bytes, bytearray)) else flatbuffer_or_model
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == MIN_RUNTIME_METADATA:
            data = model.buffers[entry.buffer].data
            raw = bytes(np.asarray(data, dtype=np.uint8)) if data is not None else b""
            return raw.split(b"\0", 1)[0].decode() or None
    return None


def _metadata_name(entry) -> str:
    return entry.name.decode() if isinstance(entry.name, bytes) else entry.name


def set_metadata(model, name: str, data: np.ndarray) -> None:
    """Writes (or adds) the metadata entry ``name`` of a ``ModelT``.

    Args:
        model: The object-API model (:func:`read_model`).
        name: Metadata entry name.
        data: Its bytes, a uint8 array.
    """
    schema = _schema()
    for entry in model.metadata or []:
        if _metadata_name(entry) == name:
            model.buffers[entry.buffer].data = data
            return
    buffer = schema.BufferT()
    buffer.data = data
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = list(model.metadata or []) + [entry]


def _write_min_runtime(model, version: str) -> None:
    """Writes (or adds) the ``min_runtime_version`` entry of a ``ModelT``."""
    data = np.zeros(max(_MIN_RUNTIME_BYTES, len(version)), dtype=np.uint8)
    data[: len(version)] = np.frombuffer(version.encode(), dtype=np.uint8)
    set_metadata(model, MIN_RUNTIME_METADATA, data)


def embed_tflite_spec(flatbuffer: bytes, spec) -> bytes:
    """Returns ``flatbuffer`` with ``spec`` added (or replaced) as metadata.

    :func:`ssrnet_tf.model_spec.read_tflite_spec` reads it back.

    Args:
        flatbuffer: A ``.tflite`` model.
        spec: The model's :class:`ssrnet_tf.model_spec.ModelSpec`.

    Returns:
        The new flatbuffer bytes; the graph and weights are unchanged.
    """
    model = read_model(flatbuffer)
    set_metadata(model, model_spec.SPEC_NAME, np.frombuffer(spec.to_json().encode(), dtype=np.uint8))
    return write_model(model, len(flatbuffer) + 4096)


def require_min_runtime(model, version: str) -> None:
    """Raises a ``ModelT``'s ``min_runtime_version`` to at least ``version``."""
    current = min_runtime_version(model)
    if current is None or not runtime_at_least(current, version):
        _write_min_runtime(model, version)


def use_operator_version(model, operator, version: int) -> None:
    """Points ``operator`` at an operator code of the same op with ``version``.

    The other operators that shared its code keep theirs; an existing code
    with that op and version is reused, else one is appended.
    """
    code = model.operatorCodes[operator.opcodeIndex]
    if code.version != version:
        operator.opcodeIndex = _code_index(model, (code.builtinCode, code.deprecatedBuiltinCode, code.customCode, version))


def _code_index(model, key: Tuple) -> int:
    """Index of the operator code ``(builtinCode, deprecatedBuiltinCode, customCode, version)``, appended when missing."""
    for index, other in enumerate(model.operatorCodes):
        if (other.builtinCode, other.deprecatedBuiltinCode, other.customCode, other.version) == key:
            return index
    new_code = _schema().OperatorCodeT()
    new_code.builtinCode, new_code.deprecatedBuiltinCode, new_code.customCode, new_code.version = key
    model.operatorCodes.append(new_code)
    return len(model.operatorCodes) - 1


def drop_unused_operator_codes(model) -> None:
    """Removes operator codes no operator uses (a runtime resolves every listed code at load)."""
    used = sorted({int(op.opcodeIndex) for subgraph in model.subgraphs for op in subgraph.operators})
    new_index = {old: new for new, old in enumerate(used)}
    model.operatorCodes = [model.operatorCodes[old] for old in used]
    for subgraph in model.subgraphs:
        for operator in subgraph.operators:
            operator.opcodeIndex = new_index[int(operator.opcodeIndex)]


def declare_min_runtime(model) -> Optional[str]:
    """Sets a ``ModelT``'s ``min_runtime_version`` from its operator codes.

    When every ``(op, version)`` is in the table (TensorFlow's
    ``runtime_version.cc``), the metadata becomes the newest runtime among
    them, lowering it too (after :func:`per_tensor_hybrid_fully_connected`);
    otherwise it is only raised to that.

    Returns:
        The declared version.
    """
    schema = _schema()
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    runtimes, known = [], True
    for code in model.operatorCodes:
        table = _RUNTIME_OF.get(names.get(max(code.builtinCode, code.deprecatedBuiltinCode)), ())
        if code.customCode is not None or not 1 <= code.version <= len(table):
            known = False
            continue
        runtimes.append(table[code.version - 1])
    newest = max(runtimes, key=_version_key, default="1.5.0")
    if known:
        _write_min_runtime(model, newest)
    else:
        require_min_runtime(model, newest)
    return min_runtime_version(model)


def float_or_hybrid_fully_connected_version(model, operator) -> int:
    """The version TensorFlow's ``op_version.cc`` gives a float or hybrid ``FULLY_CONNECTED``.

    Float input and output with int8 weights ("hybrid"): 12 with one scale
    per output unit. Otherwise, in the file's order of precedence: 8 (sparse
    weights), 6 (no bias input), 5 (``keep_num_dims``), then 9
    (asymmetrically quantized inputs) or 3 for hybrid ops, 2 (shuffled
    weights) or 1 for float ones.
    """
    schema = _schema()
    weights = model.subgraphs[0].tensors[operator.inputs[1]]
    hybrid = weights.type == schema.TensorType.INT8
    params = weights.quantization
    if hybrid and params is not None and params.scale is not None and len(params.scale) > 1:
        return PER_CHANNEL_HYBRID_FC_VERSION
    options = operator.builtinOptions
    if weights.sparsity is not None:
        return 8
    if len(operator.inputs) == 2:
        return 6
    if options is not None and options.keepNumDims:
        return 5
    if hybrid:
        return 9 if options is not None and options.asymmetricQuantizeInputs else 3
    shuffled = schema.FullyConnectedOptionsWeightsFormat.SHUFFLED4x16INT8
    return 2 if options is not None and options.weightsFormat == shuffled else 1


def _float_fully_connected_ops(model):
    """``(operator, weights tensor)`` of every float-input ``FULLY_CONNECTED`` op."""
    schema = _schema()
    fully_connected = builtin_op_indices(model, "FULLY_CONNECTED")
    for subgraph in model.subgraphs:
        for operator in subgraph.operators:
            if operator.opcodeIndex not in fully_connected or len(operator.inputs) < 2 or operator.inputs[1] < 0:
                continue
            inputs, weights = subgraph.tensors[operator.inputs[0]], subgraph.tensors[operator.inputs[1]]
            if inputs.type == schema.TensorType.FLOAT32 and weights.type in (schema.TensorType.INT8, schema.TensorType.FLOAT32):
                yield operator, weights


def per_tensor_hybrid_fully_connected(flatbuffer: bytes) -> Tuple[bytes, int]:
    """Gives every hybrid ``FULLY_CONNECTED`` one weight scale, for TFLite 2.14.

    Since TensorFlow 2.17 the converter stores the int8 weights of float
    ("hybrid") dense layers with one scale per output unit, operator version
    12, which TFLite 2.14 and 2.16 refuse to load; it even declares version
    12 for weights with one scale. Here the per-unit weights ``q_ij * s_i``
    are requantized to one symmetric scale ``max_i s_i`` (each weight moves by
    at most half that step), every hybrid op declares the version
    :func:`float_or_hybrid_fully_connected_version` gives it (the float ones
    too: the converter puts them on the same version-12 code), and the model's
    ``min_runtime_version`` is recomputed (:func:`declare_min_runtime`).

    Args:
        flatbuffer: A ``.tflite`` model.

    Returns:
        ``(flatbuffer, count)``: the rewritten model and how many weight
        tensors were requantized.
    """
    schema = _schema()
    model = read_model(flatbuffer)
    count = 0
    for operator, weights in _float_fully_connected_ops(model):
        params = weights.quantization
        scales = np.asarray(params.scale if params is not None and params.scale is not None else [], dtype=np.float32)
        if weights.type == schema.TensorType.INT8 and len(scales) > 1:
            buffer = model.buffers[weights.buffer]
            quantized = np.frombuffer(np.asarray(buffer.data, dtype=np.uint8).tobytes(), dtype=np.int8)
            quantized = quantized.reshape(len(scales), -1).astype(np.float32)
            scale = np.float32(scales.max())
            requantized = np.clip(np.round(quantized * (scales[:, None] / scale)), -127, 127).astype(np.int8)
            buffer.data = np.frombuffer(requantized.tobytes(), dtype=np.uint8)
            params.scale = np.asarray([scale], dtype=np.float32)
            params.zeroPoint = np.zeros(1, dtype=np.int64)
            params.quantizedDimension = 0
            count += 1
        use_operator_version(model, operator, float_or_hybrid_fully_connected_version(model, operator))
    drop_unused_operator_codes(model)
    declare_min_runtime(model)
    _as_arrays(model)
    return write_model(model, len(flatbuffer)), count


def builtin_op_indices(model, *names: str) -> Dict[int, str]:
    """``{operator code index: name}`` of the named builtin ops in a ``ModelT``."""
    schema = _schema()
    wanted = {getattr(schema.BuiltinOperator, name): name for name in names}
    found = {}
    for index, code in enumerate(model.operatorCodes):
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin in wanted:
            found[index] = wanted[builtin]
    return found


def code_version(model, operator) -> int:
    """The operator version an operator of a ``ModelT`` declares."""
    return int(model.operatorCodes[operator.opcodeIndex].version)


def int8_fully_connected_weights(flatbuffer: bytes) -> Tuple[bytes, int]:
    """Stores float32 ``FULLY_CONNECTED`` weights as per-unit int8 (hybrid).

    Layers with a single output unit keep float weights. Each output unit's
    weights get one symmetric scale ``max|w| / 127`` (zero point 0); inputs
    and outputs stay float32. Weights are at most ``scale / 2`` off: about
    0.4 % of the largest weight of a unit.

    Needs TFLite/LiteRT 2.17 or newer: the rewritten ops declare operator
    version :data:`PER_CHANNEL_HYBRID_FC_VERSION` and the model's
    ``min_runtime_version`` becomes at least
    :data:`PER_CHANNEL_HYBRID_FC_RUNTIME`, so that an older runtime refuses
    the file at load time instead of applying one scale to every unit.

    Args:
        flatbuffer: A ``.tflite`` model.

    Returns:
        ``(flatbuffer, count)``: the rewritten model and how many weight
        tensors were converted.
    """
    schema = _schema()
    model = read_model(flatbuffer)
    count = 0
    for operator, weights in list(_float_fully_connected_ops(model)):
        data = model.buffers[weights.buffer].data
        if weights.type != schema.TensorType.FLOAT32 or data is None or len(data) == 0:
            continue
        if int(weights.shape[0]) == 1:
            # One output unit: an age (e.g. the expected value over the
            # ages 0-100) or eq. 7's scale, used directly; rounding it
            # would move the result by up to half a step (0.39 years).
            continue
        _store_symmetric_int8(model, weights, axis=0)
        use_operator_version(model, operator, max(PER_CHANNEL_HYBRID_FC_VERSION, code_version(model, operator)))
        count += 1
    if count:
        drop_unused_operator_codes(model)
        require_min_runtime(model, PER_CHANNEL_HYBRID_FC_RUNTIME)
    _as_arrays(model)
    return write_model(model, len(flatbuffer)), count


def _readers(subgraph) -> Dict[int, list]:
    """``{tensor index: the operators that read it, once per input slot}`` of a ``SubGraphT``."""
    readers: Dict[int, list] = {}
    for operator in subgraph.operators:
        for index in operator.inputs:
            readers.setdefault(int(index), []).append(operator)
    return readers

def _store_symmetric_int8(model, tensor, axis: int) -> None:
    """Makes a float32 constant tensor int8 with one symmetric scale per slice along ``axis``.

    Each slice gets the scale ``max|w| / 127`` and zero point 0, as the
    converter quantizes weights; every weight moves by at most half a step.
    """
    schema = _schema()
    buffer = model.buffers[tensor.buffer]
    values = np.frombuffer(np.asarray(buffer.data, dtype=np.uint8).tobytes(), dtype=np.float32)
    values = values.reshape([int(d) for d in tensor.shape])
    largest = np.abs(np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)).max(axis=1)
    scale = (np.maximum(largest, np.finfo(np.float32).tiny) / 127.0).astype(np.float32)
    shape = [1] * values.ndim
    shape[axis] = -1
    quantized = np.clip(np.round(values / scale.reshape(shape)), -127, 127).astype(np.int8)
    buffer.data = np.frombuffer(quantized.tobytes(), dtype=np.uint8)
    tensor.type = schema.TensorType.INT8
    params = schema.QuantizationParametersT()
    params.scale = scale
    params.zeroPoint = np.zeros(len(scale), dtype=np.int64)
    params.quantizedDimension = axis
    tensor.quantization = params


#: Axis of the output channels of each weight-carrying op's filter (input 1).
_OUTPUT_CHANNEL_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
#: DEQUANTIZE of int8 with one scale (version 2) and per channel (version 5).
_DEQUANTIZE_VERSION = {False: 2, True: 5}


def int8_weight_only(flatbuffer: bytes, min_elements: int = 1024) -> Tuple[bytes, int]:
    """Stores the float32 filters of a float model as per-channel int8 behind ``DEQUANTIZE``.

    "Weight-only" quantization: the file keeps int8 filters (a quarter of
    their float size) and every operator computes in float32, as in the
    float model with the rounded weights. Each ``CONV_2D``,
    ``DEPTHWISE_CONV_2D`` and ``FULLY_CONNECTED`` filter of at least
    ``min_elements`` weights (the converter's own threshold for dynamic
    range) gets one symmetric int8 scale per output channel and a
    ``DEQUANTIZE`` op (version 5, TFLite 2.7+) in front of its consumer;
    runtimes run that op once, on the constant, when the model is prepared.
    Dense layers with one output unit keep float weights (see
    :func:`int8_fully_connected_weights`).

    Unlike the converter's dynamic-range ("hybrid") ops, nothing is
    quantized at run time: hybrid kernels round activations to int8 from
    float values that differ in the 7th digit between runtimes and kernel
    sets, which moved the ages of a trained MobileNet backbone by 0.4-0.6
    years between TFLite 2.14, LiteRT's XNNPACK and its reference kernels.
    The rewritten file agrees between them to float precision, and XNNPACK
    still takes the whole graph (it unpacks the constant weights once), as
    fast as the float32 file.

    Args:
        flatbuffer: A float32 ``.tflite`` model.
        min_elements: Filters with fewer weights stay float32.

    Returns:
        ``(flatbuffer, count)``: the rewritten model and how many filters
        became int8.
    """
    schema = _schema()
    model = read_model(flatbuffer)
    weighted = builtin_op_indices(model, *_OUTPUT_CHANNEL_AXIS)
    count = 0
    for subgraph in model.subgraphs:
        readers = _readers(subgraph)
        dequantize_ops = []
        for operator in subgraph.operators:
            if operator.opcodeIndex not in weighted or len(operator.inputs) < 2:
                continue
            index = int(operator.inputs[1])
            tensor = subgraph.tensors[index] if index >= 0 else None
            data = model.buffers[tensor.buffer].data if tensor is not None else None
            if (tensor is None or tensor.type != schema.TensorType.FLOAT32 or data is None
                    or len(data) < 4 * min_elements or len(readers.get(index, ())) != 1):
                continue
            kind = weighted[operator.opcodeIndex]
            if kind == "FULLY_CONNECTED" and int(tensor.shape[0]) == 1:
                continue
            dequantized = schema.TensorT()
            dequantized.shape = np.asarray(tensor.shape, dtype=np.int32)
            dequantized.type, dequantized.buffer = schema.TensorType.FLOAT32, 0
            name = tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name or "weights"
            dequantized.name = f"{name}/dequantized"
            _store_symmetric_int8(model, tensor, _OUTPUT_CHANNEL_AXIS[kind])
            subgraph.tensors.append(dequantized)
            inputs = np.array(operator.inputs, dtype=np.int32)
            inputs[1] = len(subgraph.tensors) - 1
            operator.inputs = inputs
            dequantize = schema.OperatorT()
            builtin = schema.BuiltinOperator.DEQUANTIZE
            version = _DEQUANTIZE_VERSION[len(tensor.quantization.scale) > 1]
            dequantize.opcodeIndex = _code_index(model, (builtin, builtin, None, version))
            dequantize.inputs = np.asarray([index], dtype=np.int32)
            dequantize.outputs = np.asarray([len(subgraph.tensors) - 1], dtype=np.int32)
            dequantize_ops.append(dequantize)
            count += 1
        # Constants first: the runtime runs each DEQUANTIZE once, at prepare.
        subgraph.operators = dequantize_ops + list(subgraph.operators)
    declare_min_runtime(model)
    _as_arrays(model)
    return write_model(model, len(flatbuffer)), count


def _dequantized_constant(model, tensor) -> Optional[np.ndarray]:
    """The real values of a constant int8 tensor with one scale, else ``None``."""
    schema = _schema()
    data = model.buffers[tensor.buffer].data
    params = tensor.quantization
    if (tensor.type != schema.TensorType.INT8 or data is None or len(data) == 0 or params is None
            or params.scale is None or len(params.scale) != 1):
        return None
    values = np.frombuffer(np.asarray(data, dtype=np.uint8).tobytes(), dtype=np.int8).astype(np.float64)
    return (values - float(params.zeroPoint[0])) * float(params.scale[0])


def exact_input_scaling(flatbuffer: bytes, scale: float = 1.0 / 128.0) -> Tuple[bytes, int]:
    """Makes an int8 ``MUL`` of raw pixels by ``scale`` exact: output scale ``scale``, zero point -128.

    After :func:`ssrnet_tf.export.int8_friendly.exact_int8_input_scaling` a
    model scales its pixels by 1/128 and subtracts 1. The input ``QUANTIZE``
    gives ``q = x - 128`` (scale 1, zero point -128), so ``x / 128`` is
    ``q`` itself at scale 1/128 and zero point -128, and the ``ADD`` of -1
    that follows gives ``q`` at scale 1/128 and zero point 0. Calibration
    picks some other output range for the ``MUL`` (here ``[-1, 2]``), which
    makes it round, and runtimes round ties differently. With the exact
    output parameters nothing is rounded.

    Only a ``MUL`` whose input has scale 1 and zero point -128 and whose
    other operand is the constant ``scale`` is changed, and only when its
    output feeds nothing but ``ADD`` ops.

    Args:
        flatbuffer: A full-integer ``.tflite`` model.
        scale: The pixel scale.

    Returns:
        ``(flatbuffer, count)``: the rewritten model and how many ops were changed.
    """
    schema = _schema()
    model = read_model(flatbuffer)
    multiply = builtin_op_indices(model, "MUL")
    add = builtin_op_indices(model, "ADD")
    count = 0
    for subgraph in model.subgraphs:
        readers = _readers(subgraph)
        for operator in subgraph.operators:
            if operator.opcodeIndex not in multiply or len(operator.inputs) != 2:
                continue
            first, second = (subgraph.tensors[int(i)] for i in operator.inputs)
            constant = _dequantized_constant(model, second)
            params = first.quantization
            output_index = int(operator.outputs[0])
            output = subgraph.tensors[output_index]
            if (constant is None or constant.size != 1 or abs(constant[0] - scale) > 1e-9
                    or first.type != schema.TensorType.INT8 or params is None or params.scale is None
                    or len(params.scale) != 1 or float(params.scale[0]) != 1.0 or int(params.zeroPoint[0]) != -128
                    or output.type != schema.TensorType.INT8 or output_index in {int(i) for i in subgraph.outputs}
                    or not readers.get(output_index)
                    or any(reader.opcodeIndex not in add for reader in readers[output_index])):
                continue
            exact = schema.QuantizationParametersT()
            exact.scale = np.asarray([scale], dtype=np.float32)
            exact.zeroPoint = np.asarray([-128], dtype=np.int64)
            output.quantization = exact
            count += 1
    _as_arrays(model)
    return write_model(model, len(flatbuffer)), count

def narrow_tanh_input_ranges(flatbuffer: bytes, bound: float = 4.0) -> Tuple[bytes, int]:
    """Limits the int8 range of every ``TANH`` input to ``[-bound, bound]``.

    Calibration gives a tensor the min/max it saw. Before a tanh that wastes
    the int8 grid: SSR-Net's second stream feeds tanh with convolution
    outputs spanning about ±20, so its 256 levels are 0.16 apart while tanh
    saturates beyond ±3 (``tanh(4) = 0.9993``). Clamping the range to
    ``±bound`` makes the steps ``2 * bound / 255`` apart (five times finer)
    and changes the tanh output by at most ``1 - tanh(bound)`` where values
    are clipped. The producing op (a convolution with batch normalisation
    folded in) then saturates at ``±bound`` itself; its kernel and the
    tanh's lookup table are prepared from the new parameters, so runtimes
    need nothing else.

    Only int8 tensors that feed nothing but the tanh are changed.

    Measured on this project's UTKFace SSR-Net (1,000 faces): the mean
    per-face difference between the int8 file and the Keras model fell from
    1.62 to 0.30 years (see the README's export section).

    Args:
        flatbuffer: A ``.tflite`` model.
        bound: Half-width of the allowed range.

    Returns:
        ``(flatbuffer, count)``: the rewritten model and how many tensors
        were narrowed.
    """
    schema = _schema()
    model = read_model(flatbuffer)
    tanh_codes = builtin_op_indices(model, "TANH")
    count = 0
    for subgraph in model.subgraphs:
        readers = _readers(subgraph)
        graph_io = {int(i) for i in subgraph.inputs} | {int(i) for i in subgraph.outputs}
        for operator in subgraph.operators:
            if operator.opcodeIndex not in tanh_codes:
                continue
            index = int(operator.inputs[0])
            tensor = subgraph.tensors[index]
            params = tensor.quantization
            if (
                tensor.type != schema.TensorType.INT8 or len(readers.get(index, ())) != 1 or index in graph_io
                or params is None or params.scale is None or len(params.scale) != 1
            ):
                continue
            scale, zero_point = float(params.scale[0]), int(params.zeroPoint[0])
            low, high = (-128 - zero_point) * scale, (127 - zero_point) * scale
            new_low, new_high = max(low, -bound), min(high, bound)
            if new_high - new_low >= high - low - 1e-9:
                continue
            new_scale = (new_high - new_low) / 255.0
            new_zero_point = int(np.clip(np.round(-128 - new_low / new_scale), -128, 127))
            params.scale = np.asarray([new_scale], dtype=np.float32)
            params.zeroPoint = np.asarray([new_zero_point], dtype=np.int64)
            params.min, params.max = None, None
            count += 1
    _as_arrays(model)
    return write_model(model, len(flatbuffer)), count
