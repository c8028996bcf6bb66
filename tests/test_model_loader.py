"""One loader: the same published weights give the same crop spec and ages in every format.

(The files ``bench`` exports: ``tests/test_export_commands.py``.)
"""

import argparse
import random

import numpy as np
import pytest

from ssrnet_tf import cli, model_spec
from ssrnet_tf.data import images
from ssrnet_tf.faces import load_age_model

IMDB = "ssrnet_3_3_3_64_1.0_1.0_imdb.h5"
CROP_FIELDS = ("input_size", "channel_order", "pixel_range", "alignment", "margin")


def crop_of(spec):
    return {field: getattr(spec, field) for field in CROP_FIELDS}


PUBLISHED_CROP = crop_of(model_spec.published_spec("imdb"))


@pytest.fixture(scope="module")
def faces(utkface_dir):
    paths = sorted(utkface_dir.glob("*.jpg"))
    random.Random(5).shuffle(paths)
    return np.stack([images.read_bgr(path, size=64) for path in paths[:6]]).astype(np.float32)


@pytest.fixture(scope="module")
def by_name(reference_dir):
    return load_age_model("imdb", weights_dir=reference_dir)


@pytest.fixture(scope="module")
def exported(reference_dir, tmp_path_factory):
    """``imdb`` exported by ``ssrnet-tf export`` (float32)."""
    path = tmp_path_factory.mktemp("export") / "imdb.tflite"
    assert cli.main(["export", "imdb", "--weights-dir", str(reference_dir), "--out", str(path)]) == 0
    return path


def test_published_crop_is_the_original_demo_crop():
    assert PUBLISHED_CROP == {"input_size": (64, 64), "channel_order": "bgr", "pixel_range": "0-255",
                              "alignment": "none", "margin": 0.4}
    assert model_spec.default_spec() == model_spec.ModelSpec()


def test_name_h5_keras_and_tflite_agree(by_name, exported, reference_dir, faces, tmp_path):
    expected = by_name.ages(faces)
    assert by_name.kind == "published" and crop_of(by_name.spec) == PUBLISHED_CROP
    keras_path = by_name.save_keras(tmp_path / "imdb.keras")
    for source, tolerance in ((reference_dir / IMDB, 0.0), (keras_path, 1e-4), (exported, 1e-3)):
        model = load_age_model(source)
        assert crop_of(model.spec) == PUBLISHED_CROP, source
        assert model.spec_source.startswith(("model file", "default for published")), source
        np.testing.assert_allclose(model.ages(faces), expected, atol=tolerance, err_msg=str(source))


def test_a_tflite_file_cannot_be_exported_again(exported, tmp_path, capsys):
    capsys.readouterr()
    assert cli.main(["export", str(exported), "--out", str(tmp_path / "again.tflite")]) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and str(exported) in error[0] and ".tflite file cannot be converted again" in error[0]


def test_bench_loads_shipped_published_or_random_weights(reference_dir, capsys):
    from ssrnet_tf.commands import bench  # pylint: disable=import-outside-toplevel,protected-access

    shipped, weights = bench._load_model(argparse.Namespace(weights="ssrnet-utkface", weights_dir=None))
    assert weights == "shipped ssrnet-utkface" and shipped.spec == load_age_model("ssrnet-utkface").spec
    baseline = bench._published_baseline(argparse.Namespace(weights="ssrnet-utkface", weights_dir=str(reference_dir)),
                                         shipped.keras_model)
    assert "published SSR-Net graph with its imdb weights" in capsys.readouterr().out
    assert baseline.count_params() == shipped.keras_model.count_params()
    random_model, weights = bench._load_model(argparse.Namespace(weights="no_such_weights", weights_dir=None))
    assert weights == "random" and random_model.spec.training_data == bench.RANDOM_WEIGHTS
