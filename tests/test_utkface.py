"""UTKFace labels and loading: defects are kept or counted, never fatal."""

import cv2
import numpy as np
import pytest

from ssrnet_tf.data import images, utkface


@pytest.mark.parametrize(
    "name,expected",
    [
        ("26_1_2_20170116174525125.jpg.chip.jpg", (26, 1, 2)),
        ("39_1_20170116174525125.jpg.chip.jpg", (39, 1, None)),  # race field missing
        ("24_0_1_20170116220224657 .jpg.chip.jpg", (24, 0, 1)),  # stray space
        ("55_0_0_20170116232725357jpg.chip.jpg", (55, 0, 0)),  # missing dot
        ("1_0_9_20170116232725357.jpg.chip.jpg", (1, 0, None)),  # race code out of range
        ("116_3_0_20170116232725357.jpg.chip.jpg", (116, None, 0)),  # gender out of range
    ],
)
def test_parse_utkface_filename(name, expected):
    assert utkface.parse_utkface_filename(name) == expected


def test_parse_rejects_names_without_age():
    with pytest.raises(ValueError, match="abc_1_0"):
        utkface.parse_utkface_filename("abc_1_0_2017.jpg")


def test_folder_with_defects_is_counted(tmp_path):
    face = np.full((40, 40, 3), 128, np.uint8)
    for name in ("30_0_0_2017.jpg.chip.jpg", "39_1_2017.jpg.chip.jpg", "41_1_3_2017.jpg.chip.jpg"):
        cv2.imwrite(str(tmp_path / name), face)
    (tmp_path / "50_1_1_2017.jpg.chip.jpg").write_bytes(b"truncated jpeg")
    (tmp_path / "noage_1_1_2017.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an image")
    records, report = utkface.list_utkface(tmp_path)
    assert [r.age for r in records] == [30, 39, 41, 50]
    assert report["skipped"] == 1 and report["skipped_names"] == ["noage_1_1_2017.jpg"]
    assert report["missing_race"] == 1
    x, ages, report = utkface.load_utkface_arrays(tmp_path, size=64)
    assert x.shape == (3, 64, 64, 3) and x.dtype == np.float32
    assert sorted(ages.tolist()) == [30, 39, 41]
    assert report["unreadable"] == 1 and report["unreadable_names"] == ["50_1_1_2017.jpg.chip.jpg"]


def test_missing_folder_and_file_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        utkface.list_utkface(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="gone.jpg"):
        images.read_bgr(tmp_path / "gone.jpg")


@pytest.mark.slow
def test_shared_utkface_reader_matches_reference_inputs(utkface_dir, reference_dir):
    """Our reader gives exactly the published test vectors' pixels."""
    import csv

    reference = np.load(reference_dir / "inputs_bgr_uint8_64.npy")
    with open(reference_dir / "expected_ages.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        ours = images.read_bgr(utkface_dir / row["source_file"], size=64)
        np.testing.assert_array_equal(ours, reference[int(row["index"])])
    records, report = utkface.list_utkface(utkface_dir)
    assert len(records) == 20753 and report["skipped"] == 0
    assert report["missing_race"] == 3
