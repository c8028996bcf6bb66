"""Quantization-aware training: the tf_keras twin, QAT annotation, int8 export."""

import importlib.util
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import keras

from ssrnet_tf import model_spec, pretrained
from ssrnet_tf.data import utkface
from ssrnet_tf.export import TFLiteModel
from ssrnet_tf.export.int8_friendly import float_head_layer_names
from ssrnet_tf.layers import SoftStagewiseRegression
from ssrnet_tf.models import SSRNetConfig, build_ssrnet

tf_keras = pytest.importorskip("tf_keras")
if importlib.util.find_spec("tensorflow_model_optimization") is None:  # importing it has side effects
    pytest.skip("tensorflow-model-optimization is not installed", allow_module_level=True)

from ssrnet_tf.export import qat, qat_export, tf_keras_layers, tf_keras_twin  # noqa: E402  (needs tf_keras)
from ssrnet_tf.models.ssrnet import infer_ssrnet_config, rebuild_ssrnet  # noqa: E402

IMDB = "ssrnet_3_3_3_64_1.0_1.0_imdb.h5"


def drawn_faces(n=8):
    from ssrnet_tf.data.images import resize_square
    from ssrnet_tf.faces import synthetic_face

    return np.stack([resize_square(synthetic_face(200, seed=s), 64) for s in range(n)]).astype("float32")


def randomize(model, seed=0):
    """Random weights everywhere, positive BN variances (tests the weight order)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = [rng.normal(0.0, 0.3, w.shape).astype("float32") for w in layer.get_weights()]
        if isinstance(layer, keras.layers.BatchNormalization):
            values[3] = rng.uniform(0.5, 2.0, values[3].shape).astype("float32")
        if values:
            layer.set_weights(values)
    return model


def quantized_layer_names(qat_model):
    return {layer.layer.name for layer in qat_model.layers if hasattr(layer, "layer")}


# === tf_keras twin ===


def test_tf_keras_twin_matches_keras3_for_a_non_default_config():
    config = SSRNetConfig(stage_bins=(4, 2), stage_levels=(3, 1), stage_activation="softmax", stream_widths=(16, 8))
    model = randomize(build_ssrnet(config))
    assert infer_ssrnet_config(model) == config
    twin = tf_keras_twin.to_tf_keras_twin(model)
    assert [layer.name for layer in twin.layers] == [layer.name for layer in model.layers]
    faces = drawn_faces()
    np.testing.assert_allclose(twin.predict(faces, verbose=0)["age"], model.predict(faces, verbose=0)["age"], rtol=1e-4, atol=1e-3)


def test_soft_stagewise_regression_twin_matches_keras3():
    rng = np.random.default_rng(1)
    bins = (3, 2)
    probabilities = [rng.uniform(0, 1, (6, b)).astype("float32") for b in bins]
    scales = [rng.uniform(-1, 1, (6, 1)).astype("float32") for _ in bins]
    scales[0][0] = -0.99  # below the division guard
    shifts = [rng.uniform(-1, 1, (6, b)).astype("float32") for b in bins]
    shifts[0][1] = -1.0  # a negative raw age, clamped at inference
    inputs = probabilities + scales + shifts
    arguments = dict(stage_bins=bins, lambda_local=0.5, lambda_d=0.8, age_range=90.0, min_scale=0.2)
    reference = SoftStagewiseRegression(**arguments)
    twin = tf_keras_layers.TfKerasSoftStagewiseRegression(**arguments)
    for training in (False, True):
        np.testing.assert_allclose(
            np.asarray(twin(inputs, training=training)), np.asarray(reference(inputs, training=training)), rtol=1e-6
        )
    assert np.asarray(twin(inputs, training=False)).min() >= 0.0
    restored = tf_keras_layers.TfKerasSoftStagewiseRegression.from_config(twin.get_config())
    assert restored.get_config() == twin.get_config()
    with pytest.raises(ValueError, match="stage_bins"):
        tf_keras_layers.TfKerasSoftStagewiseRegression(stage_bins=(3, 0))
    with pytest.raises(ValueError, match="min_scale"):
        tf_keras_layers.TfKerasSoftStagewiseRegression(stage_bins=(3,), min_scale=0.0)


def test_static_flatten_twin_is_one_static_reshape():
    layer = tf_keras_layers.TfKerasStaticFlatten(name="flat")
    assert tuple(layer(np.zeros((2, 3, 3, 4), "float32")).shape) == (2, 36)
    assert tf_keras_layers.TfKerasStaticFlatten.from_config(layer.get_config()).name == "flat"


def test_config_mismatch_is_reported():
    model = build_ssrnet()
    with pytest.raises(ValueError, match="eq. 7"):
        tf_keras_twin.to_tf_keras_twin(rebuild_ssrnet(model, SSRNetConfig(min_scale=0.2)))
    with pytest.raises(ValueError, match="stream1_block1_conv"):
        tf_keras_twin.to_tf_keras_twin(rebuild_ssrnet(model, SSRNetConfig(stream_widths=(16, 16))))
    with pytest.raises(ValueError, match="SSR-Net"):
        infer_ssrnet_config(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]))


# === QAT model ===


def test_qat_quantizes_what_int8_ptq_quantizes():
    model = build_ssrnet()
    qat_model = qat.quantize_aware_model(tf_keras_twin.to_tf_keras_twin(model), drawn_faces())
    quantized = quantized_layer_names(qat_model)
    # PTQ quantizes every layer but the float head; flatten and dropout
    # layers have no arithmetic.
    passive = {layer.name for layer in model.layers if isinstance(layer, (keras.layers.InputLayer, keras.layers.Dropout))}
    passive |= {layer.name for layer in model.layers if layer.name.endswith("_flatten")}
    expected = {layer.name for layer in model.layers} - set(float_head_layer_names(model)) - passive
    assert quantized == expected
    assert "stream1_block1_pool" in quantized and "stage1_probabilities" not in quantized
    # Frozen: BN and the constant average pools.
    trainable = {variable.name for variable in qat_model.trainable_weights}
    assert not any("_bn/" in name or "_pool/" in name for name in trainable), trainable
    assert any(name.startswith("stream1_block1_conv/kernel") for name in trainable)


def test_tfmot_import_leaves_keras_3_routing_alone():
    """tfmot sets TF_USE_LEGACY_KERAS=1 on import; the module undoes it."""
    code = (
        "import os, tensorflow as tf; from ssrnet_tf.export import qat; qat._tfmot(); "
        "print(os.environ.get('TF_USE_LEGACY_KERAS'), tf.keras.version())"
    )
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.split()[-2:] == ["None", keras.version()], result.stdout


def test_calibration_sets_ranges_from_float_tensors():
    faces = drawn_faces()
    qat_model = qat.quantize_aware_model(tf_keras_twin.build_tf_keras_twin(build_ssrnet()), faces)

    def value_range(layer):
        values = {v.name.split("_")[-1].split(":")[0]: float(v.numpy()) for v in layer.weights if v.shape == ()}
        return values["min"], values["max"]

    input_quantizer = next(layer for layer in qat_model.layers if type(layer).__name__ == "QuantizeLayer")
    assert value_range(input_quantizer) == pytest.approx((min(0.0, faces.min()), faces.max()))
    relu_min, relu_max = value_range(qat_model.get_layer("quant_stream1_block1_act"))
    assert relu_min == 0.0 and 0.0 < relu_max != 6.0  # not tfmot's initial [-6, 6]


def test_average_pooling_is_rejected():
    inputs = tf_keras.Input((8, 8, 3))
    outputs = tf_keras.layers.AveragePooling2D(2)(tf_keras.layers.Conv2D(4, 3)(inputs))
    with pytest.raises(ValueError, match="AveragePooling2D"):
        qat.quantize_aware_model(tf_keras.Model(inputs, outputs))


def test_restore_float_weights_round_trip():
    model = randomize(build_ssrnet(), seed=2)
    qat_model = qat.quantize_aware_model(tf_keras_twin.to_tf_keras_twin(model))
    restored = qat.restore_float_weights(qat_model, build_ssrnet())
    for expected, actual in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(expected, actual)


def test_bad_fine_tuning_arguments():
    with pytest.raises(ValueError, match="epochs"):
        qat.QATSchedule(epochs=-1)
    with pytest.raises(ValueError, match="learning_rate"):
        qat.QATSchedule(learning_rate=0.0)
    with pytest.raises(ValueError, match="as many faces as ages"):
        qat.qat_finetune(None, drawn_faces(2), np.zeros(3))


# === Published weights, real faces ===


@pytest.mark.slow
def test_tf_keras_twin_reproduces_published_ssrnet(reference_dir, utkface_dir):
    model = pretrained.load_reference_ssrnet(reference_dir / IMDB)
    faces, _, _ = utkface.load_utkface_arrays(utkface_dir, limit=1000, seed=5)
    twin = tf_keras_twin.to_tf_keras_twin(model)
    difference = np.abs(twin.predict(faces, verbose=0, batch_size=250)["age"] - model.predict(faces, verbose=0, batch_size=250)["age"])
    assert difference.max() < 1e-3, difference.max()


@pytest.mark.slow
def test_qat_int8_export_of_published_ssrnet(reference_dir, utkface_dir, tmp_path):
    """QAT int8 runs fully under XNNPACK and keeps the float model's accuracy."""
    start = time.perf_counter()
    model = pretrained.load_reference_ssrnet(reference_dir / IMDB)
    faces, ages, _ = utkface.load_utkface_arrays(utkface_dir, limit=2000, seed=7)
    tune_faces, tune_ages, faces, ages = faces[:1000], ages[:1000], faces[1000:], ages[1000:]

    def mae(predictions):
        return float(np.abs(np.asarray(predictions)[:, 0] - ages).mean())

    float_mae = mae(model.predict(faces, verbose=0, batch_size=250)["age"])

    # The QAT graph with calibrated ranges, not fine-tuned (one call, zero
    # epochs): the int8 export alone must cost no accuracy.
    untuned_flatbuffer = qat_export.qat_to_tflite(model, tune_faces, tune_ages, epochs=0)
    assert model_spec.read_tflite_spec(untuned_flatbuffer).input_size == (64, 64)
    untuned = TFLiteModel(untuned_flatbuffer, num_threads=1)
    untuned_mae = mae(untuned.predict(faces))
    assert abs(untuned_mae - float_mae) <= 0.15, (untuned_mae, float_mae)

    # One epoch of QAT on 1,000 other faces, step by step.
    qat_model = qat.quantize_aware_model(tf_keras_twin.to_tf_keras_twin(model), tune_faces[:500])
    qat.qat_finetune(qat_model, tune_faces, tune_ages, epochs=1)
    simulated_mae = mae(qat_model.predict(faces, verbose=0, batch_size=250))
    spec = model_spec.ModelSpec.for_model(model, architecture="ssrnet(3,3,3) QAT int8")
    path = tmp_path / "ssrnet_qat.tflite"
    flatbuffer = qat.export_qat_tflite(qat_model, path, spec=spec)
    runner = TFLiteModel(path, num_threads=1)
    report = runner.delegation()
    qat_mae = mae(runner.predict(faces))
    print(
        f"\nQAT int8 on {len(ages)} UTKFace faces: MAE float Keras {float_mae:.3f} | calibrated QAT graph, "
        f"not fine-tuned, int8 {untuned_mae:.3f} | 1 QAT epoch: Keras simulation {simulated_mae:.3f}, "
        f"int8 .tflite {qat_mae:.3f} years; {len(flatbuffer) / 1024:.1f} KiB; XNNPACK {report.summary()}; "
        f"{time.perf_counter() - start:.0f} s"
    )
    assert report.fully_delegated, report.summary()
    assert untuned.delegation().fully_delegated, untuned.delegation().summary()
    assert runner.input_dtype == np.float32
    assert model_spec.read_tflite_spec(path) == spec
    # The .tflite computes what the QAT graph simulated.
    assert abs(qat_mae - simulated_mae) <= 0.05, (qat_mae, simulated_mae)
    # Fine-tuning on UTKFace also adapts the IMDB model to UTKFace, so its MAE
    # may drop by more than 0.15 years; it must not rise by more.
    assert qat_mae <= float_mae + 0.15, (qat_mae, float_mae)


@pytest.mark.slow
def test_cli_export_quantize_qat_passes_the_check(reference_dir, utkface_dir, tmp_path, capsys):
    """``ssrnet-tf export --quantize qat`` reaches the same QAT path, with the same ``--check`` as PTQ."""
    from ssrnet_tf import cli

    out = tmp_path / "imdb_qat.tflite"
    code = cli.main([
        "export", str(reference_dir / IMDB), "--out", str(out), "--quantize", "qat",
        "--calibration-dir", str(utkface_dir), "--calibration-count", "300", "--qat-epochs", "0",
        "--check", str(utkface_dir), "--check-count", "300", "--max-mae-drop", "0.15",
    ])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "qat .tflite" in printed and TFLiteModel(out).delegation().fully_delegated
    assert model_spec.read_tflite_spec(out).outputs == {"age": "age in years, float32 (N, 1)"}


def test_qat_experiment_needs_exactly_one_face_source(tmp_path):
    for sources in ({}, {"faces_dir": tmp_path, "split": tmp_path / "split.json"}):
        with pytest.raises(ValueError, match="exactly one of faces_dir and split"):
            qat_export.qat_experiment("imdb", tmp_path / "out.tflite", **sources)


@pytest.mark.slow
def test_qat_experiment_from_a_runs_split(reference_dir, utkface_dir, tmp_path):
    """``export/qat_ssrnet.py``'s library call: faces from a split's train/test parts, PTQ and float baselines."""
    from ssrnet_tf.data import splits

    paths = sorted(str(p) for p in utkface_dir.glob("*.jpg"))[:400]
    split_path = tmp_path / "split.json"
    splits.Split(parts={"train": paths[:300], "test": paths[300:]}, method="random", seed=0).save(split_path)
    lines = []
    results = qat_export.qat_experiment(
        str(reference_dir / IMDB), tmp_path / "qat.tflite", split=split_path, ptq_out=tmp_path / "ptq.tflite",
        train_count=300, check_count=100, calibration_count=100, epochs=1, float_baseline=True, report=lines.append)
    assert set(results) == {"float", "ptq", "qat", "fully_delegated", "float_finetuned"}
    assert results["fully_delegated"] == 1.0
    assert (tmp_path / "qat.tflite").is_file() and (tmp_path / "ptq.tflite").is_file()
    assert all(np.isfinite(value) for value in results.values())
    # int8 exports stay near the float model on the 100 held-out faces.
    assert abs(results["ptq"] - results["float"]) <= 0.5, results
    assert abs(results["qat"] - results["float_finetuned"]) <= 0.5, results
    assert any(line.startswith("MAE on 100 check faces") for line in lines), lines
    assert any(line.startswith("QAT (1 epoch(s) on 300 faces)") for line in lines), lines
