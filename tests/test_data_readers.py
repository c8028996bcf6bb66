"""Dataset readers: each format, written here in its real layout, into the common table."""

import csv
import datetime

import numpy as np
import pytest

from ssrnet_tf.data import (appa_real, csv_table, fgnet, imdb_wiki, megaage, morph2, sample_table, sources,
                            utkface)


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# === Common table ===
def test_sample_table_fills_missing_columns_and_takes_rows():
    table = sample_table.SampleTable.from_columns(["a.jpg", "b.jpg", "c.jpg"], [1, 2.5, 3], gender=[0, None, 1],
                                                  extra={"score": [0.1, 0.2, 0.3]}, name="t")
    assert table.age.dtype == np.float32 and table.gender.tolist() == [0, -1, 1]
    assert table.race.tolist() == [-1, -1, -1] and table.subject.tolist() == ["", "", ""]
    part = table.take(np.array([True, False, True]))
    assert part.path.tolist() == ["a.jpg", "c.jpg"] and part.extra["score"].tolist() == pytest.approx([0.1, 0.3])
    assert set(part.labels()) == {"age", "gender", "race"}
    with pytest.raises(ValueError, match="age"):
        sample_table.SampleTable(path=np.array(["a"]), age=np.zeros(2), gender=np.zeros(1), race=np.zeros(1),
                                 subject=np.array([""]), split=np.array([""]))


def test_concatenate_merges_skipped_entries():
    a = sample_table.SampleTable.from_columns(["a"], [1], report={"skipped": [{"path": "x", "reason": "r"}]}, name="a")
    b = sample_table.SampleTable.from_columns(["b"], [2], name="b")
    both = sample_table.concatenate([a, b])
    assert both.name == "a+b" and len(both) == 2 and both.report["skipped"] == [{"path": "x", "reason": "r"}]


# === UTKFace ===
def test_utkface_reader_keeps_ages_of_malformed_names(tmp_path):
    for name in ("30_0_0_2017.jpg.chip.jpg", "39_1_2017.jpg.chip.jpg", "noage_1_1_2017.jpg"):
        (tmp_path / name).write_bytes(b"x")
    table = utkface.read_utkface(tmp_path)
    assert table.age.tolist() == [30, 39] and table.race.tolist() == [0, -1] and table.gender.tolist() == [0, 1]
    assert table.report["missing_labels"] == [{"path": str(tmp_path / "39_1_2017.jpg.chip.jpg"), "missing": ["race"]}]
    assert [s["path"] for s in table.report["skipped"]] == [str(tmp_path / "noage_1_1_2017.jpg")]


@pytest.mark.slow
def test_utkface_reader_on_shared_faces_finds_every_image_and_age(utkface_dir):
    table = utkface.read_utkface(utkface_dir)
    files = [p for p in utkface_dir.iterdir() if p.suffix.lower() == ".jpg"]
    assert len(table) == len(files) == 20753
    assert table.report["skipped"] == []
    expected = sorted(int(p.name.split("_")[0]) for p in files)
    assert sorted(table.age.astype(int).tolist()) == expected
    assert table.age.min() >= 1 and table.age.max() == 116
    assert table.report["missing_race"] == 3 and len(table.report["missing_labels"]) == 3
    assert np.all(np.isin(table.gender, [0, 1]))


# === IMDB-WIKI ===
def _datenum(year, month, day):
    return imdb_wiki.date_to_datenum(datetime.date(year, month, day))


def _cell(strings):
    cell = np.empty((1, len(strings)), dtype=object)
    for i, text in enumerate(strings):
        cell[0, i] = np.array([text])
    return cell


def _write_imdb_mat(path, rows, struct="imdb"):
    """Writes ``rows`` (dicts) as the real release's 1x1 struct of 1xN fields."""
    import scipy.io

    n = len(rows)
    fields = {
        "dob": np.array([[r["dob"] for r in rows]], dtype=np.float64),
        "photo_taken": np.array([[r["photo_taken"] for r in rows]], dtype=np.uint16),
        "full_path": _cell([r["full_path"] for r in rows]),
        "gender": np.array([[r["gender"] for r in rows]], dtype=np.float64),
        "name": _cell([r.get("name", "someone") for r in rows]),
        "face_location": _cell([""] * n),
        "face_score": np.array([[r["face_score"] for r in rows]], dtype=np.float64),
        "second_face_score": np.array([[r["second_face_score"] for r in rows]], dtype=np.float64),
    }
    fields["face_location"] = np.empty((1, n), dtype=object)
    for i in range(n):
        fields["face_location"][0, i] = np.array([[10.0, 20.0, 110.0, 120.0]])
    if struct == "imdb":
        fields["celeb_names"] = _cell(["A", "B"])
        fields["celeb_id"] = np.array([[r.get("celeb_id", 1) for r in rows]], dtype=np.uint16)
    scipy.io.savemat(str(path), {struct: fields})
    return path


def test_age_at_photo_uses_mid_year_convention():
    # Fred Astaire, born 1899-05-10, photo from 1968: the release's first file name.
    assert imdb_wiki.age_at_photo(_datenum(1899, 5, 10), 1968) == 69
    assert imdb_wiki.age_at_photo(_datenum(1980, 6, 30), 2010) == 30  # birthday before 1 July
    assert imdb_wiki.age_at_photo(_datenum(1980, 7, 1), 2010) == 29  # birthday on/after 1 July
    assert imdb_wiki.datenum_to_date(_datenum(2001, 2, 3)) == datetime.date(2001, 2, 3)
    assert imdb_wiki.age_at_photo(0, 2010) is None and imdb_wiki.age_at_photo(np.nan, 2010) is None


def test_imdb_reader_filters_and_counts_each_reason(tmp_path):
    good = dict(face_score=3.2, second_face_score=np.nan, photo_taken=2010, gender=1.0)
    rows = [
        dict(good, full_path="01/nm0000001_rm124825600_1899-5-10_1968.jpg", dob=_datenum(1899, 5, 10),
             photo_taken=1968, celeb_id=7),
        dict(good, full_path="02/b.jpg", dob=_datenum(1980, 9, 1), gender=0.0, celeb_id=8),
        dict(good, full_path="03/unknown_gender.jpg", dob=_datenum(1990, 1, 1), gender=np.nan),
        dict(good, full_path="04/no_face.jpg", dob=_datenum(1980, 1, 1), face_score=-np.inf),
        dict(good, full_path="05/two_faces.jpg", dob=_datenum(1980, 1, 1), second_face_score=2.5),
        dict(good, full_path="06/low_score.jpg", dob=_datenum(1980, 1, 1), face_score=0.5),
        dict(good, full_path="07/too_old.jpg", dob=_datenum(1880, 1, 1)),
        dict(good, full_path="08/not_born.jpg", dob=_datenum(2015, 1, 1)),
        dict(good, full_path="09/bad_date.jpg", dob=0.0),
    ]
    mat = _write_imdb_mat(tmp_path / "imdb.mat", rows)
    table = imdb_wiki.read_imdb_wiki(mat)
    assert table.name == "imdb" and table.report["rows"] == 9 and table.report["kept"] == 3
    assert table.report["filtered"] == {"invalid_date": 1, "no_face": 1, "multiple_faces": 1, "low_face_score": 1,
                                        "age_out_of_range": 2}
    assert table.path.tolist() == [str(tmp_path / r["full_path"]) for r in rows[:3]]
    assert table.age.tolist() == [69, 29, 20]
    assert table.gender.tolist() == [0, 1, -1]  # IMDB 1 = male -> our 0; NaN -> -1
    assert table.subject.tolist()[:2] == ["7", "8"]
    relaxed = imdb_wiki.read_imdb_wiki(mat, min_face_score=0.0, drop_multiple_faces=False,
                                       image_root=tmp_path / "faces")
    assert len(relaxed) == 5 and relaxed.path[0].startswith(str(tmp_path / "faces"))


def test_wiki_reader_uses_names_as_subjects(tmp_path):
    rows = [dict(full_path="17/x.jpg", dob=_datenum(1970, 3, 3), photo_taken=2000, gender=0.0, face_score=2.0,
                 second_face_score=np.nan, name="Ada")]
    table = imdb_wiki.read_imdb_wiki(_write_imdb_mat(tmp_path / "wiki.mat", rows, struct="wiki"))
    assert table.name == "wiki" and table.age.tolist() == [30] and table.subject.tolist() == ["Ada"]
    assert table.gender.tolist() == [1]


def test_imdb_reader_rejects_other_mat_files(tmp_path):
    import scipy.io

    scipy.io.savemat(str(tmp_path / "other.mat"), {"a": np.zeros(2), "b": np.ones(2)})
    with pytest.raises(ValueError, match="imdb"):
        imdb_wiki.read_imdb_wiki(tmp_path / "other.mat")
    with pytest.raises(FileNotFoundError):
        imdb_wiki.read_imdb_wiki(tmp_path / "missing.mat")


# === MORPH-II ===
MORPH_HEADER = ["id_num", "picture_num", "dob", "doa", "race", "gender", "facial_hair", "age", "age_diff",
                "glasses", "photo"]


def test_morph2_reader(tmp_path):
    _write_csv(tmp_path / "morph_2008_nonCommercial.csv", MORPH_HEADER, [
        ["9055", "1", "2/16/1962", "12/10/2008", "B", "M", "0", "46", "0", "0", "Album2/009055_1M46.JPG"],
        ["9055", "2", "2/16/1962", "1/10/2009", "B", "M", "0", "46", "0", "0", "Album2/009055_2M46.JPG"],
        ["12", "0", "1/1/1980", "1/1/2004", "W", "F", "0", "", "0", "0", "Album2/000012_0F24.JPG"],
        ["13", "0", "1/1/1980", "1/1/2004", "H", "F", "0", "", "0", "0", "Album2/garbled.JPG"],
    ])
    table = morph2.read_morph2(tmp_path / "morph_2008_nonCommercial.csv")
    assert table.age.tolist() == [46, 46, 24]
    assert table.gender.tolist() == [0, 0, 1] and table.race.tolist() == [1, 1, 0]
    assert table.subject.tolist() == ["9055", "9055", "12"]
    assert table.path[0] == str(tmp_path / "Album2" / "009055_1M46.JPG")
    assert table.report["age_from_name"] == 1
    assert [s["path"] for s in table.report["skipped"]] == [str(tmp_path / "Album2" / "garbled.JPG")]
    assert morph2.parse_morph_filename("009055_1M46.JPG") == ("009055", 0, 46)


# === APPA-REAL / ChaLearn LAP ===
def test_appa_real_reader_reads_all_splits_and_attributes(tmp_path):
    header = ["file_name", "num_ratings", "apparent_age_avg", "apparent_age_std", "real_age"]
    _write_csv(tmp_path / "gt_avg_train.csv", header, [["000000.jpg", "36", "5.0", "1.2", "4"],
                                                        ["000001.jpg", "63", "20.5", "3.3", "18"]])
    _write_csv(tmp_path / "gt_avg_valid.csv", header, [["004113.jpg", "38", "40.1", "4.0", "44"]])
    _write_csv(tmp_path / "gt_avg_test.csv", header, [["005613.jpg", "40", "abc", "1", "30"],
                                                       ["005614.jpg", "40", "61.2", "5.1", "65"]])
    _write_csv(tmp_path / "allcategories_train.csv", ["file", "gender", "race", "makeup", "time", "happiness"],
               [["000000.jpg", "male", "asian", "", "", ""], ["000001.jpg", "female", "afroamerican", "", "", ""]])
    table = appa_real.read_appa_real(tmp_path)
    assert table.split.tolist() == ["train", "train", "valid", "test"]
    assert table.age.tolist() == pytest.approx([5.0, 20.5, 40.1, 61.2])
    assert table.extra["real_age"].tolist() == [4, 18, 44, 65]
    assert table.extra["apparent_age_std"].tolist() == pytest.approx([1.2, 3.3, 4.0, 5.1])
    assert table.path[0] == str(tmp_path / "train" / "000000.jpg_face.jpg")
    assert table.gender.tolist() == [0, 1, -1, -1] and table.race.tolist() == [2, 1, -1, -1]
    assert [s["path"] for s in table.report["skipped"]] == [str(tmp_path / "test" / "005613.jpg_face.jpg")]
    real = appa_real.read_appa_real(tmp_path, age="real", aligned=False, splits=("valid",))
    assert real.age.tolist() == [44] and real.path[0] == str(tmp_path / "valid" / "004113.jpg")


def test_appa_real_per_rating_file_is_averaged(tmp_path):
    _write_csv(tmp_path / "gt_train.csv", ["file_name", "real_age", "apparent_age", "worker_age", "worker_gender"],
               [["000000.jpg", "4", "4", "30", "male"], ["000000.jpg", "4", "6", "25", "female"],
                ["000001.jpg", "18", "21", "40", "male"]])
    table = appa_real.read_appa_real(tmp_path, splits=("train",))
    assert table.age.tolist() == pytest.approx([5.0, 21.0]) and table.extra["num_ratings"].tolist() == [2, 1]


def test_chalearn_lap_reader(tmp_path):
    for split, rows in (("train", [["image_0.jpg", "24.5", "3.1"]]), ("valid", [["image_1.jpg", "33", "2"]])):
        _write_csv(tmp_path / f"{split}_gt.csv", ["image", "mean", "stdv"], rows)
    table = appa_real.read_chalearn_lap(tmp_path, splits=("train", "valid"))
    assert table.age.tolist() == pytest.approx([24.5, 33.0]) and table.split.tolist() == ["train", "valid"]
    assert np.isnan(table.extra["real_age"]).all() and table.path[1] == str(tmp_path / "valid" / "image_1.jpg")
    with pytest.raises(ValueError, match="real age"):
        appa_real.read_apparent_age_csv(tmp_path / "train_gt.csv", tmp_path, age="real")
    _write_csv(tmp_path / "odd.csv", ["foo", "bar"], [["1", "2"]])
    with pytest.raises(ValueError, match="neither"):
        appa_real.read_apparent_age_csv(tmp_path / "odd.csv", tmp_path)


# === MegaAge ===
def test_megaage_reader(tmp_path):
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "train_name.txt").write_text("1.jpg\n2.jpg\n3.jpg\n")
    (tmp_path / "list" / "train_age.txt").write_text("23\n7\nx\n")
    (tmp_path / "list" / "test_name.txt").write_text("1.jpg\n")
    (tmp_path / "list" / "test_age.txt").write_text("61\n\n")
    table = megaage.read_megaage(tmp_path, name="megaage_asian")
    assert table.name == "megaage_asian" and table.age.tolist() == [23, 7, 61]
    assert table.split.tolist() == ["train", "train", "test"]
    assert table.path.tolist() == [str(tmp_path / "train" / "1.jpg"), str(tmp_path / "train" / "2.jpg"),
                                   str(tmp_path / "test" / "1.jpg")]
    assert [s["path"] for s in table.report["skipped"]] == [str(tmp_path / "train" / "3.jpg")]
    (tmp_path / "list" / "test_age.txt").write_text("61\n62\n")
    with pytest.raises(ValueError, match="1 names but"):
        megaage.read_megaage(tmp_path)


# === FG-NET ===
def test_fgnet_reader(tmp_path):
    for name in ("001A02.JPG", "001A43a.JPG", "069A05.JPG", "readme.txt", "Thumbs_001.jpg"):
        (tmp_path / name).write_bytes(b"x")
    assert fgnet.parse_fgnet_filename("001A02.JPG") == ("001", 2)
    assert fgnet.parse_fgnet_filename("001A43a.JPG") == ("001", 43)
    table = fgnet.read_fgnet(tmp_path)
    assert table.age.tolist() == [2, 43, 5] and table.subject.tolist() == ["001", "001", "069"]
    assert [s["path"] for s in table.report["skipped"]] == [str(tmp_path / "Thumbs_001.jpg")]


# === Generic CSV ===
def test_generic_csv_round_trip_and_bad_labels(tmp_path):
    _write_csv(tmp_path / "faces.csv", ["path", "age", "gender", "race", "subject", "split", "quality"], [
        ["a.jpg", "34", "1", "2", "p1", "train", "0.9"],
        ["/abs/b.png", "8.5", "", "", "p2", "test", "0.5"],
        ["c.jpg", "unknown", "m", "white", "", "", "0.1"],
        ["d.jpg", "40", "female", "asian", "", "", ""],
        ["e.jpg", "41", "x", "9", "", "", "0.3"],
    ])
    table = csv_table.read_csv_table(tmp_path / "faces.csv")
    assert table.path.tolist() == [str(tmp_path / "a.jpg"), "/abs/b.png", str(tmp_path / "d.jpg"),
                                   str(tmp_path / "e.jpg")]
    assert table.age.tolist() == [34, 8.5, 40, 41]
    assert table.gender.tolist() == [1, -1, 1, -1] and table.race.tolist() == [2, -1, 2, -1]
    assert table.report["invalid_gender"] == 1 and table.report["invalid_race"] == 1
    assert table.report["skipped"][0]["path"] == str(tmp_path / "c.jpg")
    assert "unknown" in table.report["skipped"][0]["reason"]
    assert table.extra["quality"].dtype == np.float32
    csv_table.write_csv_table(table, tmp_path / "out" / "copy.csv")
    again = csv_table.read_csv_table(tmp_path / "out" / "copy.csv", image_root="/")
    for column in ("path", "age", "gender", "race", "subject", "split"):
        assert getattr(again, column).tolist() == getattr(table, column).tolist()
    _write_csv(tmp_path / "bad.csv", ["file", "years"], [["a", "1"]])
    with pytest.raises(ValueError, match="lacks"):
        csv_table.read_csv_table(tmp_path / "bad.csv")


# === Registry ===
def test_every_registered_dataset_has_a_reader_and_instructions(tmp_path):
    for name, source in sources.DATASETS.items():
        assert callable(source.load_reader()), name
        assert source.instructions and source.license
        assert source.url.startswith("http") or name == "csv"
        assert source.title in sources.download_instructions(name)
    with pytest.raises(FileNotFoundError, match="imdb_crop.tar"):
        sources.read_dataset("imdb", tmp_path / "imdb.mat")
    with pytest.raises(KeyError, match="utkface"):
        sources.read_dataset("nope", tmp_path)
    (tmp_path / "001A02.JPG").write_bytes(b"x")
    assert len(sources.read_dataset("fgnet", tmp_path)) == 1
