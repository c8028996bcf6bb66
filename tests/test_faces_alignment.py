"""Crop geometry without a detector: template, margins, warps, policies."""

import cv2
import numpy as np
import pytest

from ssrnet_tf.faces import (
    UTKFACE_MARGIN,
    UTKFACE_TEMPLATE,
    Detection,
    FaceCrop,
    FaceCropper,
    measure_layout,
    synthetic_face,
    template_points,
)
from ssrnet_tf.faces import face_alignment
from ssrnet_tf.model_spec import ModelSpec


def test_template_is_the_utkface_layout_and_zooms_out_with_the_margin():
    points = template_points((200, 200))
    np.testing.assert_allclose(points, UTKFACE_TEMPLATE * 200 - 0.5)
    assert points[0, 1] == points[1, 1] and points[3, 1] == points[4, 1]  # eyes, mouth level
    wide = template_points((64, 64), margin=0.4)
    eye_distance = lambda p: p[1, 0] - p[0, 0]  # noqa: E731
    assert eye_distance(wide) == pytest.approx(eye_distance(template_points((64, 64))) * (1 + 2 * UTKFACE_MARGIN) / 1.8)
    tall = template_points((80, 64))
    np.testing.assert_allclose(tall.mean(0), template_points((64, 64)).mean(0) + [0, 8])
    with pytest.raises(ValueError, match="margin"):
        template_points((64, 64), margin=-0.1)


def test_similarity_fit_recovers_a_known_transform():
    target = template_points((64, 64))
    angle, scale, shift = np.radians(23.0), 3.1, np.array([412.0, 97.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = target @ rotation.T + shift  # a face 3.1x larger, tilted by 23 degrees
    matrix = face_alignment.similarity_matrix(source, (64, 64), UTKFACE_MARGIN)
    np.testing.assert_allclose(face_alignment.transform_points(matrix, source), target, atol=1e-3)
    assert face_alignment.eye_angle(face_alignment.transform_points(matrix, source)) == pytest.approx(0.0, abs=1e-3)
    assert face_alignment.similarity_matrix(np.zeros((5, 2)), (64, 64), 0.4) is None


def test_one_wrong_landmark_does_not_tilt_the_crop():
    source = template_points((64, 64)) * 2.0 + 100.0
    source[4] += [25.0, 40.0]  # a mouth corner far off
    matrix = face_alignment.similarity_matrix(source, (64, 64), UTKFACE_MARGIN)
    warped = face_alignment.transform_points(matrix, source)
    assert abs(face_alignment.eye_angle(warped)) < 0.1
    np.testing.assert_allclose(warped[:4], template_points((64, 64))[:4], atol=0.05)


def test_box_crop_equals_crop_then_resize():
    image = synthetic_face(200, seed=4)
    box = (30, 40, 170, 180)
    matrix = face_alignment.box_matrix(box, (100, 100))
    crop = face_alignment.warp_crop(image, matrix, (100, 100))
    expected = cv2.resize(image[40:180, 30:170], (100, 100), interpolation=cv2.INTER_LINEAR)
    # warpAffine and resize round their fixed-point weights differently: 1 level in OpenCV 5, 2 in 4.x.
    assert np.abs(crop.astype(int) - expected).max() <= 2


def test_strong_shrink_is_area_averaged_not_aliased():
    stripes = np.zeros((640, 640, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: aliasing turns them black or white
    matrix = face_alignment.box_matrix((0, 0, 640, 640), (64, 64))
    crop = face_alignment.warp_crop(stripes, matrix, (64, 64))
    assert np.abs(crop.astype(float) - 127.5).max() < 3


def test_expand_box_clips_to_the_image():
    np.testing.assert_allclose(face_alignment.expand_box((10, 20, 60, 120), 0.4), (-10, -20, 80, 160))
    np.testing.assert_allclose(face_alignment.expand_box((10, 20, 60, 120), 0.4, (70, 150)), (0, 0, 70, 150))


def fake_detection(center, size, score, angle=0.0):
    """A detection whose landmarks are the template, scaled/rotated to a box."""
    points = (UTKFACE_TEMPLATE - 0.5) * size
    rad = np.radians(angle)
    points = points @ np.array([[np.cos(rad), np.sin(rad)], [-np.sin(rad), np.cos(rad)]]) + center
    half = size / 2
    return Detection(np.array([center[0] - half, center[1] - half, center[0] + half, center[1] + half]), points, score)


class StubDetector:
    min_face_size, min_score, max_side = 20.0, 0.9, 1280

    def __init__(self, detections):
        self.detections = detections

    def detect(self, image):
        return list(self.detections)


def test_policies_and_model_input():
    detections = [fake_detection((300, 100), 60, 0.99), fake_detection((100, 120), 90, 0.95),
                  fake_detection((200, 110), 40, 0.999)]
    image = np.zeros((240, 400, 3), np.uint8)
    spec = ModelSpec(input_size=(32, 32), alignment="similarity", margin=UTKFACE_MARGIN)
    assert [d.score for d in FaceCropper(spec, detector=StubDetector(detections)).detect(image)] == [0.95, 0.999, 0.99]
    assert FaceCropper(spec, policy="largest", detector=StubDetector(detections)).detect(image)[0].score == 0.95
    assert FaceCropper(spec, policy="most_confident", detector=StubDetector(detections)).detect(image)[0].score == 0.999
    assert FaceCropper(spec, detector=StubDetector([])).crops(image) == []
    with pytest.raises(ValueError, match="policy"):
        FaceCropper(spec, policy="first")
    with pytest.raises(ValueError, match="alignment"):
        FaceCropper(ModelSpec(alignment="affine"))

    crop = np.zeros((32, 32, 3), np.uint8)
    crop[..., 0] = 255  # blue in BGR
    faces = [FaceCrop(np.zeros(4), np.zeros((5, 2)), 1.0, crop, np.eye(2, 3), "none")]
    bgr = FaceCropper(spec).model_input(faces)
    assert bgr.dtype == np.float32 and bgr.shape == (1, 32, 32, 3) and bgr[0, 0, 0, 0] == 255
    rgb = FaceCropper(ModelSpec(input_size=(32, 32), channel_order="rgb", pixel_range="0-1")).model_input(faces)
    assert rgb[0, 0, 0, 2] == 1.0 and rgb[0, 0, 0, 0] == 0.0
    assert FaceCropper(spec).model_input([]).shape == (0, 32, 32, 3)


@pytest.mark.parametrize("alignment", ["similarity", "none"])
def test_crops_follow_the_spec(alignment):
    image = synthetic_face(400, seed=2)
    detection = fake_detection((200, 200), 180, 0.99, angle=20.0)
    spec = ModelSpec(input_size=(48, 48), alignment=alignment, margin=0.4)
    (face,) = FaceCropper(spec, detector=StubDetector([detection])).crops(image)
    assert face.crop.shape == (48, 48, 3) and face.alignment == alignment
    landmarks = face.crop_landmarks()
    if alignment == "similarity":
        np.testing.assert_allclose(landmarks, template_points((48, 48), 0.4), atol=1e-3)
    else:  # the box grown by 40 % per side: the face spans 1/1.8 of the crop, still tilted
        assert abs(face_alignment.eye_angle(landmarks) - 20.0) < 0.5
        assert face.matrix[0, 0] == pytest.approx(48 / (180 * 1.8))
    assert face.to_json(scale=2.0)["box"] == [220.0, 220.0, 580.0, 580.0]


def test_measure_layout_averages_the_detections():
    images = [np.zeros((200, 200, 3), np.uint8)] * 3

    class Sequence:
        min_face_size = 20.0
        calls = iter([[fake_detection((100, 100), 190, 0.99)], [], [fake_detection((100, 100), 190, 0.99)]])

        def detect(self, image):
            return next(self.calls)

    layout = measure_layout(images, Sequence())
    assert (layout.found, layout.total) == (2, 3) and layout.detection_rate == pytest.approx(2 / 3)
    np.testing.assert_allclose(layout.landmarks, (UTKFACE_TEMPLATE - 0.5) * 0.95 + 0.5 + 0.5 / 200, atol=1e-9)
    assert layout.margin == pytest.approx((200 / 190 - 1) / 2)
