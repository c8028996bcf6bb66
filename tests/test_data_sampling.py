"""Class-balanced sampling: a flat age histogram from a long-tailed table."""

import shutil

import numpy as np
import pytest

from ssrnet_tf.data import csv_table, pipeline, sample_table, sampling


def test_age_classes_and_groups():
    assert sampling.age_classes([0.2, 1.0, 9.9, 10.0, -3.0], bin_width=5).tolist() == [0, 0, 1, 2, 0]
    groups = sampling.group_by_class([2, 0, 2, 5])
    assert list(groups) == [0, 2, 5] and groups[2].tolist() == [0, 2]
    with pytest.raises(ValueError, match="bin_width"):
        sampling.age_classes([1], bin_width=0)


def test_balanced_indices_flatten_a_long_tail_of_100_classes():
    # Zipf-like counts: class 0 has 2,000 images, class 99 has 1.
    counts = np.maximum((2000 / (1 + np.arange(100)) ** 1.5).astype(int), 1)
    class_ids = np.repeat(np.arange(100), counts)
    draws = 100_000
    indices = np.concatenate(list(sampling.balanced_indices(class_ids, seed=0).batch(10_000).take(draws // 10_000)
                                  .as_numpy_iterator()))
    histogram = np.bincount(class_ids[indices], minlength=100)
    expected = draws / 100
    assert np.abs(histogram - expected).max() < 0.15 * expected, histogram
    # Uniform within a class: over whole passes each image of a class comes up equally often.
    small = np.flatnonzero(class_ids == 50)
    per_image = np.bincount(indices, minlength=len(class_ids))[small]
    assert per_image.max() - per_image.min() <= 1


@pytest.mark.slow
def test_balanced_pipeline_on_real_faces_gives_a_flat_histogram(utkface_dir, tmp_path):
    faces = sorted(utkface_dir.iterdir())[:13]
    ages = [30] * 8 + [50] * 4 + [80]  # long-tailed: 8 : 4 : 1
    rows = []
    for i, (face, age) in enumerate(zip(faces, ages)):
        shutil.copy(face, tmp_path / f"face_{i:02d}.jpg")
        rows.append([f"face_{i:02d}.jpg", age])
    with open(tmp_path / "faces.csv", "w") as handle:
        handle.write("path,age\n" + "".join(f"{p},{a}\n" for p, a in rows))
    table = csv_table.read_csv_table(tmp_path / "faces.csv")
    config = pipeline.PipelineConfig(input_size=32, batch_size=100, sampling="balanced", seed=1)
    dataset, report = pipeline.make_dataset(table, config, run_dir=tmp_path)
    assert report.class_counts == {"30": 8, "50": 4, "80": 1} and report.steps_per_epoch == 1
    images, ages_drawn = zip(*[(x.numpy(), y.numpy()) for x, y in dataset.take(30)])
    ages_drawn = np.concatenate(ages_drawn)
    histogram = {age: int(np.sum(ages_drawn == age)) for age in (30, 50, 80)}
    assert all(abs(count - 1000) < 100 for count in histogram.values()), histogram
    assert np.concatenate(images).shape == (3000, 32, 32, 3)


def test_balanced_pipeline_without_cache_on_drawn_images(tmp_path):
    import cv2

    rows = []
    for i, age in enumerate([5] * 6 + [60] * 2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((20, 20, 3), 10 * i, np.uint8))
        rows.append(str(tmp_path / f"{i}.png"))
    table = sample_table.SampleTable.from_columns(rows, [5] * 6 + [60] * 2, name="drawn")
    config = pipeline.PipelineConfig(input_size=16, batch_size=50, sampling="balanced", cache=None)
    dataset, _ = pipeline.make_dataset(table, config)
    ages = np.concatenate([y.numpy() for _, y in dataset.take(20)])
    assert abs(np.mean(ages == 60) - 0.5) < 0.07
