"""MTCNN's image pyramid: the compiled area resize computes OpenCV's INTER_AREA."""

import os

import cv2
import numpy as np
import pytest

from ssrnet_tf.faces import area_pyramid, mtcnn_litert


def random_image(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def test_the_compiled_helper_is_built_in_ci():
    if not area_pyramid.COMPILED:
        if os.environ.get("CI") == "true":
            pytest.fail("ssrnet_tf.faces._area_pyramid was not built: CI installs with pip install -e .")
        pytest.skip("the optional C helper is not built here (pip install -e . builds it); OpenCV is used instead")


@pytest.mark.parametrize("shape,sizes", [
    ((480, 640, 3), [(288, 384), (204, 272), (144, 193), (13, 17)]),  # a 640x480 frame's pyramid
    ((37, 53, 1), [(11, 29), (37, 53), (1, 1)]),  # odd sides, same size, one pixel
    ((100, 100, 4), [(33, 100), (100, 7)]),  # one side kept
])
def test_area_levels_are_opencvs_inter_area(shape, sizes):
    image = random_image(shape)
    levels = area_pyramid.area_levels(image, sizes)
    for (rows, cols), level in zip(sizes, levels):
        expected = cv2.resize(image, (cols, rows), interpolation=cv2.INTER_AREA).reshape(rows, cols, shape[2])
        assert level.shape == (rows, cols, shape[2]) and level.dtype == np.float32
        np.testing.assert_allclose(level, expected, atol=2e-6)


def test_a_640x480_frames_pyramid_matches_the_reference_path():
    image = mtcnn_litert.normalize(np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8))
    scales = mtcnn_litert.pyramid_scales(640, 480, 20)
    sizes = [(int(480 * s), int(640 * s)) for s in scales if min(int(480 * s), int(640 * s)) >= 12]
    for fast, reference in zip(area_pyramid.area_levels(image, sizes), area_pyramid.opencv_area_levels(image, sizes)):
        np.testing.assert_allclose(fast, reference, atol=2e-6)


def test_upscaling_falls_back_to_opencv_and_bad_input_is_named():
    image = random_image((20, 30, 3))
    (level,) = area_pyramid.area_levels(image, [(40, 45)])  # min_face_size < 12 makes such a first level
    np.testing.assert_array_equal(level, cv2.resize(image, (45, 40), interpolation=cv2.INTER_AREA))
    with pytest.raises(ValueError, match="H, W, C"):
        area_pyramid.area_levels(image[..., 0], [(10, 10)])
