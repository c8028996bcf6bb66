"""Splits: seeded random (by image or subject), official lists, leave-one-subject-out; save/load."""

import json

import numpy as np
import pytest

from ssrnet_tf.data import sample_table, splits


def _table(n=50, subjects=None, split=None):
    paths = [f"/data/img_{i:03d}.jpg" for i in range(n)]
    return sample_table.SampleTable.from_columns(paths, np.arange(n) % 90, subject=subjects, split=split, name="toy")


def test_random_split_is_80_20_disjoint_and_reproducible():
    table = _table(103)
    split = splits.random_split(table, seed=3)
    assert split.sizes() == {"train": 82, "test": 21}
    assert not set(split.parts["train"]) & set(split.parts["test"])
    assert set(split.parts["train"]) | set(split.parts["test"]) == set(table.path.tolist())
    assert splits.random_split(table, seed=3).parts == split.parts
    assert splits.random_split(table, seed=4).parts != split.parts
    # Row order does not matter, only the set of paths and the seed.
    shuffled = table.take(np.random.default_rng(0).permutation(len(table)))
    assert splits.random_split(shuffled, seed=3).parts == split.parts


def test_random_split_with_three_parts_and_bad_fractions():
    split = splits.random_split(_table(10), fractions={"train": 0.7, "val": 0.1, "test": 0.2})
    assert split.sizes() == {"train": 7, "val": 1, "test": 2}
    with pytest.raises(ValueError, match="sum to 1"):
        splits.random_split(_table(10), fractions={"train": 0.7, "test": 0.2})


def test_random_split_by_subject_keeps_people_together():
    table = _table(60, subjects=[f"s{i % 13}" for i in range(60)])
    split = splits.random_split(table, seed=1, by_subject=True)
    parts = split.select(table)
    assert not set(parts["train"].subject) & set(parts["test"].subject)
    assert len(parts["train"]) + len(parts["test"]) == 60
    assert len(set(parts["test"].subject)) == 3  # round(0.2 * 13) subjects


def test_split_save_load_round_trip_is_atomic_and_selects_same_rows(tmp_path):
    table = _table(40)
    split = splits.random_split(table, seed=7)
    path = split.save(tmp_path / "run" / "split.json")
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["split.json"]  # no temporary left behind
    document = json.loads(path.read_text())
    assert document["seed"] == 7 and document["sizes"] == {"train": 32, "test": 8}
    loaded = splits.Split.load(path)
    assert loaded == split
    for name, rows in loaded.indices(table).items():
        assert table.path[rows].tolist() == split.parts[name]
    with pytest.raises(ValueError, match="not in"):
        loaded.indices(table.take(np.arange(10)))
    (tmp_path / "other.json").write_text('{"format": "something"}')
    with pytest.raises(ValueError, match="not a"):
        splits.Split.load(tmp_path / "other.json")


def test_official_split_from_split_column():
    table = _table(5, split=["train", "train", "valid", "test", ""])
    split = splits.official_split(table)
    assert split.sizes() == {"train": 2, "valid": 1, "test": 1} and split.details["unassigned"] == 1
    with pytest.raises(ValueError, match="no official split"):
        splits.official_split(_table(3))


def test_leave_one_subject_out_gives_one_fold_per_subject():
    subjects = ["001", "001", "002", "003", "003", "003"]
    table = _table(6, subjects=subjects)
    folds = splits.leave_one_subject_out(table)
    assert [fold.details["subject"] for fold in folds] == ["001", "002", "003"]
    for fold in folds:
        parts = fold.select(table)
        assert set(parts["test"].subject) == {fold.details["subject"]}
        assert fold.details["subject"] not in set(parts["train"].subject)
        assert len(parts["train"]) + len(parts["test"]) == 6
    with pytest.raises(ValueError, match="no subject"):
        splits.leave_one_subject_out(_table(3))
