"""``ssrnet-tf prepare``: labelled raw photos -> aligned-crop dataset."""

import json
import random
import shutil

import cv2
import numpy as np
import pytest

from ssrnet_tf import cli
from ssrnet_tf.data import csv_table
from ssrnet_tf.faces import FaceCropper, Placement, crop_dataset, paste_faces, prepare_crop_dataset
from ssrnet_tf.model_spec import ModelSpec

NO_RACE = "39_1_20170116174525125.jpg.chip.jpg"  # a UTKFace name without the race field


@pytest.fixture(scope="module")
def face_paths(utkface_dir):
    paths = sorted(utkface_dir.glob("*.jpg"))
    random.Random(17).shuffle(paths)
    return paths[:5]


@pytest.fixture
def photo_dir(face_paths, utkface_dir, tmp_path):
    """UTKFace-named photos (some raw-like: padded, in a sub-folder) and bad ones."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(face_paths[0], folder / face_paths[0].name)
    shutil.copy(face_paths[1], folder / "sub" / face_paths[1].name)
    padded = cv2.copyMakeBorder(cv2.imread(str(face_paths[2])), 120, 80, 200, 60, cv2.BORDER_CONSTANT, value=(90, 120, 90))
    cv2.imwrite(str(folder / "sub" / "41_0_1_raw.png"), padded)
    if (utkface_dir / NO_RACE).is_file():
        shutil.copy(utkface_dir / NO_RACE, folder / NO_RACE)
    group, _ = paste_faces((700, 300), [cv2.imread(str(p)) for p in face_paths[3:5]],
                           [Placement((170, 150), 0.0, 1.0), Placement((500, 150), 10.0, 1.2)])
    cv2.imwrite(str(folder / "33_1_3_group.jpg"), group)
    cv2.imwrite(str(folder / "50_0_0_noise.jpg"), np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8))
    (folder / "27_1_2_broken.jpg").write_text("no pixels here")
    (folder / "nolabel.jpg").write_bytes(face_paths[0].read_bytes())
    return folder


def cropper(size=64):
    return FaceCropper(ModelSpec(input_size=(size, size), alignment="similarity", margin=0.03), policy="largest")


def test_prepare_writes_crops_index_and_report(photo_dir, face_paths, tmp_path, capsys):
    out = tmp_path / "dataset"
    code = cli.main(["prepare", str(photo_dir), str(out), "--size", "64"])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "crops of" in stdout

    table = csv_table.read_csv_table(out / "index.csv")  # the generic CSV reader
    names = sorted(p.rsplit("/", 1)[-1] for p in table.path)
    expected = sorted([face_paths[0].name, face_paths[1].name, "41_0_1_raw.png", NO_RACE, "33_1_3_group.jpg"])
    assert names == sorted(n.rsplit(".", 1)[0] + ".jpg" for n in expected)
    for path, age, source in zip(table.path, table.age, table.extra["source"]):
        crop = cv2.imread(path)
        assert crop.shape == (64, 64, 3)
        assert age == float(source.rsplit("/", 1)[-1].split("_")[0])
    row = {p.rsplit("/", 1)[-1]: i for i, p in enumerate(table.path)}
    raw = row["41_0_1_raw.jpg"]
    assert (table.gender[raw], table.race[raw]) == (0, 1)
    assert "sub/41_0_1_raw.png" in table.extra["source"]
    if NO_RACE in expected:
        assert table.race[row[NO_RACE]] == -1 and table.gender[row[NO_RACE]] == 1

    report = json.loads((out / "report.json").read_text())
    counts = report["counts"]
    assert counts["crops"] == len(table) and counts["bad_labels"] == 1
    assert [r["path"].rsplit("/", 1)[-1] for r in report["no_face"]] == ["50_0_0_noise.jpg"]
    assert [r["path"].rsplit("/", 1)[-1] for r in report["unreadable"]] == ["27_1_2_broken.jpg"]
    assert "not a decodable image" in report["unreadable"][0]["error"]
    (several,) = report["several_faces"]
    assert several["faces"] == 2 and several["path"].endswith("33_1_3_group.jpg")
    assert "nolabel.jpg" in report["bad_labels"][0]["path"]


def test_rerun_skips_everything_and_changes_nothing(photo_dir, tmp_path, monkeypatch):
    out = tmp_path / "dataset"
    first = prepare_crop_dataset(photo_dir, out, cropper(), progress=False)
    index, crops = (out / "index.csv").read_bytes(), sorted((out / "images").rglob("*.jpg"))

    def no_detection(*args, **kwargs):
        raise AssertionError("a finished photo was processed again")

    monkeypatch.setattr(crop_dataset, "_process", no_detection)
    second = prepare_crop_dataset(photo_dir, out, cropper(), progress=False)
    assert second["counts"]["reused"] == first["counts"]["photos"]
    assert (out / "index.csv").read_bytes() == index
    assert sorted((out / "images").rglob("*.jpg")) == crops
    assert {k: v for k, v in second["counts"].items() if k != "reused"} == {
        k: v for k, v in first["counts"].items() if k != "reused"}

    with pytest.raises(ValueError, match="other settings.*margin"):
        prepare_crop_dataset(photo_dir, out, FaceCropper(ModelSpec(input_size=(64, 64), margin=0.4), policy="largest"),
                             progress=False)


def test_a_crash_leaves_no_partial_file_and_the_rerun_finishes(photo_dir, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    prepare_crop_dataset(photo_dir, reference, cropper(), progress=False)

    out = tmp_path / "dataset"
    real_process, calls = crop_dataset._process, []

    def crash_on_the_third(*args, **kwargs):
        calls.append(args[0].relative)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the run were killed mid-photo
        return real_process(*args, **kwargs)

    monkeypatch.setattr(crop_dataset, "_process", crash_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        prepare_crop_dataset(photo_dir, out, cropper(), progress=False)
    assert not list(out.rglob("*.tmp")) and not (out / "index.csv").exists()
    for crop in (out / "images").rglob("*.jpg"):
        assert cv2.imread(str(crop)) is not None

    killed = out / "images" / "sub" / "41_0_1_raw.jpg.x1y2z3.tmp"  # what a kill -9 mid-write leaves
    killed.parent.mkdir(parents=True, exist_ok=True)
    killed.write_bytes(b"\xff\xd8 half a JPEG")
    monkeypatch.setattr(crop_dataset, "_process", real_process)
    report = prepare_crop_dataset(photo_dir, out, cropper(), progress=False)
    assert report["counts"]["reused"] == 2 and not killed.exists()
    assert (out / "index.csv").read_bytes() == (reference / "index.csv").read_bytes()


def test_csv_labels(face_paths, tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    shutil.copy(face_paths[0], folder / "alice.jpg")
    shutil.copy(face_paths[1], folder / "bob.jpg")
    labels = tmp_path / "labels.csv"
    labels.write_text("path,age,gender,race\nalice.jpg,31.5,female,asian\nbob.jpg,x,m,\n"
                      "carol.jpg,40,f,0\nalice.jpg,32,f,2\n")
    report = prepare_crop_dataset(folder, tmp_path / "out", cropper(), labels_csv=labels, progress=False)
    table = csv_table.read_csv_table(tmp_path / "out" / "index.csv")
    assert list(table.path) == [str(tmp_path / "out" / "images" / "alice.jpg")]
    assert (table.age[0], table.gender[0], table.race[0]) == (31.5, 1, 2)
    reasons = " ".join(b["reason"] for b in report["bad_labels"])
    assert "not a number" in reasons and "more than once" in reasons
    assert [u["path"].rsplit("/", 1)[-1] for u in report["unreadable"]] == ["carol.jpg"]
    assert "not found" in report["unreadable"][0]["error"]
