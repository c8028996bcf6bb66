"""Tests of the label encodings of the age heads (pure NumPy)."""

import numpy as np
import pytest

from ssrnet_tf.heads import encodings


# Age-Granularity-Net, Fig. 2: 44 years is "the 43'rd class in the 100-class loss,
# the 8'th class in the 20-class loss, the 4'th class in the 10-class loss and 2'nd
# class in the 5-class loss": ceil(44 / g) - 1 = 43, 8, 4, 2 (0-based).
@pytest.mark.parametrize("granularity,classes,expected", [(1, 100, 43), (5, 20, 8), (10, 10, 4), (20, 5, 2)])
def test_paper_example_age_44(granularity, classes, expected):
    assert encodings.num_classes(granularity) == classes
    assert encodings.granularity_class([44], granularity).tolist() == [expected]


@pytest.mark.parametrize("granularity,floor_class", [(1, 44), (5, 8), (10, 4), (20, 2)])
def test_floor_indexing_is_a_named_option(granularity, floor_class):
    assert encodings.granularity_class([44], granularity, indexing="floor").tolist() == [floor_class]
    # 45 sits on a 5-year edge: (40, 45] is paper class 8, [45, 50) floor class 9.
    assert encodings.granularity_class([45], 5).tolist() == [8]
    assert encodings.granularity_class([45], 5, indexing="floor").tolist() == [9]
    with pytest.raises(ValueError, match="indexing"):
        encodings.granularity_class([44], 5, indexing="round")


@pytest.mark.parametrize("granularity", [1, 5, 10, 20])
def test_range_boundaries_go_to_first_and_last_class(granularity):
    last = encodings.num_classes(granularity) - 1
    for indexing in encodings.CLASS_INDEXINGS:
        got = encodings.granularity_class([0, 99.9, 100, 116], granularity, indexing=indexing)
        assert got.dtype == np.int32
        assert got.tolist() == [0, last, last, last]
    # Paper indexing: ages 0 and 1 share the first one-year class (the ages 1..100).
    assert encodings.granularity_class([0, 1, 2], 1).tolist() == [0, 0, 1]


def test_granularity_class_with_shifted_and_uneven_range():
    # 1..80 by 3 years: ceil(79 / 3) = 27 classes; ages below min_age clip to 0.
    assert encodings.num_classes(3, 1, 80) == 27
    got = encodings.granularity_class([0, 1, 3.9, 4, 80, 90], 3, 1, 80, indexing="floor")
    assert got.tolist() == [0, 0, 0, 1, 26, 26]
    # Paper: (1, 4] is class 0, (4, 7] class 1.
    assert encodings.granularity_class([0, 1, 4, 4.5, 80, 90], 3, 1, 80).tolist() == [0, 0, 0, 1, 26, 26]


@pytest.mark.parametrize("bad", [[-1], [-0.5], [np.nan], [np.inf]])
def test_negative_or_non_finite_ages_raise(bad):
    with pytest.raises(ValueError, match="ages must be"):
        encodings.granularity_class(bad, 5)
    with pytest.raises(ValueError, match="ages must be"):
        encodings.gaussian_label_distribution(bad)
    with pytest.raises(ValueError, match="ages must be"):
        encodings.age_group_index(bad, "3_groups")


@pytest.mark.parametrize(
    "function,args",
    [
        (encodings.num_classes, (0,)),
        (encodings.num_classes, (2.5,)),
        (encodings.num_classes, (1, 10, 10)),
        (encodings.num_classes, (1, -1, 10)),
        (encodings.num_classes, (1, 0, 99.5)),
        (encodings.gaussian_label_distribution, ([3], 0.0)),
    ],
)
def test_invalid_parameters_raise(function, args):
    with pytest.raises(ValueError):
        function(*args)


def test_class_centers():
    # Paper indexing: 1-20 -> 10.5, ..., 81-100 -> 90.5; 1-5 -> 3, 6-10 -> 8.
    np.testing.assert_array_equal(encodings.class_centers(20), [10.5, 30.5, 50.5, 70.5, 90.5])
    np.testing.assert_array_equal(encodings.class_centers(5)[:2], [3.0, 8.0])
    centers = encodings.class_centers(1)
    assert centers.shape == (100,) and centers[43] == 44.0 and centers[0] == 1.0 and centers[-1] == 100.0
    np.testing.assert_array_equal(encodings.class_centers(20, indexing="floor"), [9.5, 29.5, 49.5, 69.5, 90.0])
    np.testing.assert_array_equal(encodings.class_centers(5, indexing="floor")[:2], [2.0, 7.0])
    floor_centers = encodings.class_centers(1, indexing="floor")
    assert floor_centers[44] == 44.0 and floor_centers[-1] == 99.5
    # Uneven last class: 1..80 by 3 -> the last floor class holds 79 and 80, the last paper class 80.
    assert encodings.class_centers(3, 1, 80, indexing="floor")[-1] == 79.5
    assert encodings.class_centers(3, 1, 80)[-1] == 80.0


def test_discrete_age_class_rounds_and_clips():
    got = encodings.discrete_age_class([0, 0.49, 0.5, 44, 99.6, 100, 116])
    assert got.tolist() == [0, 0, 1, 44, 100, 100, 100]
    assert encodings.discrete_ages().shape == (101,)


def test_gaussian_label_distribution():
    dist = encodings.gaussian_label_distribution([44, 0, 100, 116], sigma=2.0)
    assert dist.shape == (4, 101) and dist.dtype == np.float32
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, rtol=1e-6)
    assert dist[0].argmax() == 44
    # Normalised over the 101 discrete ages: for an interior age this is the
    # Gaussian density divided by its (almost exactly 1) Riemann sum.
    expected = np.exp(-np.square(np.arange(101) - 44.0) / 8.0)
    np.testing.assert_allclose(dist[0], expected / expected.sum(), rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(dist[0, 44], 1.0 / np.sqrt(2 * np.pi * 4), rtol=1e-4)
    # Ages at the range ends are one-sided; ages above the range are clipped.
    assert dist[1].argmax() == 0 and dist[2].argmax() == 100
    np.testing.assert_array_equal(dist[2], dist[3])
    np.testing.assert_allclose(dist[0].dot(np.arange(101)), 44.0, rtol=1e-5)


def test_age_group_presets_are_the_multitask_papers():
    # 3 groups 1-26 / 27-52 / 53-80; 5 groups 1-11 / 12-23 / 24-39 / 40-55 / 56-80;
    # 10 groups of 8 years 1-8, ..., 73-80 (Gu and Yang, section 2.1).
    ages = [0, 1, 26, 27, 52, 53, 80, 116]
    assert encodings.age_group_index(ages, "3_groups").tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    ages = [1, 11, 12, 23, 24, 39, 40, 55, 56, 80, 116, 0]
    assert encodings.age_group_index(ages, "5_groups").tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 0]
    index = encodings.age_group_index(np.arange(1, 81), "10_groups")
    assert np.bincount(index).tolist() == [8] * 10
    assert np.bincount(encodings.age_group_index(np.arange(1, 81), "3_groups")).tolist() == [26, 26, 28]
    assert np.bincount(encodings.age_group_index(np.arange(1, 81), "5_groups")).tolist() == [11, 12, 16, 16, 25]
    # Centres: midpoints of 1-26, 27-52, 53-80 and of 1-11, ..., 56-80.
    np.testing.assert_array_equal(encodings.age_group_centers("3_groups"), [13.5, 39.5, 66.5])
    np.testing.assert_array_equal(encodings.age_group_centers("5_groups"), [6.0, 17.5, 31.5, 47.5, 68.0])
    assert encodings.age_group_index([9.99, 10, 50], [10, 50.5]).tolist() == [0, 1, 1]


@pytest.mark.parametrize("bad", ["4_groups", [], [10, 10], [30, 20], [0, 10]])
def test_invalid_age_groups_raise(bad):
    with pytest.raises(ValueError):
        encodings.age_group_index([20], bad)


def test_task_labels():
    assert encodings.task_labels([0, 1, -1], 2, "gender").tolist() == [0, 1, -1]
    for bad in ([2], [-2], [0.5]):
        with pytest.raises(ValueError, match="gender"):
            encodings.task_labels(bad, 2, "gender")
