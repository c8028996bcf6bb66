"""TFLite export modes: conversion, XNNPACK coverage, accuracy."""

import numpy as np
import pytest

import keras

from ssrnet_tf import model_spec, pretrained
from ssrnet_tf.data import utkface
from ssrnet_tf.export import QUANTIZE_MODES, TFLiteModel, compatibility, convert_to_tflite
from ssrnet_tf.export import flatbuffer as flatbuffer_lib
from ssrnet_tf.export.int8_friendly import average_pools_as_depthwise, float_head_layer_names
from ssrnet_tf.models import build_ssrnet

import model_checks  # pylint: disable=wrong-import-order  # tests/ is on sys.path


def drawn_faces(n=16):
    return model_checks.drawn_faces(n)


def test_average_pools_as_depthwise_is_the_same_function():
    model = build_ssrnet()
    rewritten = average_pools_as_depthwise(model)
    assert not any(isinstance(layer, keras.layers.AveragePooling2D) for layer in rewritten.layers)
    assert [layer.name for layer in rewritten.layers] == [layer.name for layer in model.layers]
    faces = drawn_faces(4)
    np.testing.assert_allclose(rewritten.predict(faces, verbose=0)["age"], model.predict(faces, verbose=0)["age"], rtol=1e-5, atol=1e-4)


def test_float_head_is_the_fusion_and_output_layers():
    names = float_head_layer_names(build_ssrnet())
    assert "age" in names and "stage1_probabilities" in names and "stage2_fused_product" in names
    assert not any("block" in name or name.endswith("_conv") for name in names)


def test_bad_arguments():
    model = build_ssrnet()
    with pytest.raises(ValueError, match="quantize"):
        convert_to_tflite(model, quantize="int4")
    with pytest.raises(ValueError, match="representative_images"):
        convert_to_tflite(model, quantize="int8")
    with pytest.raises(ValueError, match="int8_input_type"):
        convert_to_tflite(model, quantize="dynamic", int8_input_type="uint8")
    with pytest.raises(ValueError, match="dynamic_hybrid_ops"):
        convert_to_tflite(model, quantize="float16", dynamic_hybrid_ops=True)
    with pytest.raises(ValueError, match="int8_head_weights"):
        convert_to_tflite(model, quantize="dynamic", int8_head_weights=True)


@pytest.mark.parametrize("quantize", ["none", "float16"])
def test_float_modes_run_fully_under_xnnpack(quantize, tmp_path):
    model = build_ssrnet()
    spec = model_spec.ModelSpec.for_model(model)
    path = tmp_path / f"{quantize}.tflite"
    convert_to_tflite(model, path, quantize=quantize, spec=spec)
    runner = TFLiteModel(path, num_threads=1)
    assert runner.delegation().fully_delegated, runner.delegation().summary()
    assert model_spec.read_tflite_spec(path) == spec
    faces = drawn_faces(4)
    ages = runner.predict(faces)
    assert ages.shape == (4, 1) and np.all(np.isfinite(ages))
    # Randomly initialised weights give large "ages"; compare relatively.
    rtol = {"none": 1e-5, "float16": 1e-2}[quantize]
    np.testing.assert_allclose(ages, model.predict(faces, verbose=0)["age"], rtol=rtol, atol=0.01)
    assert runner.output_names == ["age"]  # the Keras model's output key


def test_dynamic_mode_stores_int8_weights_and_computes_in_float(tmp_path):
    """Weight-only: int8 filters feed only DEQUANTIZE, every other op is float; runs on TFLite 2.14."""
    keras.utils.set_random_seed(0)
    model = build_ssrnet()
    float_size = len(convert_to_tflite(model, quantize="none"))
    flatbuffer = convert_to_tflite(model, tmp_path / "dynamic.tflite", quantize="dynamic")
    parsed = flatbuffer_lib.read_model(flatbuffer)
    schema = flatbuffer_lib._schema()
    dequantize = flatbuffer_lib.builtin_op_indices(parsed, "DEQUANTIZE")
    graph = parsed.subgraphs[0]
    int8 = {i for i, tensor in enumerate(graph.tensors) if tensor.type == schema.TensorType.INT8}
    assert int8 and dequantize
    for operator in graph.operators:
        if operator.opcodeIndex in dequantize:
            assert flatbuffer_lib.code_version(parsed, operator) == 5  # per channel
            scales = graph.tensors[operator.inputs[0]].quantization.scale
            assert len(scales) > 1
        else:
            assert not int8 & ({int(i) for i in operator.inputs} | {int(i) for i in operator.outputs})
    assert compatibility.file_kind(flatbuffer) == "float"
    assert flatbuffer_lib.runtime_at_least("2.14.0", flatbuffer_lib.min_runtime_version(flatbuffer))
    assert len(flatbuffer) < 0.45 * float_size
    faces = drawn_faces(4)
    runner = TFLiteModel(tmp_path / "dynamic.tflite", num_threads=1)
    assert runner.delegation().fully_delegated, runner.delegation().summary()  # XNNPACK unpacks the int8 weights
    ages = runner.predict(faces)
    # Random weights give "ages" in the thousands, which rounded weights move by a few per cent
    # (real weights and faces: the MAE check of the slow test below).
    expected = model.predict(faces, verbose=0)["age"]
    np.testing.assert_allclose(ages, expected, atol=0.1 * np.abs(expected).max())


@pytest.mark.slow
def test_published_ssrnet_exports_in_every_mode(reference_dir, utkface_dir, tmp_path):
    """Every mode converts and runs; int8 is fully delegated and accurate."""
    model = pretrained.load_reference_ssrnet(reference_dir / "ssrnet_3_3_3_64_1.0_1.0_imdb.h5")
    faces, ages, _ = utkface.load_utkface_arrays(utkface_dir, limit=500, seed=11)
    calibration, faces, ages = faces[:200], faces[200:], ages[200:]
    keras_mae = np.abs(model.predict(faces, verbose=0)["age"][:, 0] - ages).mean()
    sizes = {}
    for quantize in QUANTIZE_MODES:
        path = tmp_path / f"{quantize}.tflite"
        sizes[quantize] = len(convert_to_tflite(
            model, path, quantize=quantize, representative_images=calibration, spec=model_spec.ModelSpec.for_model(model)
        ))
        runner = TFLiteModel(path, num_threads=1)
        report = runner.delegation()
        assert report.fully_delegated, (quantize, report.summary())
        mae = np.abs(runner.predict(faces)[:, 0] - ages).mean()
        assert abs(mae - keras_mae) <= 0.15, (quantize, mae, keras_mae)
    # The float head keeps float weights by default (runs on TFLite 2.14);
    # int8_head_weights=True (TFLite 2.17+) saves another 6 KB.
    assert sizes["int8"] == min(sizes.values()) and sizes["int8"] <= 70_000, sizes
    # int8 input: raw pixels - 128, fully delegated; uint8: raw camera bytes.
    for input_type, dtype in (("int8", np.int8), ("uint8", np.uint8)):
        path = tmp_path / f"int8_{input_type}.tflite"
        convert_to_tflite(model, path, quantize="int8", representative_images=calibration, int8_input_type=input_type)
        runner = TFLiteModel(path)
        assert runner.input_dtype == dtype
        reference = TFLiteModel(tmp_path / "int8.tflite").predict(faces[:32])
        np.testing.assert_allclose(runner.predict(faces[:32]), reference, atol=1e-3)
    assert TFLiteModel(tmp_path / "int8_int8.tflite").delegation().fully_delegated
