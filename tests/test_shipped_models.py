"""The models shipped in the package: hashes, Keras and int8 agreement, the model cards' figures."""

import json

import numpy as np
import pytest

from ssrnet_tf import pretrained
from ssrnet_tf.data import images
from ssrnet_tf.faces import synthetic_face
from ssrnet_tf.faces.age_predictor import AgeModel, load_age_model

SHIPPED = ("ssrnet-utkface", "compact-utkface")


def test_the_package_ships_both_models_with_hashes_and_cards():
    shipped = pretrained.shipped_models()
    assert set(SHIPPED) <= set(shipped)
    assert pretrained.default_model_name() in shipped
    for name in SHIPPED:
        entry = shipped[name]
        assert "non-commercial research" in entry.licence
        for kind in ("keras", "int8"):
            path = pretrained.shipped_path(name if kind == "keras" else name + pretrained.INT8_SUFFIX)
            assert pretrained.sha256_of(path) == entry.sha256[kind]
        card = (pretrained.SHIPPED_DIR / entry.files["card"]).read_text()
        assert "non-commercial research" in card and f"{entry.figures['figures']['float']['mae']:.3f}" in card
        assert entry.figures["sizes_kib"]["int8"] <= 1024  # at most 1 MB of int8 weights
    with pytest.raises(KeyError, match="shipped"):
        pretrained.shipped_path("no-such-model")


def test_a_damaged_shipped_file_is_refused(tmp_path, monkeypatch):
    name = SHIPPED[0]
    entry = pretrained.shipped_models()[name]
    damaged = tmp_path / entry.files["keras"]
    damaged.write_bytes(b"not the model")
    (tmp_path / "models.json").write_text((pretrained.SHIPPED_DIR / "models.json").read_text())
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", tmp_path)
    with pytest.raises(ValueError, match="SHA-256"):
        pretrained.shipped_path(name)


@pytest.mark.parametrize("name", SHIPPED)
def test_keras_and_int8_agree_on_the_drawn_face(name):
    keras_model = load_age_model(name)
    int8_model = load_age_model(name + pretrained.INT8_SUFFIX)
    size = int(keras_model.spec.input_size[0])
    face = images.resize_square(synthetic_face(200, seed=0), size)[np.newaxis].astype(np.float32)
    keras_age = float(keras_model.predict(face)["age"].reshape(-1)[0])
    int8_age = float(int8_model.predict(face)["age"].reshape(-1)[0])
    assert 0.0 <= keras_age <= 101.0
    # One face: int8 rounding moves a single MobileNetV3 prediction by up to ~1 year
    # (test split: mean shift 0.16); a broken file is off by tens of years.
    assert abs(keras_age - int8_age) < 2.0, (keras_age, int8_age)


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_test_split_mae_is_the_model_cards(name, utkface_dir):
    from ssrnet_tf.evaluation import predict_folder

    entry = pretrained.shipped_models()[name]
    split = pretrained.SHIPPED_DIR / entry.files["test_split"]
    for kind, registry_name in (("float", name), ("int8", name + pretrained.INT8_SUFFIX)):
        ages, predictions, _ = predict_folder(registry_name, utkface_dir, split=split, part="test")
        card = entry.figures["figures"][kind]
        assert ages.size == card["test_faces"] == len(json.loads(split.read_text())["parts"]["test"])
        assert float(np.abs(predictions - ages).mean()) == pytest.approx(card["mae"], abs=0.002)
    float_mae = entry.figures["figures"]["float"]["mae"]
    assert entry.figures["figures"]["int8"]["mae"] <= float_mae + 0.2  # int8 within 0.2 years of float


def test_flip_average_is_the_mean_over_the_face_and_its_mirror():
    def run(batch):  # an asymmetric "model": the mean of the left half
        return {"age": batch[:, :, : batch.shape[2] // 2].mean(axis=(1, 2, 3))[:, None]}

    batch = np.zeros((2, 4, 4, 3), np.float32)
    batch[:, :, :2] = 10.0  # left half bright
    plain = AgeModel("m", "keras", None, "", run)
    flipped = AgeModel("m", "keras", None, "", run, flip_average=True)
    np.testing.assert_allclose(plain.predict(batch)["age"], 10.0)
    np.testing.assert_allclose(flipped.predict(batch)["age"], 5.0)


def test_a_card_names_the_commit_that_trained_the_model_not_the_one_that_ships_it():
    from ssrnet_tf.export import shipping
    from ssrnet_tf.utils import provenance

    assert shipping.training_commit({"code": {"commit": "abc1234", "dirty": False}}) == "abc1234"
    assert shipping.training_commit({"code": {"commit": "abc1234", "dirty": True}}) == "abc1234 + uncommitted changes"
    assert shipping.training_commit({}) == "not recorded by the run"  # never today's HEAD
    version = provenance.code_version()
    assert version["commit"] is None or len(version["commit"]) >= 7
    for entry in pretrained.REGISTRY.values():
        training = getattr(entry, "figures", None) or {}
        if "training" in training:
            assert training["training"]["commit"].startswith("not recorded") or len(training["training"]["commit"]) >= 7
