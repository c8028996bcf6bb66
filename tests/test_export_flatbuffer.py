"""Flatbuffer rewrites and int8 bias correction of the export."""

import numpy as np

import keras

from ssrnet_tf.export import TFLiteModel, convert_to_tflite
from ssrnet_tf.export import flatbuffer as flatbuffer_lib
from ssrnet_tf.export.int8_friendly import correct_quantization_bias
from ssrnet_tf.models import build_ssrnet


def faces(n=8, seed=0):
    """Bright, uncentred 0-255 images, like raw face crops."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(90, 200, (n, 1, 1, 3))
    return np.clip(base + rng.normal(0, 25, (n, 64, 64, 3)), 0, 255).astype("float32")


def trained_like_ssrnet(seed=0):
    """SSR-Net with random but non-degenerate weights and BN statistics."""
    keras.utils.set_random_seed(seed)
    model = build_ssrnet()
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([gamma, beta, rng.normal(0, 0.5, mean.shape), rng.uniform(50, 400, variance.shape)])
    return model


def tensors(flatbuffer):
    model = flatbuffer_lib.read_model(flatbuffer)
    return model, model.subgraphs[0]


def graph_tensor_type(model, operator):
    """Name of the type of an operator's weights (input 1)."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
    return names[model.subgraphs[0].tensors[operator.inputs[1]].type]


def test_min_runtime_metadata_is_raised_never_lowered():
    raw = convert_to_tflite(build_ssrnet(), strip_names=False)
    model = flatbuffer_lib.read_model(raw)
    assert flatbuffer_lib.min_runtime_version(model) == "1.14.0"
    flatbuffer_lib.require_min_runtime(model, "2.17.0")
    flatbuffer_lib.require_min_runtime(model, "2.3.0")
    rewritten = flatbuffer_lib.compact_flatbuffer(flatbuffer_lib.write_model(model))
    assert flatbuffer_lib.min_runtime_version(rewritten) == "2.17.0"
    assert flatbuffer_lib.runtime_at_least("2.17.0", "2.9.0") and not flatbuffer_lib.runtime_at_least("2.14.0", "2.17.0")


def test_compaction_is_lossless_and_smaller():
    model = build_ssrnet()
    raw = convert_to_tflite(model, strip_names=False)
    compact = flatbuffer_lib.compact_flatbuffer(raw)
    assert len(raw) - len(compact) > 8000  # names, empty buffers, repeated vectors
    batch = faces(4)
    np.testing.assert_array_equal(TFLiteModel(compact).predict(batch), TFLiteModel(raw).predict(batch))
    parsed, graph = tensors(compact)
    io = {int(i) for i in graph.inputs} | {int(i) for i in graph.outputs}
    assert all(t.name is None for i, t in enumerate(graph.tensors) if i not in io)
    assert all(graph.tensors[i].name for i in io)
    # Every data-less tensor shares buffer 0, and no buffer is left unused.
    used = {int(t.buffer) for t in graph.tensors} | {int(m.buffer) for m in parsed.metadata or []} | {0}
    assert used == set(range(len(parsed.buffers)))


def test_int8_head_weights_are_int8_and_close():
    model = trained_like_ssrnet()
    calibration = faces(32, seed=1)
    kwargs = dict(quantize="int8", representative_images=calibration)
    with_float_head = convert_to_tflite(model, int8_head_weights=False, **kwargs)
    converted, count = flatbuffer_lib.int8_fully_connected_weights(with_float_head)
    assert count == 15  # six dense layers per stage, three stages, less the single-unit scale layers
    assert len(converted) < len(with_float_head) - 5000
    # The rewritten ops declare per-channel hybrid FULLY_CONNECTED (version
    # 12, TFLite 2.17+), so that older runtimes refuse the file at load time.
    assert flatbuffer_lib.min_runtime_version(with_float_head) == "1.14.0"
    assert flatbuffer_lib.min_runtime_version(converted) == flatbuffer_lib.PER_CHANNEL_HYBRID_FC_RUNTIME
    parsed, _ = tensors(converted)
    fully_connected = flatbuffer_lib.builtin_op_indices(parsed, "FULLY_CONNECTED")
    versions = sorted(
        (flatbuffer_lib.code_version(parsed, op), graph_tensor_type(parsed, op))
        for op in parsed.subgraphs[0].operators if op.opcodeIndex in fully_connected
    )
    assert versions.count((12, "INT8")) == count
    assert {version for version, kind in versions if kind == "FLOAT32"} == {1}  # single-unit layers keep theirs
    _, graph = tensors(converted)
    assert not any(t.type == 0 and t.shape is not None and len(t.shape) == 2 and t.shape[0] > 1 and t.buffer
                   for t in graph.tensors)
    batch = faces(8, seed=2)
    float_head = TFLiteModel(with_float_head).predict(batch)
    int8_head = TFLiteModel(converted)
    assert int8_head.delegation().fully_delegated, int8_head.delegation().summary()
    np.testing.assert_allclose(int8_head.predict(batch), float_head, rtol=0.05, atol=0.5)


def test_tanh_inputs_are_narrowed():
    model = trained_like_ssrnet()
    flatbuffer = convert_to_tflite(model, quantize="int8", representative_images=faces(32, seed=1))
    narrowed, _ = flatbuffer_lib.narrow_tanh_input_ranges(flatbuffer, bound=2.0)
    parsed, graph = tensors(narrowed)
    tanh = flatbuffer_lib.builtin_op_indices(parsed, "TANH")
    checked = 0
    for operator in graph.operators:
        params = graph.tensors[operator.inputs[0]].quantization
        if operator.opcodeIndex in tanh and params is not None and params.scale is not None:
            scale, zero_point = float(params.scale[0]), int(params.zeroPoint[0])
            assert (127 - zero_point) * scale <= 2.0 + scale and (-128 - zero_point) * scale >= -2.0 - scale
            checked += 1
    assert checked == 4  # the four tanh activations of the second stream
    assert TFLiteModel(narrowed).delegation().fully_delegated


def test_bias_correction_cancels_the_mean_shift_of_rounded_kernels():
    # A conv on raw pixels whose filters nearly cancel: rounding the kernel
    # shifts the output by an amount proportional to the image brightness.
    inputs = keras.Input((16, 16, 3))
    conv = keras.layers.Conv2D(8, 3, name="conv")
    outputs = keras.layers.BatchNormalization(name="bn")(conv(inputs))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    kernel = rng.normal(0, 1, (3, 3, 3, 8)).astype("float32")
    kernel -= kernel.mean(axis=(0, 1, 2), keepdims=True)
    conv.set_weights([kernel * 0.01, np.zeros(8, "float32")])
    model.get_layer("bn").set_weights([rng.uniform(0.5, 2, 8), np.zeros(8), np.zeros(8), rng.uniform(0.5, 2, 8)])
    images = faces(16)[:, :16, :16]
    corrected = correct_quantization_bias(model, images)
    np.testing.assert_array_equal(corrected.get_layer("conv").kernel, model.get_layer("conv").kernel)

    def with_rounded_kernel(source):
        copy = keras.models.clone_model(source)
        copy.set_weights(source.get_weights())
        gamma, _, _, variance = copy.get_layer("bn").get_weights()
        fold = gamma / np.sqrt(variance + 1e-3)
        folded = np.asarray(copy.get_layer("conv").kernel) * fold
        scale = np.abs(folded.reshape(-1, 8)).max(axis=0) / 127
        copy.get_layer("conv").kernel.assign(np.round(folded / scale) * scale / fold)
        return copy.predict(images, verbose=0)

    reference = model.predict(images, verbose=0)
    shift_before = np.abs((with_rounded_kernel(model) - reference).mean(axis=(0, 1, 2)))
    shift_after = np.abs((with_rounded_kernel(corrected) - reference).mean(axis=(0, 1, 2)))
    assert shift_before.max() > 1e-3
    assert np.all(shift_after <= 0.1 * shift_before + 1e-6), (shift_before, shift_after)


def test_int8_weight_only_quantizes_large_filters_behind_dequantize():
    """Large conv, depthwise and dense filters become per-channel int8; small ones and one-unit dense stay float."""
    from tensorflow.lite.python import schema_py_generated as schema

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 8))
    x = keras.layers.Conv2D(4, 3, name="small_conv")(inputs)  # 288 weights
    x = keras.layers.Conv2D(64, 3, name="conv")(x)  # 2,304
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(x)  # 1,152
    x = keras.layers.GlobalAveragePooling2D()(x)
    hidden = keras.layers.Dense(32, name="dense")(x)  # 4,096
    age = keras.layers.Dense(1, name="age")(keras.layers.Concatenate()([x] * 8))  # 1,024, one unit
    model = keras.Model(inputs, {"age": age, "hidden": hidden})
    float_flatbuffer = convert_to_tflite(model, quantize="none", strip_names=False)
    rewritten, count = flatbuffer_lib.int8_weight_only(float_flatbuffer)
    assert count == 3
    parsed, graph = tensors(rewritten)
    dequantize = flatbuffer_lib.builtin_op_indices(parsed, "DEQUANTIZE")
    int8 = [tensor for tensor in graph.tensors if tensor.type == schema.TensorType.INT8]
    assert len(int8) == 3 and len(dequantize) == 1
    assert sorted(len(tensor.quantization.scale) for tensor in int8) == [32, 64, 128]  # one per output channel
    assert {int(tensor.quantization.quantizedDimension) for tensor in int8} == {0, 3}
    assert all(flatbuffer_lib.code_version(parsed, op) == 5 for op in graph.operators if op.opcodeIndex in dequantize)
    assert flatbuffer_lib.min_runtime_version(rewritten) == "2.7.0"
    batch = np.random.default_rng(0).normal(size=(4, 16, 16, 8)).astype("float32")
    expected = TFLiteModel(float_flatbuffer).predict_outputs(batch)
    got = TFLiteModel(rewritten).predict_outputs(batch)
    for name in ("age", "hidden"):
        scale = np.abs(expected[name]).max()
        np.testing.assert_allclose(got[name], expected[name], atol=0.02 * scale, err_msg=name)
    assert not np.allclose(got["hidden"], expected["hidden"], atol=1e-6)  # the weights really are rounded


def _scaled_backbone_model(padding="valid"):
    """x / 127.5 - 1 (BGR -> RGB) in front of a nested network whose first conv has no bias but a batch norm."""
    from ssrnet_tf.layers.pixel_normalization import pixel_normalization_for

    keras.utils.set_random_seed(0)
    inner_input = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding=padding, use_bias=False, name="conv")(inner_input)
    x = keras.layers.BatchNormalization(name="conv_bn")(x)
    x = keras.layers.ReLU()(x)
    inner = keras.Model(inner_input, keras.layers.GlobalAveragePooling2D()(x), name="network")
    inputs = keras.Input((16, 16, 3))
    features = inner(pixel_normalization_for("tf", name="scaling")(inputs))
    model = keras.Model(inputs, {"age": keras.layers.Dense(1, name="age")(features)})
    bn = inner.get_layer("conv_bn")
    rng = np.random.default_rng(0)
    bn.set_weights([rng.uniform(0.5, 2, 8), rng.normal(0, 1, 8), rng.normal(0, 1, 8), rng.uniform(0.5, 2, 8)])
    return model


def test_exact_int8_input_scaling_folds_into_the_first_convolution():
    from ssrnet_tf.export.int8_friendly import EXACT_INT8_SCALE, exact_int8_input_scaling

    model = _scaled_backbone_model()
    folded = exact_int8_input_scaling(model)
    assert folded is not model
    assert folded.get_layer("scaling").scale == EXACT_INT8_SCALE and model.get_layer("scaling").scale == 1 / 127.5
    batch = faces(4)[:, :16, :16]
    np.testing.assert_allclose(folded.predict(batch, verbose=0)["age"], model.predict(batch, verbose=0)["age"],
                               rtol=1e-4, atol=1e-4)
    ssrnet = build_ssrnet()  # no pixel scaling: nothing to fold
    assert exact_int8_input_scaling(ssrnet) is ssrnet


def test_int8_export_scales_pixels_without_rounding():
    """The int8 MUL of the scaled pixels gets scale 1/128 and zero point -128: q = x - 128, no rounding."""
    from tensorflow.lite.python import schema_py_generated as schema

    # 'same' padding, as MobileNet's first convolution: the converter cannot fold the scaling into it.
    model = _scaled_backbone_model(padding="same")
    flatbuffer = convert_to_tflite(model, quantize="int8", representative_images=faces(16)[:, :16, :16])
    parsed, graph = tensors(flatbuffer)
    multiply = flatbuffer_lib.builtin_op_indices(parsed, "MUL")
    (operator,) = [op for op in graph.operators if op.opcodeIndex in multiply]
    params = graph.tensors[operator.outputs[0]].quantization
    assert graph.tensors[operator.outputs[0]].type == schema.TensorType.INT8
    assert (float(params.scale[0]), int(params.zeroPoint[0])) == (1 / 128, -128)
    _, count = flatbuffer_lib.exact_input_scaling(flatbuffer)  # nothing left to change
    assert count == 1  # (the rewrite is idempotent: it matches the op again and writes the same values)
