"""Augmentations: each option runs in-graph on BGR 0-255 batches, seeded and correct."""

import numpy as np
import pytest
import tensorflow as tf

from ssrnet_tf.data import augment, image_ops, rand_augment

SEED = tf.constant([3, 4], tf.int64)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    # Smooth images with structure (a gradient plus blobs), like faces more than noise.
    y, x = np.mgrid[0:32, 0:32]
    base = np.stack([x * 6, y * 6, (x + y) * 3], axis=-1).astype(np.float32)
    images = np.stack([np.clip(base + rng.uniform(-40, 40, 3), 0, 255) for _ in range(16)]).astype(np.float32)
    return tf.constant(images)


@pytest.mark.parametrize("name", augment.NAMES)
def test_each_option_runs_in_graph_seeded_and_in_range(batch, name):
    config = augment.AugmentConfig.from_names([name], hsv_probability=1.0, gamma_probability=1.0,
                                              brightness_probability=1.0, contrast_probability=1.0)
    augmenter = augment.Augmenter(config)
    graph = tf.function(augmenter)
    out = graph(batch, SEED).numpy()
    assert out.shape == batch.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert not np.allclose(out, batch.numpy())
    np.testing.assert_array_equal(graph(batch, SEED).numpy(), out)
    assert not np.array_equal(graph(batch, SEED + 1).numpy(), out)
    # Works inside tf.data on batches, which is how the pipeline uses it.
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(8).map(lambda images: augmenter(images, SEED))
    assert sum(int(b.shape[0]) for b in dataset) == 16


def test_probability_zero_leaves_images_unchanged(batch):
    config = augment.AugmentConfig.from_names(["hsv_shift", "gamma", "brightness", "contrast"],
                                              hsv_probability=0, gamma_probability=0, brightness_probability=0,
                                              contrast_probability=0)
    np.testing.assert_array_equal(augment.Augmenter(config)(batch, SEED).numpy(), batch.numpy())


def test_probability_point_three_changes_about_a_third():
    images = tf.fill([400, 8, 8, 3], 100.0)
    out = augment.Augmenter(augment.AugmentConfig.from_names(["gamma"]))(images, SEED).numpy()
    changed = np.mean(np.any(out != 100.0, axis=(1, 2, 3)))
    assert 0.22 < changed < 0.38


def test_flip_mirrors_some_images_exactly(batch):
    out = augment.Augmenter(augment.AugmentConfig.from_names(["horizontal_flip"]))(batch, SEED).numpy()
    flipped = [np.array_equal(o, b[:, ::-1]) for o, b in zip(out, batch.numpy())]
    same = [np.array_equal(o, b) for o, b in zip(out, batch.numpy())]
    assert all(f or s for f, s in zip(flipped, same)) and any(flipped) and any(same)


def test_random_crop_is_a_padded_shift_of_at_most_four_pixels(batch):
    out = augment.Augmenter(augment.AugmentConfig.from_names(["random_crop"]))(batch, SEED).numpy()
    images = batch.numpy()
    for o, image in zip(out, images):
        padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
        matches = [(dy, dx) for dy in range(9) for dx in range(9)
                   if np.array_equal(padded[dy:dy + 32, dx:dx + 32], o)]
        assert matches, "output is not a crop of the 4-pixel zero-padded image"


def test_composed_flip_crop_affine_resamples_once(batch):
    config = augment.AugmentConfig.from_names(["horizontal_flip", "random_crop", "affine"])
    out = augment.Augmenter(config)(batch, SEED).numpy()
    assert out.shape == batch.shape and np.isfinite(out).all()
    identity = image_ops.compose(image_ops.mirror_matrices(32, tf.constant([True])),
                                 image_ops.mirror_matrices(32, tf.constant([True])))
    np.testing.assert_allclose(identity.numpy(), [[1, 0, 0, 0, 1, 0, 0, 0]], atol=1e-6)


def test_hsv_shift_treats_images_as_bgr():
    red_bgr = tf.constant([[[[0.0, 0.0, 255.0]]]])
    green = image_ops.shift_hsv(red_bgr, [1.0 / 3.0], [0.0], [0.0]).numpy()
    np.testing.assert_allclose(green[0, 0, 0], [0.0, 255.0, 0.0], atol=1e-3)
    # And agrees with tf.image.adjust_hue on the RGB image.
    rgb = tf.random.stateless_uniform([1, 8, 8, 3], [1, 2]) * 255.0
    ours = image_ops.shift_hsv(tf.reverse(rgb, [-1]), [0.1], [0.0], [0.0])
    expected = tf.image.adjust_hue(rgb / 255.0, 0.1) * 255.0
    np.testing.assert_allclose(tf.reverse(ours, [-1]).numpy(), expected.numpy(), atol=0.05)


def test_grey_uses_bgr_weights_and_jitter_keeps_greys():
    blue = tf.constant([[[[255.0, 0.0, 0.0]]]])
    assert float(image_ops.grey(blue)[0, 0, 0, 0]) == pytest.approx(0.114 * 255, rel=1e-5)
    grey = tf.fill([2, 4, 4, 3], 120.0)
    matrices, offsets = image_ops.colour_jitter_matrices(grey, [1.0, 1.0], [1.0, 1.0], [1.5, 0.5], [0.2, -0.3])
    np.testing.assert_allclose(image_ops.apply_colour_matrix(grey, matrices, offsets).numpy(), 120.0, atol=1e-3)
    matrices, offsets = image_ops.colour_jitter_matrices(blue, [1.0], [1.0], [1.0], [0.0])
    np.testing.assert_allclose(image_ops.apply_colour_matrix(blue, matrices, offsets).numpy(), blue.numpy(),
                               atol=1e-3)


def test_equalize_and_auto_contrast_match_their_definitions():
    rng = np.random.default_rng(1)
    image = rng.integers(60, 120, size=(1, 64, 64, 3)).astype(np.float32)
    stretched = image_ops.auto_contrast(tf.constant(image)).numpy()
    assert stretched.min() == pytest.approx(0.0) and stretched.max() == pytest.approx(255.0)
    equalized = image_ops.equalize(tf.constant(image)).numpy()
    for channel in range(3):  # reference: PIL's ImageOps.equalize algorithm
        values = image[0, :, :, channel].astype(int)
        histogram = np.bincount(values.ravel(), minlength=256)
        step = (histogram.sum() - histogram[np.flatnonzero(histogram)[-1]]) // 255
        lut = np.concatenate([[0], (np.cumsum(histogram) + step // 2) // step])[:256].clip(0, 255)
        np.testing.assert_array_equal(equalized[0, :, :, channel], lut[values])
    flat = tf.fill([1, 4, 4, 3], 7.0)
    np.testing.assert_array_equal(image_ops.equalize(flat).numpy(), flat.numpy())


def test_rand_augment_at_magnitude_zero_changes_nothing(batch):
    operations = tuple(op for op in rand_augment.OPERATIONS if op not in ("auto_contrast", "equalize"))
    out = rand_augment.rand_augment(batch, SEED, num_ops=2, magnitude=0.0, operations=operations).numpy()
    np.testing.assert_allclose(out, batch.numpy(), atol=1e-3)


def test_rand_augment_draws_operations_per_image(batch):
    out = rand_augment.rand_augment(batch, SEED, num_ops=2, magnitude=9.0).numpy()
    changed = np.any(np.abs(out - batch.numpy()) > 1e-3, axis=(1, 2, 3))
    assert changed.sum() >= 8  # most images changed, by different operations
    differences = {round(float(np.abs(o - b).mean()), 3) for o, b in zip(out, batch.numpy())}
    assert len(differences) > 5
    with pytest.raises(ValueError, match="unknown"):
        rand_augment.rand_augment(batch, SEED, operations=("warp",))


def test_config_names_dict_round_trip_and_validation():
    config = augment.AugmentConfig.from_names(["horizontal_flip", "rand_augment"], rand_augment_magnitude=5)
    assert config.enabled() == ["horizontal_flip", "rand_augment"]
    assert augment.AugmentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="choose from"):
        augment.AugmentConfig.from_names(["mixup"])
    with pytest.raises(ValueError, match="unknown augmentation settings"):
        augment.AugmentConfig.from_dict({"flip": True})
    with pytest.raises(ValueError, match="gamma_probability"):
        augment.AugmentConfig(gamma_probability=1.5)
    with pytest.raises(ValueError, match="affine_fill"):
        augment.AugmentConfig(affine_fill="mirror")


def test_affine_probability_transforms_only_the_chosen_images(batch):
    """SSR-Net: zoom/shift/shear are "randomly activated"; unchosen images stay as they are."""
    never = augment.Augmenter(augment.AugmentConfig.from_names(["affine"], affine_probability=0.0))
    np.testing.assert_allclose(never(batch, SEED).numpy(), batch.numpy(), atol=1e-3)
    half = augment.Augmenter(augment.AugmentConfig.from_names(["affine"], affine_probability=0.5))
    images = tf.concat([batch] * 8, axis=0)  # 128 images
    changed = np.abs(half(images, SEED).numpy() - images.numpy()).max(axis=(1, 2, 3)) > 1e-3
    assert 40 <= changed.sum() <= 88
    with pytest.raises(ValueError, match="affine_probability"):
        augment.AugmentConfig(affine_probability=1.5)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("fill_mode", ["reflect", "constant", "nearest"])
def test_row_preserving_transforms_match_the_projective_op(interpolation, fill_mode):
    """Flip, zoom, shift and shear along x take the compiled path; rotations the op; same result."""
    rng = np.random.default_rng(3)
    images = tf.constant(rng.uniform(0, 255, (24, 20, 28, 3)), tf.float32)
    flip = tf.constant(rng.uniform(size=24) < 0.5)
    shear = np.where(np.arange(24) % 3 == 0, np.tan(rng.uniform(-0.3, 0.3, 24)), 0.0)

    def matrices(rotation):
        return image_ops.compose(
            image_ops.mirror_matrices(28, flip),
            image_ops.affine_matrices(20, 28, scale=rng.uniform(0.4, 1.6, 24), shear_x=shear, rotation=rotation,
                                      translate_x=rng.uniform(-40, 40, 24), translate_y=rng.uniform(-30, 30, 24)))

    tolerance = 0.0 if interpolation == "nearest" else 1e-2
    for rotation in (np.zeros(24), rng.uniform(-0.3, 0.3, 24)):
        transforms = matrices(rotation)
        expected = tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=[20, 28], fill_value=0.0,
            interpolation=interpolation.upper(), fill_mode=fill_mode.upper())
        got = image_ops.transform(images, transforms, interpolation=interpolation, fill_mode=fill_mode)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=tolerance, rtol=0)
    rows = image_ops.row_preserving_transform(images, matrices(np.zeros(24)), interpolation=interpolation,
                                              fill_mode=fill_mode)
    assert rows.shape == images.shape


def test_transform_keeps_the_image_dtype():
    images = tf.fill([2, 8, 8, 3], tf.constant(100.0, tf.float16))
    matrices = image_ops.affine_matrices(8, 8, translate_x=[1.0, -1.0])
    assert image_ops.transform(images, matrices).dtype == tf.float16


def test_random_resized_crop_stretches_a_box_of_the_drawn_area():
    # x-gradient image: pixel value = 4 * column. A full-area square box is the identity;
    # a box of 1/4 of the area and ratio 1 (16 x 16 of 32 x 32) maps output column x to
    # input x0 + x / 2, so the 32 output pixels of a row span 31 / 2 = 15.5 input columns,
    # i.e. 4 * 15.5 = 62 grey levels, within [0, 124].
    row = np.arange(32, dtype=np.float32) * 4.0
    images = tf.constant(np.broadcast_to(row[None, None, :, None], (6, 32, 32, 3)).copy())
    identity = augment.Augmenter(augment.AugmentConfig.from_names(
        ["random_resized_crop"], crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0)))
    np.testing.assert_allclose(identity(images, SEED).numpy(), images.numpy(), atol=1e-3)
    quarter = augment.Augmenter(augment.AugmentConfig.from_names(
        ["random_resized_crop"], crop_scale=(0.25, 0.25), crop_ratio=(1.0, 1.0)))
    out = quarter(images, SEED).numpy()
    spans = out[:, 5, :, 0].max(axis=1) - out[:, 5, :, 0].min(axis=1)
    np.testing.assert_allclose(spans, 62.0, atol=1e-3)
    assert out.min() >= 0.0 and out.max() <= 124.0 + 1e-3
    with pytest.raises(ValueError, match="crop_scale"):
        augment.AugmentConfig.from_names(["random_resized_crop"], crop_scale=(0.5, 1.5))


def test_brightness_contrast_is_one_draw_for_both(batch):
    # p = 1: every image gets brightness then contrast; p = 0: none does.
    on = augment.Augmenter(augment.AugmentConfig.from_names(["brightness_contrast"],
                                                            brightness_contrast_probability=1.0))(batch, SEED).numpy()
    assert all(not np.allclose(on[i], batch.numpy()[i]) for i in range(len(on)))
    off = augment.Augmenter(augment.AugmentConfig.from_names(["brightness_contrast"],
                                                             brightness_contrast_probability=0.0))(batch, SEED).numpy()
    np.testing.assert_array_equal(off, batch.numpy())
