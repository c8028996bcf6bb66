"""ssrnet-tf evaluate --split: only the faces of one part of a run's split."""

import json

import cv2
import numpy as np
import pytest

from ssrnet_tf import cli, model_spec
from ssrnet_tf.data import splits
from ssrnet_tf.evaluation import predict_folder
from ssrnet_tf.models import build_ssrnet

AGES = (3, 12, 25, 38, 51, 64, 77, 90)


@pytest.fixture(name="faces")
def _faces(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index, age in enumerate(AGES):
        cv2.imwrite(str(folder / f"{age}_0_0_{index}.jpg"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return folder


@pytest.fixture(name="model_path")
def _model_path(tmp_path):
    model = build_ssrnet()
    return model_spec.save_keras(model, tmp_path / "m.keras", model_spec.ModelSpec.for_model(model))


def _split(faces, tmp_path):
    paths = [str(p) for p in sorted(faces.iterdir())]
    return splits.Split({"train": paths[:5], "test": paths[5:]}, "random", 0).save(tmp_path / "split.json")


def test_split_keeps_only_the_part(faces, model_path, tmp_path):
    split = _split(faces, tmp_path)
    y_true, y_pred, info = predict_folder(str(model_path), faces, split=split)
    assert sorted(y_true.tolist()) == sorted(AGES[5:]) and y_pred.shape == (3,)
    assert info["split"] == f"test part of {split}"
    y_true, _, _ = predict_folder(str(model_path), faces, split=split, part="train")
    assert len(y_true) == 5


def test_evaluate_command_with_split(faces, model_path, tmp_path):
    split = _split(faces, tmp_path)
    assert cli.main(["evaluate", "--model", str(model_path), "--data", str(faces), "--split", str(split),
                     "--output-dir", str(tmp_path / "report")]) == 0
    assert json.loads((tmp_path / "report" / "report.json").read_text())["count"] == 3


def test_unknown_part_and_foreign_paths_are_errors(faces, model_path, tmp_path):
    split = _split(faces, tmp_path)
    with pytest.raises(ValueError, match="no part 'val'"):
        predict_folder(str(model_path), faces, split=split, part="val")
    foreign = splits.Split({"test": [str(tmp_path / "elsewhere" / "5_0_0_x.jpg")]}, "random", 0).save(tmp_path / "f.json")
    with pytest.raises(ValueError, match="not in"):
        predict_folder(str(model_path), faces, split=foreign)
