"""FaceCropper with the real detector on a few real faces."""

import random

import cv2
import numpy as np
import pytest

from ssrnet_tf.faces import UTKFACE_MARGIN, FaceCropper, FaceDetector, Placement, face_alignment, paste_faces
from ssrnet_tf.model_spec import ModelSpec


@pytest.fixture(scope="module")
def faces(utkface_dir):
    paths = sorted(utkface_dir.glob("*.jpg"))
    random.Random(11).shuffle(paths)
    return [cv2.imread(str(p)) for p in paths[:6]]


def spec(size, alignment, margin=UTKFACE_MARGIN):
    return ModelSpec(input_size=(size, size), alignment=alignment, margin=margin)


def test_a_utkface_image_is_cropped_onto_itself(faces):
    cropper = FaceCropper(spec(200, "similarity"))
    for image in faces:
        (face,) = cropper.crops(image)
        scale = np.sqrt(abs(np.linalg.det(face.matrix[:, :2])))
        assert 0.88 < scale < 1.12, scale
        assert np.abs(face.matrix[:, 2]).max() < 25
        assert np.abs(face.crop.astype(float) - image).mean() < 25


def test_eye_rotation_levels_the_eyes_of_a_tilted_face(faces):
    canvas, _ = paste_faces((420, 420), [faces[0]], [Placement((210, 210), angle=25.0, scale=1.2)])
    detector = FaceDetector()
    tilted = detector.detect(canvas)[0]
    assert abs(face_alignment.eye_angle(tilted.landmarks)) > 15

    for alignment, level in [("eye_rotation", True), ("similarity", True), ("none", False)]:
        (face,) = FaceCropper(spec(160, alignment, margin=0.3)).crops(canvas)
        assert face.alignment == alignment and face.note == ""
        again = detector.detect(face.crop)  # the crop, detected afresh
        assert again, alignment
        angle = face_alignment.eye_angle(again[0].landmarks)
        assert (abs(angle) < 6) if level else (abs(angle) > 15), (alignment, angle)


def test_big_images_are_detected_small_and_mapped_back(faces):
    placements = [Placement((900, 700), 0.0, 4.0), Placement((2300, 1200), -15.0, 3.0)]
    canvas, matrices = paste_faces((3200, 2000), faces[1:3], placements)
    detector = FaceDetector()
    expected = []
    for face, matrix in zip(faces[1:3], matrices):
        landmarks = detector.detect(face)[0].landmarks
        expected.append(face_alignment.transform_points(matrix, landmarks))
    found = FaceCropper(spec(64, "similarity"), max_detection_side=800).crops(canvas)
    assert len(found) == 2
    for face, landmarks in zip(found, expected):  # left to right
        eye_distance = np.linalg.norm(landmarks[1] - landmarks[0])
        assert np.abs(face.landmarks - landmarks).max() < 0.25 * eye_distance


def test_no_face_and_tiny_images_give_nothing():
    cropper = FaceCropper(spec(64, "similarity"))
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    assert cropper.crops(noise) == []
    assert cropper.crops(np.full((8, 8, 3), 128, np.uint8)) == []
    assert cropper.crops(np.full((1, 500, 3), 128, np.uint8)) == []
