"""The speed switches: what auto picks per device, bad values, XLA's fallback, and the throughput benchmark."""

import json
import logging

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from ssrnet_tf.benchmarks import training_throughput
from ssrnet_tf.errors import ConfigError
from ssrnet_tf.faces import synthetic
from ssrnet_tf.training import config as config_lib
from ssrnet_tf.training import execution


def test_auto_resolves_per_device():
    cpu = execution.resolve_execution(device="cpu")
    assert (cpu.jit_compile, cpu.mixed_precision, cpu.steps_per_execution) == (False, "float32", 1)
    gpu = execution.resolve_execution(device="gpu")
    assert (gpu.jit_compile, gpu.mixed_precision, gpu.steps_per_execution) == (True, "mixed_float16", 1)
    tpu = execution.resolve_execution(device="tpu")
    assert (tpu.jit_compile, tpu.mixed_precision, tpu.steps_per_execution) == (True, "mixed_bfloat16", 32)
    assert "XLA off, float32, 1 step per execution" in cpu.describe()


def test_every_switch_can_be_set_and_turned_off():
    chosen = execution.resolve_execution("on", "mixed_bfloat16", 8, device="cpu")
    assert (chosen.jit_compile, chosen.mixed_precision, chosen.steps_per_execution) == (True, "mixed_bfloat16", 8)
    off = execution.resolve_execution("off", "off", 1, device="gpu")
    assert (off.jit_compile, off.mixed_precision, off.steps_per_execution) == (False, "float32", 1)
    assert execution.resolve_execution(True, True, device="cpu").mixed_precision == "mixed_float16"  # YAML's bare on
    assert execution.resolve_execution(False, False, device="gpu").jit_compile is False


@pytest.mark.parametrize("key, value, listed", [
    ("jit_compile", "maybe", "'auto', 'on', 'off'"),
    ("mixed_precision", "half", "'mixed_float16', 'mixed_bfloat16'"),
    ("steps_per_execution", 0, "'auto' or an integer >= 1"),
    ("steps_per_execution", "many", "'auto' or an integer >= 1"),
    ("strategy", "cluster", "'multi_worker'"),
])
def test_unknown_switch_values_are_errors_that_list_the_choices(key, value, listed):
    with pytest.raises(ConfigError, match=f"run.{key}") as error:
        config_lib.load_config("ssrnet", [f"run.{key}={value}"])
    assert listed in str(error.value)
    if key != "strategy":
        with pytest.raises(ConfigError, match=listed.split(",")[0]):
            execution.resolve_execution(**{key: value})


def test_config_reads_the_switches():
    config = config_lib.load_config("ssrnet", ["run.jit_compile=off", "run.mixed_precision=mixed_bfloat16",
                                               "run.steps_per_execution=4"])
    assert (config.run.jit_compile, config.run.mixed_precision, config.run.steps_per_execution) == \
        ("off", "mixed_bfloat16", 4)
    defaults = config_lib.load_config("ssrnet").run
    assert (defaults.jit_compile, defaults.mixed_precision, defaults.steps_per_execution) == ("auto", "auto", "auto")


def test_isa_level_from_cpu_flags():
    assert execution.cpu_isa_level(frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})) == \
        "AVX-512 (VNNI, BF16)"
    assert execution.cpu_isa_level(frozenset({"avx2", "fma"})) == "AVX2"
    assert execution.cpu_isa_level(frozenset({"avx512f", "amx_tile", "amx_bf16", "amx_int8"})) == "AMX (BF16, INT8)"
    assert execution.cpu_isa_level(frozenset({"asimd"})) == "NEON"
    assert execution.cpu_isa_level(frozenset()) == "unknown"


@keras.saving.register_keras_serializable(package="ssrnet_tf_test")
class HostRoundTrip(keras.layers.Layer):
    """Identity through a host (NumPy) call: an op XLA has no kernel for."""

    def call(self, inputs):
        result = tf.numpy_function(lambda x: x, [inputs], tf.float32)
        result.set_shape(inputs.shape)
        return result


def _tiny_model(with_host_op):
    inputs = keras.Input((4,))
    x = HostRoundTrip()(inputs) if with_host_op else inputs
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def _batches():
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1, keepdims=True))).batch(8)


def test_xla_that_cannot_compile_an_op_falls_back_with_one_warning(caplog):
    model = _tiny_model(with_host_op=True)
    wanted = execution.resolve_execution("on", "off", 1, device="cpu")
    with caplog.at_level(logging.WARNING, logger="ssrnet_tf.training.execution"):
        used = execution.compile_model(model, wanted, _batches(), optimizer="adam", loss="mse")
    assert used.jit_compile is False and model.jit_compile is False
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1 and "XLA cannot compile" in lines[0] and "PyFunc" in lines[0], lines
    before = [w.numpy().copy() for w in model.weights]
    history = model.fit(_batches(), epochs=2, verbose=0, shuffle=False)  # trains, no crash mid-run
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before, model.weights))


def test_xla_stays_on_when_it_compiles_and_the_probe_changes_nothing():
    model = _tiny_model(with_host_op=False)
    weights = [w.numpy().copy() for w in model.weights]
    used = execution.compile_model(model, execution.resolve_execution("on", "off", 2, device="cpu"), _batches(),
                                   optimizer="adam", loss="mse")
    assert used.jit_compile is True and model.jit_compile is True and used.steps_per_execution == 2
    for before, after in zip(weights, model.weights):
        np.testing.assert_array_equal(before, after.numpy())
    assert np.isfinite(model.fit(_batches(), epochs=1, verbose=0, shuffle=False).history["loss"]).all()


def test_combinations_follow_the_device():
    cpu_bf16 = training_throughput.combinations("cpu", flags={"avx512_bf16"})
    assert {c.mixed_precision for c in cpu_bf16} == {"float32", "mixed_bfloat16"} and len(cpu_bf16) == 8
    plain = training_throughput.combinations("cpu", flags={"avx2"})
    assert {c.mixed_precision for c in plain} == {"float32"} and len(plain) == 4
    assert {c.mixed_precision for c in training_throughput.combinations("gpu")} == {"float32", "mixed_float16"}


@pytest.mark.slow
def test_training_benchmark_times_the_real_pipeline_and_reports(tmp_path, monkeypatch):
    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(40):
        cv2.imwrite(str(faces / f"{10 + i}_{i % 2}_{i % 5}_2017010{i % 9}.jpg.chip.jpg"),
                    synthetic.synthetic_face(80, seed=i))
    monkeypatch.setenv("SSRNET_TF_CACHE_DIR", str(tmp_path / "cache"))
    only = [training_throughput.Combination("off", "float32", 1), training_throughput.Combination("off", "float32", 2)]
    document = training_throughput.benchmark_training(
        "ssrnet", [f"data.path={faces}", "data.batch_size=4", "data.augment=[horizontal_flip]"],
        steps=4, warmup=2, only=only, isolate=False, rounds=1)
    assert document["format"] == training_throughput.FORMAT and document["device"] == "cpu"
    assert document["machine"]["isa"] and document["train_faces"] > 20
    assert document["face_cache"]["path"].startswith(str(tmp_path / "cache"))
    first, second = document["results"]
    assert first["auto"] and not second["auto"] and second["in_effect"]["steps_per_execution"] == 2
    for record in document["results"]:
        assert record["faces_per_second"] > 0 and record["peak_memory_mib"] > 0 and record["steps"] == 4
        assert record["seconds_per_epoch"] == pytest.approx(document["train_faces"] / record["faces_per_second"], abs=0.01)
    table = training_throughput.format_table(document)
    assert "| off | float32 | 2 |" in table and "(auto)" in table and "machine:" in table
    path = training_throughput.write_json(document, tmp_path / "bench.json")
    assert json.loads(path.read_text())["results"][0]["faces_per_second"] == first["faces_per_second"]
    # Each combination in its own process, two rounds: the median and both figures.
    isolated = training_throughput.benchmark_training(
        "ssrnet", [f"data.path={faces}", "data.batch_size=4", "data.augment=[]"], steps=3, warmup=1,
        only=only[:1], rounds=2)
    (record,) = isolated["results"]
    assert record["rounds"] == 2 and len(record["faces_per_second_rounds"]) == 2
    low, high = record["faces_per_second_range"]
    assert record["faces_per_second"] == high >= low and record["auto"]
