"""tf.data input pipeline: formats, targets, cache, determinism, and bad input that is skipped and reported."""

import json
import logging
import os
import shutil

import cv2
import numpy as np
import pytest
import tensorflow as tf

from ssrnet_tf.data import augment, csv_table, file_check, images, pipeline, sample_table, utkface
from ssrnet_tf.faces import synthetic

BAD_KINDS = ("empty", "truncated", "text", "missing", "label")


def _drawn_faces(folder, count):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"face_{i:02d}.jpg"
        cv2.imwrite(str(path), synthetic.synthetic_face(96, seed=i))
        paths.append(path)
    return paths


def _plant_bad_files(folder, donor):
    """Writes one file of each bad kind; returns {kind: csv row}."""
    (folder / "empty.jpg").write_bytes(b"")
    data = donor.read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "notes.jpg").write_text("this is a text file, not a JPEG\n")
    return {
        "empty": ["empty.jpg", 20], "truncated": ["truncated.jpg", 21], "text": ["notes.jpg", 22],
        "missing": ["gone.jpg", 23], "label": ["unlabelled.jpg", "unknown"],
    }


def _csv_with_bad_rows(folder, good_paths):
    bad = _plant_bad_files(folder, good_paths[0])
    shutil.copy(good_paths[0], folder / "unlabelled.jpg")  # a fine image whose label is unusable
    rows = [[p.name, 10 + i] for i, p in enumerate(good_paths)] + list(bad.values())
    with open(folder / "faces.csv", "w") as handle:
        handle.write("path,age\n" + "".join(f"{p},{a}\n" for p, a in rows))
    return csv_table.read_csv_table(folder / "faces.csv")


def _check_bad_input_handled(folder, good_paths, caplog):
    table = _csv_with_bad_rows(folder, good_paths)
    run_dir = folder / "run"
    config = pipeline.PipelineConfig(input_size=64, batch_size=4, seed=0)
    with caplog.at_level(logging.INFO):
        dataset, report = pipeline.make_dataset(table, config, run_dir=run_dir, name="train")
        ages = np.concatenate([y.numpy() for _, y in dataset])
    good_ages = [10 + i for i in range(len(good_paths))]
    assert sorted(ages.tolist()) == good_ages  # every good face, once
    counts = report.counts()
    assert counts["read"] == len(good_paths) + 5 and counts["skipped"] == 5 and counts["used"] == len(good_paths)
    assert counts["skipped_label"] == 1 and counts["skipped_file"] == 4
    written = json.loads((run_dir / "input_report_train.json").read_text())
    assert written["counts"] == counts
    reasons = {os.path.basename(s["path"]): s["reason"] for s in written["skipped"]}
    assert set(reasons) == {"empty.jpg", "truncated.jpg", "notes.jpg", "gone.jpg", "unlabelled.jpg"}
    assert "empty" in reasons["empty.jpg"] and "not decodable" in reasons["truncated.jpg"]
    assert "not an image" in reasons["notes.jpg"] and "missing" in reasons["gone.jpg"]
    assert "unknown" in reasons["unlabelled.jpg"]
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for name in reasons:
        assert name in warnings, f"no warning names {name}"
    info = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert f"read {counts['read']}, skipped 5" in info and f"used {len(good_paths)}" in info


@pytest.mark.slow
def test_bad_files_among_real_faces_are_skipped_and_reported(utkface_dir, tmp_path, caplog):
    faces = sorted(utkface_dir.iterdir())[:8]
    for face in faces:
        shutil.copy(face, tmp_path / face.name)
    _check_bad_input_handled(tmp_path, [tmp_path / face.name for face in faces], caplog)


def test_bad_files_among_drawn_faces_are_skipped_and_reported(tmp_path, caplog):
    _check_bad_input_handled(tmp_path, _drawn_faces(tmp_path, 6), caplog)


@pytest.mark.slow
def test_bad_files_in_a_utkface_folder(utkface_dir, tmp_path, caplog):
    faces = sorted(utkface_dir.iterdir())[:5]
    for face in faces:
        shutil.copy(face, tmp_path / face.name)
    (tmp_path / "33_0_0_empty.jpg.chip.jpg").write_bytes(b"")
    (tmp_path / "34_0_0_truncated.jpg.chip.jpg").write_bytes(faces[0].read_bytes()[:3000])
    (tmp_path / "35_0_0_text.jpg.chip.jpg").write_text("hello")
    shutil.copy(faces[0], tmp_path / "noage_0_0_x.jpg.chip.jpg")
    table = utkface.read_utkface(tmp_path)
    dataset, report = pipeline.make_dataset(table, pipeline.PipelineConfig(batch_size=3), run_dir=tmp_path / "run")
    ages = sorted(np.concatenate([y.numpy() for _, y in dataset]).tolist())
    assert ages == sorted(utkface.parse_utkface_filename(f.name)[0] for f in faces)
    assert report.counts() == {"read": 9, "skipped": 4, "used": 5, "skipped_label": 1, "skipped_file": 3,
                               "skipped_runtime": 0}


@pytest.mark.slow
def test_pipeline_pixels_equal_the_opencv_reader_on_real_faces(utkface_dir):
    paths = sorted(str(p) for p in utkface_dir.iterdir())[:20]
    table = sample_table.SampleTable.from_columns(paths, np.arange(20))
    dataset, _ = pipeline.make_dataset(table, pipeline.PipelineConfig(shuffle=False, batch_size=20))
    x, ages = next(iter(dataset))
    assert ages.numpy().tolist() == list(range(20))
    reference = np.stack([images.read_bgr(p, size=64) for p in paths]).astype(np.float32)
    assert np.abs(x.numpy() - reference).max() <= 1.0  # same JPEG decode; resize within rounding
    assert np.abs(x.numpy() - reference).mean() < 0.3


def test_formats_grey_and_alpha_become_three_channel_bgr(tmp_path):
    from PIL import Image

    face = synthetic.synthetic_face(80, seed=3)  # BGR
    grey = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    rgba = cv2.cvtColor(face, cv2.COLOR_BGR2BGRA)
    files = {"face.jpg": face, "face.png": face, "face.bmp": face, "grey.png": grey, "grey.jpg": grey,
             "grey.bmp": grey, "alpha.png": rgba}
    for name, image in files.items():
        cv2.imwrite(str(tmp_path / name), image)
    Image.fromarray(face[:, :, ::-1]).save(tmp_path / "face.gif")
    paths = [str(tmp_path / name) for name in [*files, "face.gif"]]
    table = sample_table.SampleTable.from_columns(paths, np.arange(len(paths)))
    dataset, report = pipeline.make_dataset(table, pipeline.PipelineConfig(input_size=40, shuffle=False,
                                                                           batch_size=len(paths)))
    x, _ = next(iter(dataset))
    assert report.counts()["used"] == len(paths) and x.shape == (len(paths), 40, 40, 3) and x.dtype == tf.float32
    for i, path in enumerate(paths[:-1]):
        expected = cv2.resize(cv2.imread(path, cv2.IMREAD_COLOR), (40, 40), interpolation=cv2.INTER_LINEAR)
        assert np.abs(x[i].numpy() - expected).max() <= 1.0, path
    # GIF (palette) is decoded too; its colours are quantised, so compare loosely.
    expected = cv2.resize(face, (40, 40), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    assert np.abs(x[-1].numpy() - expected).mean() < 12


def test_targets_from_an_encoder_follow_their_images(tmp_path):
    paths = _drawn_faces(tmp_path, 10)
    ages = np.arange(10) * 7 + 1
    table = sample_table.SampleTable.from_columns([str(p) for p in paths], ages, gender=[0, 1] * 5)

    class FakeTask:  # an AgeTask / head: encode_targets(labels) -> {output: per-sample targets}
        def encode_targets(self, labels):
            age = labels["age"]
            return {"age": age.astype(np.float32), "age_g5": (age // 20).astype(np.int32),
                    "age_distribution": np.eye(80, dtype=np.float32)[age.astype(int)], "gender": labels["gender"]}

    config = pipeline.PipelineConfig(input_size=32, batch_size=4, seed=5)
    dataset, _ = pipeline.make_dataset(table, config, target_encoder=FakeTask())
    reference = {int(a): cv2.resize(cv2.imread(str(p)), (32, 32), interpolation=cv2.INTER_LINEAR)
                 for a, p in zip(ages, paths)}
    seen = []
    for x, targets in dataset:
        assert set(targets) == {"age", "age_g5", "age_distribution", "gender"}
        assert targets["age_distribution"].shape[1:] == (80,)
        for image, age, group, distribution, gender in zip(x.numpy(), *(targets[k].numpy() for k in (
                "age", "age_g5", "age_distribution", "gender"))):
            assert np.abs(image - reference[int(age)]).max() <= 1.0
            assert group == age // 20 and np.argmax(distribution) == age and gender == (int(age) // 7) % 2
            seen.append(int(age))
    assert sorted(seen) == ages.tolist()
    with pytest.raises(ValueError, match="one row per sample"):
        pipeline.make_dataset(table, config, target_encoder=lambda labels: {"age": labels["age"][:3]})


def test_deterministic_mode_repeats_augmented_shuffled_epochs(tmp_path):
    paths = _drawn_faces(tmp_path, 12)
    table = sample_table.SampleTable.from_columns([str(p) for p in paths], np.arange(12))
    config = pipeline.PipelineConfig(input_size=32, batch_size=5, deterministic=True, seed=11,
                                     augment=augment.AugmentConfig.from_names(augment.NAMES))

    def epochs(dataset, count=2):
        return [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(count)]

    first = epochs(pipeline.make_dataset(table, config)[0])
    second = epochs(pipeline.make_dataset(table, config)[0])
    for epoch_a, epoch_b in zip(first, second):
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b):
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_array_equal(xa, xb)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(*first))  # reshuffled each epoch
    assert sorted(np.concatenate([y for _, y in first[0]]).tolist()) == list(range(12))


def test_file_cache_is_written_and_keyed_by_the_data(tmp_path):
    paths = _drawn_faces(tmp_path / "faces", 6)
    table = sample_table.SampleTable.from_columns([str(p) for p in paths], np.arange(6))
    config = pipeline.PipelineConfig(input_size=24, batch_size=6, shuffle=False, cache=str(tmp_path / "cache" / "c"))
    dataset, _ = pipeline.make_dataset(table, config)
    # Full passes: a tf.data file cache is only finalised at the end of one.
    first = [images.numpy() for images, _ in dataset][0]
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert cached and all(name.startswith("c_24px_") for name in cached)
    np.testing.assert_array_equal([images.numpy() for images, _ in dataset][0], first)
    list(pipeline.make_dataset(table.take(np.arange(3)), config)[0])
    assert len({name.split(".")[0] for name in os.listdir(tmp_path / "cache")}) == 2  # other data, other cache


def test_damage_after_the_check_is_caught_in_the_graph_and_named(tmp_path, caplog):
    paths = _drawn_faces(tmp_path, 6)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])  # truncated: passes the header check
    table = sample_table.SampleTable.from_columns([str(p) for p in paths], np.arange(6))
    config = pipeline.PipelineConfig(input_size=32, batch_size=4, file_check="header", cache=None,
                                     shuffle=False)
    dataset, report = pipeline.make_dataset(table, config, run_dir=tmp_path / "run")
    os.remove(paths[4])  # deleted after the pipeline was built
    callback = pipeline.InputReportCallback(report)
    with caplog.at_level(logging.WARNING):
        ages = np.concatenate([y.numpy() for _, y in dataset]).tolist()
        callback.on_epoch_end(0)
    assert ages == [0, 2, 3, 5]  # the epoch went on
    runtime = {os.path.basename(s["path"]): s["reason"] for s in report.skipped if s["stage"] == "runtime"}
    assert set(runtime) == {paths[1].name, paths[4].name}
    assert "not decodable" in runtime[paths[1].name] and "missing" in runtime[paths[4].name]
    assert report.counts()["used"] == 4 and report.counts()["skipped_runtime"] == 2
    written = json.loads((tmp_path / "run" / "input_report_train.json").read_text())
    assert written["counts"]["skipped_runtime"] == 2
    assert paths[1].name in caplog.text and paths[4].name in caplog.text
    assert report.refresh() == 0  # counted once


def test_file_check_verdicts_are_cached(tmp_path, monkeypatch):
    paths = [str(p) for p in _drawn_faces(tmp_path, 3)]
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    paths.append(str(tmp_path / "bad.jpg"))
    cache = tmp_path / "verdicts.json"
    verdicts = file_check.check_image_files(paths, cache_path=cache)
    assert [v is None for v in verdicts.values()] == [True, True, True, False]
    file_check.forget(paths)

    def no_decoding(_):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(file_check, "_decode_problems", no_decoding)
    assert file_check.check_image_files(paths, cache_path=cache) == verdicts


def test_evaluation_config_and_validation():
    config = pipeline.PipelineConfig(augment=augment.AugmentConfig.from_names(["horizontal_flip"]),
                                     sampling="balanced")
    evaluation = config.evaluation()
    assert not evaluation.shuffle and evaluation.augment is None and evaluation.sampling == "sequential"
    assert pipeline.PipelineConfig(augment={"gamma": True}).augment.enabled() == ["gamma"]
    with pytest.raises(ValueError, match="sampling"):
        pipeline.PipelineConfig(sampling="weighted")
    with pytest.raises(ValueError, match="no usable sample"):
        table = sample_table.SampleTable.from_columns(["/nowhere/a.jpg"], [3])
        pipeline.make_dataset(table)
