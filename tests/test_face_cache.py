"""The decoded-face cache: built once, shared, keyed by data/size/crop, never read when incomplete."""

import json
import logging
import os
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from ssrnet_tf.data import augment, decode, face_cache, pipeline, sample_table
from ssrnet_tf.faces import synthetic

from test_data_pipeline import _check_bad_input_handled, _drawn_faces


def _reference(paths, size):
    return np.stack([decode.load_bgr(str(p), size).numpy() for p in paths])


def test_cache_holds_the_pipeline_pixels_and_is_reused(tmp_path):
    paths = [str(p) for p in _drawn_faces(tmp_path / "faces", 5)]
    cache = face_cache.open_face_cache(paths, 32, tmp_path / "cache")
    assert cache.images.shape == (5, 32, 32, 3) and cache.images.dtype == np.uint8 and cache.built_seconds > 0
    np.testing.assert_array_equal(cache.images, _reference(paths, 32))
    assert cache.problems == {}
    again = face_cache.open_face_cache(paths, 32, tmp_path / "cache")
    assert again.built_seconds == 0 and again.path == cache.path  # read back, not rebuilt
    np.testing.assert_array_equal(cache.rows([paths[3], paths[0]]), [3, 0])
    with pytest.raises(KeyError, match="not in the face cache"):
        cache.rows([str(tmp_path / "other.jpg")])


def test_cache_is_rebuilt_when_data_size_or_crop_change(tmp_path):
    paths = [str(p) for p in _drawn_faces(tmp_path / "faces", 4)]
    base = face_cache.cache_key(paths, 32)
    assert face_cache.cache_key(paths, 48) != base
    assert face_cache.cache_key(paths, 32, {"margin": 0.2}) != base
    assert face_cache.cache_key(paths[:3], 32) != base
    first = face_cache.open_face_cache(paths, 32, tmp_path / "cache")
    cv2.imwrite(paths[1], synthetic.synthetic_face(96, seed=99))  # the file changes (size and time)
    os.utime(paths[1], ns=(time.time_ns(), time.time_ns() + 10**9))
    second = face_cache.open_face_cache(paths, 32, tmp_path / "cache")
    assert second.key != first.key and second.built_seconds > 0
    np.testing.assert_array_equal(second.images[1], _reference([paths[1]], 32)[0])


@pytest.mark.parametrize("damage", ["truncated", "no_manifest", "bit_flip", "bad_manifest"])
def test_an_incomplete_or_damaged_cache_is_rebuilt_never_read(tmp_path, damage, caplog):
    paths = [str(p) for p in _drawn_faces(tmp_path / "faces", 4)]
    cache = face_cache.open_face_cache(paths, 32, tmp_path / "cache")
    array_path, manifest = cache.path, cache.path.with_suffix(".json")
    del cache
    if damage == "truncated":  # a kill mid-write, or a partial copy
        os.truncate(array_path, os.path.getsize(array_path) - 1000)
    elif damage == "no_manifest":  # killed after the array, before the commit
        manifest.unlink()
    elif damage == "bit_flip":
        data = bytearray(array_path.read_bytes())
        data[-5] ^= 0xFF
        array_path.write_bytes(bytes(data))
    else:
        manifest.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        rebuilt = face_cache.open_face_cache(paths, 32, tmp_path / "cache")
    assert rebuilt.built_seconds > 0
    assert "rebuilding" in caplog.text
    np.testing.assert_array_equal(rebuilt.images, _reference(paths, 32))
    assert json.loads(manifest.read_text())["count"] == 4


def test_a_build_killed_mid_write_leaves_nothing_that_is_read(tmp_path):
    """SIGKILL a real build: what it left is detected, its temporary file removed, the cache rebuilt."""
    paths = [str(p) for p in _drawn_faces(tmp_path / "faces", 3)]
    listing = tmp_path / "paths.json"
    unique = []
    for i in range(1200):
        target = tmp_path / "many" / f"f{i:04d}.jpg"
        target.parent.mkdir(exist_ok=True)
        os.link(paths[i % 3], target)
        unique.append(str(target))
    listing.write_text(json.dumps(unique))
    code = ("import json, sys\nfrom ssrnet_tf.data import face_cache\n"
            "face_cache.open_face_cache(json.load(open(sys.argv[1])), 160, sys.argv[2])\n")
    cache_dir = tmp_path / "cache"
    process = subprocess.Popen([sys.executable, "-c", code, str(listing), str(cache_dir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.endswith(".tmp.npy") for p in cache_dir.glob("*")):
        time.sleep(0.05)
    process.kill()
    process.wait()
    left = sorted(p.name for p in cache_dir.glob("*"))
    assert any(name.endswith(".tmp.npy") for name in left), left  # it was killed mid-write
    assert not any(name.endswith(".json") for name in left)  # nothing was committed
    cache = face_cache.open_face_cache(unique, 160, cache_dir)
    assert cache.built_seconds > 0
    assert not any(p.name.endswith(".tmp.npy") for p in cache_dir.glob("*"))  # the killed build's file is gone
    np.testing.assert_array_equal(cache.images[:3], _reference(unique[:3], 160))


def test_faces_pipeline_delivers_the_same_batches_as_the_memory_cache(tmp_path):
    paths = [str(p) for p in _drawn_faces(tmp_path / "faces", 9)]
    table = sample_table.SampleTable.from_columns(paths, np.arange(9) * 3)
    memory = pipeline.PipelineConfig(input_size=32, batch_size=4, shuffle=False, cache="memory")
    faces = pipeline.PipelineConfig(input_size=32, batch_size=4, shuffle=False, cache="faces",
                                    cache_dir=str(tmp_path / "cache"))
    want = [(x.numpy(), y.numpy()) for x, y in pipeline.make_dataset(table, memory)[0]]
    dataset, report = pipeline.make_dataset(table, faces)
    got = [(x.numpy(), y.numpy()) for x, y in dataset]
    assert len(got) == len(want) == report.steps_per_epoch == 3
    for (xa, ya), (xb, yb) in zip(got, want):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    # Shuffled and augmented: every face once per epoch, reproducible with the same seed.
    augmented = pipeline.PipelineConfig(input_size=32, batch_size=4, cache="faces", cache_dir=str(tmp_path / "cache"),
                                        deterministic=True, seed=3,
                                        augment=augment.AugmentConfig.from_names(["horizontal_flip", "affine"]))
    first = [(x.numpy(), y.numpy()) for x, y in pipeline.make_dataset(table, augmented)[0]]
    second = [(x.numpy(), y.numpy()) for x, y in pipeline.make_dataset(table, augmented)[0]]
    assert sorted(np.concatenate([y for _, y in first]).tolist()) == list(np.arange(9) * 3)
    for (xa, ya), (xb, yb) in zip(first, second):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_balanced_sampling_from_the_faces_cache(tmp_path):
    paths = [str(p) for p in _drawn_faces(tmp_path / "faces", 8)]
    ages = np.array([10, 10, 10, 10, 10, 10, 50, 50])
    table = sample_table.SampleTable.from_columns(paths, ages)
    config = pipeline.PipelineConfig(input_size=32, batch_size=20, cache="faces", cache_dir=str(tmp_path / "cache"),
                                     sampling="balanced", class_bin_width=10.0, seed=1)
    dataset, _ = pipeline.make_dataset(table, config)
    drawn = np.concatenate([y.numpy() for _, y in dataset.take(10)])
    assert 0.4 < np.mean(drawn == 50) < 0.6  # 2 of 8 faces, drawn half of the time


def test_bad_files_with_the_faces_cache_are_skipped_and_reported(tmp_path, caplog, monkeypatch):
    """The same counts, reasons and warnings as the up-front file check gives."""
    original = pipeline.PipelineConfig.__init__

    def faces_config(self, *args, **kwargs):
        kwargs.setdefault("cache", "faces")
        kwargs.setdefault("cache_dir", str(tmp_path / "cache"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(pipeline.PipelineConfig, "__init__", faces_config)
    _check_bad_input_handled(tmp_path / "data", _drawn_faces(tmp_path / "data", 5), caplog)
    (manifest,) = (tmp_path / "cache").glob("*.json")
    problems = json.loads(manifest.read_text())["problems"]
    assert sorted(os.path.basename(p) for p in problems) == ["empty.jpg", "gone.jpg", "notes.jpg", "truncated.jpg"]


def test_an_unwritable_cache_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="cannot create the face cache folder.*data.cache_dir"):
        face_cache.open_face_cache([str(blocker)], 32, blocker / "cache")


def test_crop_settings_come_from_the_prepare_folder(tmp_path):
    assert face_cache.crop_settings(tmp_path) == {}
    (tmp_path / ".prepare").mkdir()
    (tmp_path / ".prepare" / "settings.json").write_text(json.dumps({"margin": 0.2}))
    assert face_cache.crop_settings(tmp_path) == {"margin": 0.2}
    assert face_cache.crop_settings(tmp_path / "images") == {"margin": 0.2}  # prepare's OUT/images
