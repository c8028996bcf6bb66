"""Detection and alignment on 500 real UTKFace faces (slow: ~1 minute)."""

import random

import numpy as np
import pytest

from ssrnet_tf.faces import UTKFACE_MARGIN, UTKFACE_TEMPLATE, FaceCropper, face_alignment, load_image
from ssrnet_tf.model_spec import ModelSpec

SAMPLE = 500


@pytest.mark.slow
def test_detection_rate_eye_line_and_layout_on_500_faces(utkface_dir):
    paths = sorted(utkface_dir.glob("*.jpg"))
    random.Random(500).shuffle(paths)  # not the calibration sample (seed 2024)
    paths = paths[:SAMPLE]
    cropper = FaceCropper(ModelSpec(input_size=(64, 64), alignment="similarity", margin=UTKFACE_MARGIN))
    large = FaceCropper(ModelSpec(input_size=(200, 200), alignment="similarity", margin=UTKFACE_MARGIN))
    found = []
    for path in paths:
        image = load_image(path).image
        detections = cropper.detect(image)
        if detections:
            found.append((image, detections[0], cropper.crop(image, detections[0])))
    rate = len(found) / len(paths)
    print(f"\nMTCNN found a face in {len(found)}/{len(paths)} UTKFace images ({rate:.1%})")
    assert rate >= 0.97

    # The warp levels the eye line: landmarks mapped into the 64x64 crops.
    crop_landmarks = np.stack([face.crop_landmarks() for _, _, face in found])
    angles = np.abs([face_alignment.eye_angle(points) for points in crop_landmarks])
    print(f"eye line in the crops: median {np.median(angles):.2f} deg, 95th percentile {np.percentile(angles, 95):.2f} deg")
    assert np.median(angles) < 1.5 and np.percentile(angles, 95) < 5.0
    np.testing.assert_allclose(np.median(crop_landmarks, 0), (UTKFACE_TEMPLATE * 64 - 0.5), atol=1.0)

    # The template and margin describe these (unseen) UTKFace images too.
    relative = np.stack([(detection.landmarks + 0.5) / 200.0 for _, detection, _ in found])
    np.testing.assert_allclose(relative.mean(0), UTKFACE_TEMPLATE, atol=0.01)
    sides = np.array([np.sqrt(d.area) / 200.0 for _, d, _ in found])
    assert abs((1 / sides.mean() - 1) / 2 - UTKFACE_MARGIN) < 0.015

    # Independent check: MTCNN run afresh on 40 aligned 200x200 crops finds level eyes.
    again = []
    for image, detection, _ in found[:40]:
        redetected = large.detector.detect(large.crop(image, detection).crop)
        if redetected:
            again.append(abs(face_alignment.eye_angle(redetected[0].landmarks)))
    assert len(again) >= 38 and np.median(again) < 2.0 and max(again) < 10.0
