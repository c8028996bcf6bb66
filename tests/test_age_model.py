"""Keras Applications backbones with the age heads: build, train, save, export."""

import numpy as np
import pytest

import keras

from ssrnet_tf import heads
from ssrnet_tf.data import utkface
from ssrnet_tf.models.age_model import build_age_model
from ssrnet_tf.models.backbones import BACKBONES, build_backbone

import model_checks  # pylint: disable=wrong-import-order  # tests/ is on sys.path

AGE_HEADS = ("multi_granularity", "label_distribution", "dex", "regression")
FAST_BACKBONES = ("mobilenet_v3_small",)


def faces(n=4, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def labels(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return {"age": rng.uniform(1, 90, n).astype("float32"), "gender": rng.integers(-1, 2, n),
            "race": rng.integers(-1, 5, n)}


@pytest.mark.parametrize(
    "backbone", [pytest.param(name, marks=() if name in FAST_BACKBONES else pytest.mark.slow) for name in sorted(BACKBONES)]
)
def test_every_backbone_with_one_head(backbone):
    """Every backbone carries a head (the heads only see pooled features, so one head proves the backbone)."""
    task = build_age_model(backbone, heads.build_head("multi_granularity"), input_size=32, weights=None)
    ages = keras.ops.convert_to_numpy(task.model(faces(), training=False)["age"])
    assert ages.shape == (4, 1) and np.all(np.isfinite(ages))


def test_every_head_on_one_backbone():
    """Each age head runs forward on one shared backbone model; the full multi-head model trains one step."""
    backbone = build_backbone(FAST_BACKBONES[0], 32, weights=None)
    x = faces()
    for head_name in AGE_HEADS:
        task = build_age_model(backbone, heads.build_head(head_name))
        assert task.model.get_layer(backbone.name) is backbone
        ages = keras.ops.convert_to_numpy(task.model(x, training=False)["age"])
        assert ages.shape == (4, 1) and np.all(np.isfinite(ages)), head_name
    with pytest.raises(ValueError, match="_backbone"):
        build_age_model(keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D()]),
                        heads.build_head("regression"))
    task = build_age_model(backbone, heads.build_head("multi_granularity"),
                           [heads.build_head("multi_task"), heads.build_head("age_group")])
    task.compile(keras.optimizers.Adam(1e-3))
    logs = task.model.train_on_batch(x, task.encode_targets(labels()), return_dict=True)
    assert np.isfinite(logs["loss"])
    assert {"age", "gender", "race", "age_group", "age_g1", "age_g20", "age_regression"} <= set(task.model.output)


@pytest.mark.slow
def test_multi_granularity_multitask_trains_on_real_faces(utkface_dir):
    """Multi-granularity + MSE + gender + race on UTKFace: every loss goes down."""
    table = utkface.read_utkface(utkface_dir)
    rows = np.random.default_rng(3).permutation(len(table))[:256]
    sample = table.take(np.sort(rows))
    images = np.stack([utkface.images.read_bgr(p, size=64) for p in sample.path]).astype("float32")
    keras.utils.set_random_seed(0)
    task = build_age_model("mobilenet_v3_small", heads.build_head("multi_granularity"), [heads.build_head("multi_task")],
                           input_size=64, alpha=0.75, weights=None)
    task.compile(keras.optimizers.Adam(1e-3))
    targets = task.encode_targets(sample.labels())
    before = task.model.evaluate(images, targets, batch_size=64, verbose=0, return_dict=True)
    task.model.fit(images, targets, batch_size=32, epochs=4, verbose=0)
    # Batch-norm statistics after a few steps are unreliable, so compare in training mode.
    after = task.model.evaluate(images, targets, batch_size=64, verbose=0, return_dict=True)
    trained = {k for k, w in task.loss_weights().items() if w > 0}
    for output in trained:
        key = f"{output}_loss"
        assert after[key] < before[key], (key, before[key], after[key])


@pytest.mark.parametrize("head_name", AGE_HEADS)
def test_head_models_save_load_and_convert(head_name, tmp_path):
    task = build_age_model("mobilenet_v3_small", heads.build_head(head_name), input_size=32, weights=None)
    x = faces(3)
    model_checks.run_model_saving_test(task.model, x, tmp_path)
    model_checks.run_litert_export_test(task.model, x, atol=1e-4)
