"""QAT and int8 export of Keras Applications backbones with an age head."""

import importlib.util
import time

import numpy as np
import pytest

import keras

from ssrnet_tf import cli, heads, model_spec
from ssrnet_tf.data import utkface
from ssrnet_tf.export import TFLiteModel
from ssrnet_tf.layers.pixel_normalization import pixel_normalization_for
from ssrnet_tf.models import build_ssrnet
from ssrnet_tf.models.age_model import build_age_model

pytest.importorskip("tf_keras")
if importlib.util.find_spec("tensorflow_model_optimization") is None:  # importing it has side effects
    pytest.skip("tensorflow-model-optimization is not installed", allow_module_level=True)

from ssrnet_tf.export import qat, qat_backbone, qat_export, tf_keras_layers, tf_keras_twin  # noqa: E402  (needs tf_keras)
from ssrnet_tf.models.weight_transfer import transfer_weights  # noqa: E402

SIZE = 64
ALPHA = 0.35
#: Largest int8 - float MAE difference accepted on real faces, years.
MAX_PTQ_MAE_DROP = 0.5
MAX_QAT_MAE_DROP = 0.5


def drawn_faces(n=4, size=32):
    from ssrnet_tf.data.images import resize_square
    from ssrnet_tf.faces import synthetic_face

    return np.stack([resize_square(synthetic_face(200, seed=s), size) for s in range(n)]).astype("float32")


def leaf_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer


def randomize(model, seed=0):
    """Random weights, positive BN variances (tests the weight order of every layer)."""
    rng = np.random.default_rng(seed)
    for layer in leaf_layers(model):
        values = [rng.normal(0.0, 0.1, w.shape).astype("float32") for w in layer.get_weights()]
        if isinstance(layer, keras.layers.BatchNormalization):
            values[0] = rng.uniform(0.5, 1.5, values[0].shape).astype("float32")
            values[3] = rng.uniform(0.5, 2.0, values[3].shape).astype("float32")
        if values:
            layer.set_weights(values)
    return model


def age_model(backbone, head, size=32, alpha=ALPHA, **kwargs):
    return build_age_model(backbone, heads.build_head(head), input_size=size, alpha=alpha, weights=None, **kwargs).model


def mae(predictions, ages):
    return float(np.abs(np.asarray(predictions).reshape(-1) - ages).mean())


# === tf_keras twin ===


@pytest.mark.parametrize("head", ["label_distribution", "multi_granularity"])
def test_twin_matches_keras3(head):
    model = randomize(age_model("mobilenet_v2", head, dropout=0.2))
    twin = tf_keras_twin.to_tf_keras_twin(model)
    assert not any(hasattr(layer, "layers") for layer in twin.layers), "the twin must be flat for tfmot"
    assert {layer.name for layer in twin.layers} >= {layer.name for layer in model.layers[2:]}  # the head
    differences = tf_keras_twin.max_twin_difference(model, twin, drawn_faces())
    assert set(differences) == set(model.output)
    assert max(differences.values()) < 1e-3, differences


@pytest.mark.parametrize("mode", ["tf", "caffe", "torch", "rgb"])
def test_pixel_normalization_as_a_1x1_convolution_is_exact(mode):
    layer = pixel_normalization_for(mode)
    conv, weights = tf_keras_twin._pixel_normalization_conv(layer)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    conv.build(pixels.shape)
    conv.set_weights(weights)
    assert not conv.trainable
    np.testing.assert_allclose(np.asarray(conv(pixels)), np.asarray(layer(pixels)), rtol=1e-6, atol=1e-5)


def test_width_multiplier_is_read_off_the_weights():
    model = age_model("mobilenet", "dex", alpha=0.5)
    twin = tf_keras_twin.build_tf_keras_twin(model)
    assert twin.get_layer("conv1").filters == model.get_layer("mobilenet_backbone").layers[-1].get_layer("conv1").filters
    transfer_weights(model, twin)  # every shape matches


def test_unsupported_backbones_and_models_are_named():
    model = age_model("mobilenet_v3_small", "label_distribution", alpha=0.75)
    with pytest.raises(ValueError, match=r"cannot quantize .*Multiply"):
        qat_backbone.quantize_aware_backbone_model(model)
    with pytest.raises(ValueError, match="not a backbone age model"):
        qat_backbone.quantize_aware_backbone_model(build_ssrnet())


def test_minimalistic_mobilenet_v3_is_quantized_whole():
    """The shipped compact model's backbone: every backbone layer int8 in the QAT model."""
    model = age_model("mobilenet_v3_small_minimalistic", "label_distribution", alpha=0.75)
    twin = tf_keras_twin.to_tf_keras_twin(model)
    backbone = model.get_layer("mobilenet_v3_small_minimalistic_backbone")
    assert qat_backbone.unsupported_backbone_layers(twin, [l.name for l in leaf_layers(backbone)]) == []
    quantized = qat_backbone.quantize_aware_backbone_model(model, drawn_faces(4), twin=twin)
    np.testing.assert_allclose(np.asarray(quantized(drawn_faces(2))), model.predict(drawn_faces(2), verbose=0)["age"],
                               atol=3.0)


def test_weight_mismatch_is_reported():
    model = age_model("mobilenet_v2", "label_distribution")
    other = age_model("mobilenet_v2", "label_distribution", alpha=0.5)
    twin = tf_keras_twin.build_tf_keras_twin(other)
    with pytest.raises(ValueError, match="shapes"):
        transfer_weights(model, twin)


def test_expected_value_twin_round_trip():
    layer = tf_keras_layers.TfKerasExpectedValue([0.0, 10.0, 20.0], name="expectation")
    np.testing.assert_allclose(np.asarray(layer(np.array([[0.5, 0.25, 0.25]], "float32"))), [[7.5]])
    assert tf_keras_layers.TfKerasExpectedValue.from_config(layer.get_config()).values == [0.0, 10.0, 20.0]
    with pytest.raises(ValueError, match="at least one"):
        tf_keras_layers.TfKerasExpectedValue([])


@pytest.mark.slow
def test_one_call_qat_export_of_mobilenet_v1():
    """The second QAT backbone, end to end on drawn faces: runs, fully delegated."""
    model = randomize(age_model("mobilenet", "label_distribution", alpha=0.25), seed=3)
    faces = drawn_faces(16)
    # Calibrated, not fine-tuned (the fine-tuning is tested on real faces below).
    flatbuffer = qat_export.qat_to_tflite(model, faces, np.linspace(1, 80, 16), epochs=0)
    runner = TFLiteModel(flatbuffer, num_threads=1)
    assert runner.delegation().fully_delegated, runner.delegation().summary()
    assert model_spec.read_tflite_spec(flatbuffer).outputs == {"age": "age in years, float32 (N, 1)"}
    ages = runner.predict(faces)
    assert ages.shape == (16, 1) and np.all((ages >= 0) & (ages <= 100))


# === Trained on real faces ===


@pytest.fixture(scope="module")
def real_faces(utkface_dir):
    """2,000 training faces and 600 held-out faces at 64 px."""
    faces, ages, _ = utkface.load_utkface_arrays(utkface_dir, limit=2600, size=SIZE, seed=3)
    return faces[:2000], ages[:2000], faces[2000:], ages[2000:]


def _fit(model, losses, loss_weights, faces, targets, epochs, learning_rate=2e-3):
    keras.utils.set_random_seed(0)
    model.compile(keras.optimizers.Adam(learning_rate), loss=losses, loss_weights=loss_weights)
    model.fit(faces, targets, batch_size=32, epochs=epochs, verbose=0)


@pytest.fixture(scope="module")
def trained_models(real_faces):
    """A MobileNetV2 (alpha 0.35) LDL model trained from scratch, and an MG head on its backbone.

    Keras' MobileNetV2 BN momentum of 0.999 would leave the moving statistics
    near their initial values after a few hundred steps; 0.9 makes the
    inference-mode model usable after five short epochs.
    """
    faces, ages, _, _ = real_faces
    keras.utils.set_random_seed(0)
    ldl_task = build_age_model(
        "mobilenet_v2", heads.LabelDistributionHead(), input_size=SIZE, alpha=ALPHA, weights=None
    )
    for layer in leaf_layers(ldl_task.model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    labels = {"age": ages}
    _fit(ldl_task.model, ldl_task.losses(), ldl_task.loss_weights(), faces, ldl_task.encode_targets(labels), 5)
    # The multi-granularity head on the trained backbone (frozen): head training only.
    mg_task = build_age_model(
        "mobilenet_v2", heads.MultiGranularityHead(), input_size=SIZE, alpha=ALPHA, weights=None
    )
    backbone = mg_task.model.get_layer("mobilenet_v2_backbone")
    backbone.set_weights(ldl_task.model.get_layer("mobilenet_v2_backbone").get_weights())
    backbone.trainable = False
    _fit(mg_task.model, mg_task.losses(), mg_task.loss_weights(), faces, mg_task.encode_targets(labels), 2)
    return {"label_distribution": ldl_task.model, "multi_granularity": mg_task.model}


def _float_mae(model, faces, ages):
    return mae(model.predict(faces, verbose=0, batch_size=200)["age"], ages)


@pytest.mark.slow
@pytest.mark.parametrize("head", ["label_distribution", "multi_granularity"])
def test_ptq_int8_passes_the_export_check(head, trained_models, real_faces, utkface_dir, tmp_path, capsys):
    """``ssrnet-tf export --quantize int8 --check --max-mae-drop`` of a trained backbone + head."""
    _, train_ages, faces, ages = real_faces
    model = trained_models[head]
    float_mae = _float_mae(model, faces, ages)
    mean_predictor_mae = mae(np.full_like(ages, train_ages.mean()), ages)
    assert float_mae < mean_predictor_mae - 1.0, (float_mae, mean_predictor_mae)  # a model, not a constant
    model_path = model_spec.save_keras(model, tmp_path / f"{head}.keras", model_spec.ModelSpec.for_model(model))
    out = tmp_path / f"{head}_int8.tflite"
    code = cli.main([
        "export", str(model_path), "--out", str(out), "--quantize", "int8",
        "--calibration-dir", str(utkface_dir), "--calibration-count", "200",
        "--check", str(utkface_dir), "--check-count", "300", "--max-mae-drop", str(MAX_PTQ_MAE_DROP),
    ])
    printed = capsys.readouterr().out
    with capsys.disabled():
        print(f"\nmobilenet_v2 a{ALPHA} {SIZE}px + {head}: held-out float MAE {float_mae:.3f} "
              f"(mean predictor {mean_predictor_mae:.3f}); " + " ".join(printed.split()))
    assert code == 0, printed
    assert TFLiteModel(out).delegation().fully_delegated


@pytest.mark.slow
def test_twin_and_qat_int8_export_on_real_faces(trained_models, real_faces, tmp_path):
    """Twin equal on real faces; QAT int8 fully delegated and as accurate as float."""
    start = time.perf_counter()
    train_faces, train_ages, faces, ages = real_faces
    model = trained_models["label_distribution"]
    twin = tf_keras_twin.to_tf_keras_twin(model)
    difference = tf_keras_twin.max_twin_difference(model, twin, faces)
    assert max(difference.values()) < 1e-3, difference

    qat_model = qat_backbone.quantize_aware_backbone_model(model, train_faces[:500], twin=twin)
    wrapped = {layer.layer.name for layer in qat_model.layers if hasattr(layer, "layer")}
    assert "Conv1" in wrapped and "mobilenet_v2_preprocessing" in wrapped and "block_16_project_BN" in wrapped
    assert not wrapped & {"label_distribution_distribution", "label_distribution_age"}  # the float head
    assert not any("_BN/" in variable.name for variable in qat_model.trainable_weights)  # BN frozen

    qat.qat_finetune(qat_model, train_faces[:600], train_ages[:600], epochs=1)
    simulated_mae = mae(qat_model.predict(faces, verbose=0, batch_size=200), ages)
    spec = model_spec.ModelSpec.for_model(model, architecture="mobilenet_v2 LDL QAT int8", outputs={"age": ""})
    path = tmp_path / "qat.tflite"
    flatbuffer = qat.export_qat_tflite(qat_model, path, spec=spec)
    runner = TFLiteModel(path, num_threads=1)
    report = runner.delegation()
    qat_mae = mae(runner.predict(faces), ages)
    float_mae = _float_mae(model, faces, ages)
    print(
        f"\nQAT int8 mobilenet_v2 a{ALPHA} {SIZE}px + LDL on {len(ages)} held-out UTKFace faces: twin max |diff| "
        f"{max(difference.values()):.1e} | MAE float {float_mae:.3f} | 1 QAT epoch on 600 faces: Keras simulation "
        f"{simulated_mae:.3f}, int8 .tflite {qat_mae:.3f} years; {len(flatbuffer) / 1024:.0f} KiB; "
        f"XNNPACK {report.summary()}; {time.perf_counter() - start:.0f} s"
    )
    assert report.fully_delegated, report.summary()
    assert model_spec.read_tflite_spec(path) == spec
    # The .tflite also stores the head's dense kernel as int8 (hybrid), which the simulation does not.
    assert abs(qat_mae - simulated_mae) <= 0.15, (qat_mae, simulated_mae)
    assert qat_mae - float_mae <= MAX_QAT_MAE_DROP, (qat_mae, float_mae)
