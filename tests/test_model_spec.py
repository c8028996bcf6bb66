"""The model spec travels inside .keras and .tflite files."""

import zipfile

import keras
import numpy as np
import pytest

from ssrnet_tf import model_spec
from ssrnet_tf.export import TFLiteModel, convert_to_tflite
from ssrnet_tf.export.flatbuffer import embed_tflite_spec
from ssrnet_tf.models import build_ssrnet


def tiny_multi_output_model():
    image = keras.Input((8,), name="image")
    hidden = keras.layers.Dense(4, name="hidden")(image)
    return keras.Model(image, {
        "age": keras.layers.Dense(1, name="age_dense")(hidden),
        "gender": keras.layers.Dense(2, activation="softmax", name="gender_dense")(hidden),
    })


def test_json_round_trip_and_validation():
    spec = model_spec.ModelSpec(input_size=(64, 64), margin=0.3, architecture="ssrnet(3,3,3)")
    assert model_spec.ModelSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="channel_order"):
        model_spec.ModelSpec(channel_order="yuv")
    with pytest.raises(ValueError, match="margin"):
        model_spec.ModelSpec(margin=-0.1)


def test_keras_file_carries_the_spec(tmp_path):
    model = build_ssrnet()
    spec = model_spec.ModelSpec.for_model(model, architecture="ssrnet(3,3,3)")
    assert spec.input_size == (64, 64) and "age" in spec.outputs
    path = model_spec.save_keras(model, tmp_path / "m.keras", spec)
    loaded, loaded_spec = model_spec.load_keras(path)
    assert loaded_spec == spec
    faces = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(faces, verbose=0)["age"], model.predict(faces, verbose=0)["age"])
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"], "no temporary file may remain"


def test_keras_file_without_spec_and_bad_files(tmp_path):
    model = tiny_multi_output_model()
    model.save(tmp_path / "plain.keras")
    assert model_spec.read_keras_spec(tmp_path / "plain.keras") is None
    (tmp_path / "bad.keras").write_text("not a zip")
    with pytest.raises(ValueError, match="bad.keras"):
        model_spec.read_keras_spec(tmp_path / "bad.keras")
    with pytest.raises(FileNotFoundError, match="none.keras"):
        model_spec.load_keras(tmp_path / "none.keras")
    with pytest.raises(ValueError, match=".keras"):
        model_spec.save_keras(model, tmp_path / "m.h5", model_spec.ModelSpec())
    assert zipfile.is_zipfile(tmp_path / "plain.keras")


def test_tflite_carries_the_spec_and_still_runs():
    model = tiny_multi_output_model()
    flatbuffer = convert_to_tflite(model)
    assert model_spec.read_tflite_spec(flatbuffer) is None
    spec = model_spec.ModelSpec(input_size=(8, 1), alignment="none", margin=0.0)
    tagged = embed_tflite_spec(flatbuffer, spec)
    assert model_spec.read_tflite_spec(tagged) == spec
    retagged = embed_tflite_spec(tagged, model_spec.ModelSpec(margin=0.2))
    assert model_spec.read_tflite_spec(retagged).margin == 0.2
    x = np.random.default_rng(1).normal(size=(3, 8)).astype("float32")
    runner = TFLiteModel(tagged)
    assert runner.output_names == ["age", "gender"]
    outputs = runner.predict_outputs(x)
    expected = model.predict(x, verbose=0)
    for name in ("age", "gender"):
        np.testing.assert_allclose(outputs[name], expected[name], rtol=1e-5, atol=1e-6)


def test_training_checkpoint_with_its_schedule_loads_in_a_fresh_process(tmp_path):
    """``last.keras``/``best.keras`` keep the optimizer and its OneCycle schedule; load_keras registers it."""
    import subprocess
    import sys

    from ssrnet_tf.training.schedules import OneCycle

    model = tiny_multi_output_model()
    model.compile(keras.optimizers.Adam(OneCycle(peak=0.01, total_steps=10)), loss="mse")
    model.save(tmp_path / "last.keras")
    code = ("import sys; from ssrnet_tf import model_spec; "
            "model, _ = model_spec.load_keras(sys.argv[1]); print(model.optimizer.get_config()['learning_rate']['class_name'])")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "last.keras")], capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "OneCycle"
