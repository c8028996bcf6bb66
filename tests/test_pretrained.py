"""The published SSR-Net weights: reproduction, registry and download cache."""

import csv

import h5py
import numpy as np
import pytest

import keras

from ssrnet_tf import pretrained
from ssrnet_tf.export import TFLiteModel, convert_to_tflite

from conftest import REFERENCE_NAMES


def weights_file(reference_dir, name):
    return reference_dir / f"ssrnet_3_3_3_64_1.0_1.0_{name}.h5"


@pytest.fixture(scope="module")
def reference_inputs(reference_dir):
    return np.load(reference_dir / "inputs_bgr_uint8_64.npy").astype("float32")


@pytest.fixture(scope="module")
def expected_ages(reference_dir):
    with open(reference_dir / "expected_ages.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {name: np.array([float(r[name]) for r in rows], "float32") for name in REFERENCE_NAMES}


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_reproduces_published_outputs(reference_dir, reference_inputs, expected_ages, name):
    model = pretrained.load_reference_ssrnet(weights_file(reference_dir, name))
    ages = model.predict(reference_inputs, verbose=0)["age"]
    assert ages.shape == (32, 1)
    np.testing.assert_allclose(ages[:, 0], expected_ages[name], atol=0.01)


def test_reference_scale_factors_stay_inside_the_guard(reference_dir, reference_inputs):
    """The division guard (1 + Delta >= 0.1) never binds on the published models."""
    for name in REFERENCE_NAMES:
        model = pretrained.load_reference_ssrnet(weights_file(reference_dir, name))
        scales = keras.Model(model.input, [model.get_layer(f"stage{k}_scale").output for k in (1, 2, 3)])
        deltas = np.concatenate(scales.predict(reference_inputs, verbose=0), axis=1)
        assert deltas.min() > -0.9, (name, deltas.min())


def test_reference_tflite_matches_expected(reference_dir, reference_inputs, expected_ages, tmp_path):
    model = pretrained.load_reference_ssrnet(weights_file(reference_dir, "imdb"))
    runner = TFLiteModel(convert_to_tflite(model, tmp_path / "imdb.tflite"))
    np.testing.assert_allclose(runner.predict(reference_inputs)[:, 0], expected_ages["imdb"], atol=0.01)


def test_layer_map_covers_the_file_and_the_graph(reference_dir):
    weights = pretrained.read_keras2_weights(weights_file(reference_dir, "imdb"))
    mapping = pretrained.reference_layer_map()
    assert set(weights) == set(mapping)
    model = pretrained.build_ssrnet()
    mapped = {model.get_layer(target).name for target in mapping.values()}
    assert mapped == {layer.name for layer in model.layers if layer.weights}


def test_registry_knows_the_four_published_files():
    assert set(pretrained.REGISTRY) == set(REFERENCE_NAMES)
    for entry in pretrained.REGISTRY.values():
        assert entry.url.startswith("https://github.com/shamangary/SSR-Net/")
        assert len(entry.sha256) == 64


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_registry_hashes_match_the_local_files(reference_dir, name):
    assert pretrained.sha256_of(weights_file(reference_dir, name)) == pretrained.REGISTRY[name].sha256


def test_load_pretrained_from_local_weights_dir(reference_dir, reference_inputs, expected_ages, tmp_path):
    model = pretrained.load_pretrained("wiki", weights_dir=reference_dir, cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(model.predict(reference_inputs[:4], verbose=0)["age"][:, 0], expected_ages["wiki"][:4], atol=0.01)
    assert not (tmp_path / "cache").exists(), "a local hit must not touch the cache"


def test_download_into_cache_checks_hash_and_is_atomic(reference_dir, tmp_path):
    source = weights_file(reference_dir, "morph2")
    entry = pretrained.REGISTRY["morph2"]
    cache = tmp_path / "cache"
    # A real urllib transfer, from a file:// URL since there is no internet here.
    with pytest.raises(ValueError, match="does not match"):
        pretrained.download(source.as_uri(), cache / entry.filename, "0" * 64)
    assert list(cache.iterdir()) == [], "a failed download must leave nothing behind"
    path = pretrained.download(source.as_uri(), cache / entry.filename, entry.sha256)
    assert pretrained.sha256_of(path) == entry.sha256
    assert pretrained.get_weights_path("morph2", cache_dir=cache, download_if_missing=False) == path


def test_corrupt_cache_entry_is_rejected(tmp_path):
    entry = pretrained.REGISTRY["imdb"]
    (tmp_path / entry.filename).write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="SHA-256"):
        pretrained.get_weights_path("imdb", cache_dir=tmp_path)


def test_unknown_name_lists_valid_names():
    with pytest.raises(KeyError, match="megaface_asian"):
        pretrained.get_weights_path("imdb-wiki")


def test_missing_and_invalid_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.h5"):
        pretrained.load_reference_ssrnet(tmp_path / "nothing.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"this is not hdf5")
    with pytest.raises(ValueError, match="bad.h5"):
        pretrained.load_reference_ssrnet(bad)


def test_wrong_architecture_file_is_reported(reference_dir, tmp_path):
    broken = tmp_path / "broken.h5"
    with h5py.File(weights_file(reference_dir, "imdb"), "r") as src, h5py.File(broken, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for name in src:
            src.copy(name, dst)
        group = dst["dense_1"]
        del group["dense_1/kernel:0"]
        group.create_dataset("dense_1/kernel:0", data=np.zeros((7, 3), "float32"))
    with pytest.raises(ValueError, match=r"dense_1/kernel.*\(7, 3\)"):
        pretrained.load_reference_ssrnet(broken)
