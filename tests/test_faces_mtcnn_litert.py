"""MTCNN through LiteRT: same networks, same algorithm, same faces as ``mtcnn``."""

import random
import shutil

import cv2
import numpy as np
import pytest

from ssrnet_tf import pretrained
from ssrnet_tf.faces import UTKFACE_MARGIN, FaceCropper, FaceDetector, detector_comparison, mtcnn_litert
from ssrnet_tf.faces.mtcnn_conversion import CHECKSUM_FILE, NETWORK_FILES
from ssrnet_tf.model_spec import ModelSpec


@pytest.fixture(scope="module")
def lite():
    return mtcnn_litert.LiteMTCNN(num_threads=1)


def test_shipped_networks_compute_the_mtcnn_packages_networks(lite):
    from mtcnn.stages import StageONet, StagePNet, StageRNet

    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (1, 37, 53, 3)).astype(np.float32)
    crops24 = rng.uniform(-1, 1, (5, 24, 24, 3)).astype(np.float32)
    crops48 = rng.uniform(-1, 1, (3, 48, 48, 3)).astype(np.float32)
    for network, keras_net, batch, widths in [(lite._pnet, StagePNet().model, image, (4, 2)),
                                              (lite._rnet, StageRNet().model, crops24, (4, 2)),
                                              (lite._onet, StageONet().model, crops48, (4, 10, 2))]:
        got = network(batch)
        for width, expected in zip(widths, keras_net(batch)):
            np.testing.assert_allclose(got[width], np.asarray(expected), atol=2e-4)


def test_damaged_network_file_is_refused(tmp_path):
    for name in list(NETWORK_FILES.values()) + [CHECKSUM_FILE]:
        shutil.copy(mtcnn_litert.MODELS_DIR / name, tmp_path / name)
    data = bytearray((tmp_path / "rnet.tflite").read_bytes())
    data[-1] ^= 1
    (tmp_path / "rnet.tflite").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="rnet.tflite: SHA-256 does not match"):
        mtcnn_litert.LiteMTCNN(models_dir=tmp_path)
    (tmp_path / CHECKSUM_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=CHECKSUM_FILE):
        mtcnn_litert.LiteMTCNN(models_dir=tmp_path)


def test_geometry_matches_the_mtcnn_package():
    import tensorflow as tf
    from mtcnn.utils import bboxes, images

    rng = np.random.default_rng(1)
    corner = rng.uniform(0, 80, (40, 2))
    rows = np.concatenate([np.zeros((40, 1)), corner, corner + rng.uniform(5, 40, (40, 2)), rng.uniform(0, 1, (40, 1))], 1)
    for method, threshold in [("union", 0.5), ("min", 0.7)]:
        expected = bboxes.smart_nms_from_bboxes(rows.copy(), threshold, method=method, initial_sort=True)
        np.testing.assert_array_equal(mtcnn_litert.suppress(rows, threshold, method), expected)
    np.testing.assert_array_equal(mtcnn_litert.square(rows), bboxes.resize_to_square(rows))
    np.testing.assert_array_equal(mtcnn_litert.pyramid_scales(640, 480, 20), images.build_scale_pyramid(640, 480, 20, 0.709))

    image = rng.uniform(-1, 1, (90, 110, 3)).astype(np.float32)
    rows[:3, 1:3] -= 50  # partly outside the image
    expected = images.extract_patches(image[None], rows, (24, 24)).numpy()
    np.testing.assert_allclose(mtcnn_litert.crop_and_resize(image, rows, 24), expected, atol=1e-4)

    offsets, scores = rng.normal(0, 0.1, (1, 20, 30, 4)), rng.uniform(0, 1, (1, 20, 30, 2))
    expected = bboxes.upscale_bboxes(
        bboxes.generate_bounding_box(tf.constant(offsets), tf.constant(scores), 0.6), np.asarray([0.3]))
    np.testing.assert_allclose(mtcnn_litert.proposals(offsets[0], scores[0, :, :, 1], 0.3, 0.6), expected)


def test_no_face_and_tiny_images(lite):
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert lite.detect(noise).shape == (0, 16)
    assert lite.detect(np.full((11, 11, 3), 128, np.uint8)).shape == (0, 16)
    assert FaceDetector(backend="litert").detect(np.full((30, 500, 3), 128, np.uint8)) == []
    with pytest.raises(ValueError, match="backend"):
        FaceDetector(backend="opencv")


@pytest.mark.slow
def test_litert_and_mtcnn_find_the_same_faces_and_ages(utkface_dir, reference_dir):
    """24 single-face 640x480 frames and 6 four-face group photos from UTKFace."""
    paths = sorted(utkface_dir.glob("*.jpg"))
    random.Random(18).shuffle(paths)
    faces = [cv2.imread(str(p)) for p in paths[:48]]
    rng = np.random.default_rng(18)
    frames = [detector_comparison.single_face_frame(f, (640, 480), rng, seed=k) for k, f in enumerate(faces[:24])]
    frames += [detector_comparison.group_frame(faces[k:k + 4], (640, 480), seed=k) for k in range(24, 48, 4)]
    spec = ModelSpec(input_size=(64, 64), alignment="similarity", margin=UTKFACE_MARGIN)
    model = pretrained.load_reference_ssrnet(reference_dir / "ssrnet_3_3_3_64_1.0_1.0_imdb.h5")
    croppers = {backend: FaceCropper(spec, backend=backend, num_threads=1) for backend in ("mtcnn", "litert")}

    pairs, unmatched, age_gaps = [], 0, []
    for frame in frames:
        found = {backend: cropper.crops(frame) for backend, cropper in croppers.items()}
        pairing = detector_comparison.pair_detections(found["mtcnn"], found["litert"])
        pairs += pairing.pairs
        unmatched += len(pairing.reference_only) + len(pairing.test_only)
        if pairing.pairs:
            ages = {backend: np.asarray(model(croppers[backend].model_input(found[backend]))["age"]).reshape(-1)
                    for backend in found}
            age_gaps += [abs(ages["mtcnn"][i] - ages["litert"][j]) for i, j, _, _ in pairing.pairs]
    assert unmatched == 0
    assert len(pairs) >= 40  # most of the 48 faces are found at all
    ious = np.array([p[2] for p in pairs])
    landmark_errors = np.array([p[3] for p in pairs])
    assert ious.min() >= 0.95, ious.min()
    assert np.mean(landmark_errors <= 0.03) >= 0.99, landmark_errors.max()
    assert max(age_gaps) <= 0.1, max(age_gaps)
