"""Reading any photograph: EXIF rotation, huge, grayscale, alpha, broken files."""

import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from ssrnet_tf.faces import ImageReadError, load_image


def asymmetric_image(width=160, height=96):
    """BGR image whose every flip/rotation looks different."""
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 3, : width // 4] = (255, 255, 255)
    image[height // 2 :, width // 2 :] = (0, 0, 255)
    image[height - 10 :, :20] = (255, 0, 0)
    return image


def write_jpeg_with_orientation(path, image_bgr, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(image_bgr[..., ::-1]).save(path, "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_on_full_and_reduced_decoding(tmp_path, orientation):
    path = tmp_path / f"o{orientation}.jpg"
    write_jpeg_with_orientation(path, asymmetric_image(), orientation)
    with Image.open(path) as handle:
        upright = np.asarray(ImageOps.exif_transpose(handle))[..., ::-1]  # Pillow as the oracle

    full = load_image(path)
    assert full.image.shape == upright.shape
    assert np.abs(full.image.astype(int) - upright).mean() < 3
    assert full.original_size == (upright.shape[1], upright.shape[0])

    # A pixel budget below the image size forces libjpeg's 1/2-size decoding,
    # which OpenCV does without applying the orientation: load_image must.
    reduced = load_image(path, max_pixels=upright.shape[0] * upright.shape[1] // 3)
    assert reduced.scale == pytest.approx(2.0)
    expected = cv2.resize(upright, (reduced.image.shape[1], reduced.image.shape[0]), interpolation=cv2.INTER_AREA)
    assert reduced.image.shape[:2] == (upright.shape[0] // 2, upright.shape[1] // 2)
    assert np.abs(reduced.image.astype(int) - expected).mean() < 8
    if orientation != 1:
        assert any("EXIF orientation" in note for note in full.notes + reduced.notes)


def test_grayscale_alpha_and_16_bit(tmp_path):
    gray = np.tile(np.arange(0, 250, 2, dtype=np.uint8), (40, 1))
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    loaded = load_image(tmp_path / "gray.png")
    assert loaded.image.shape == (40, 125, 3) and loaded.image.dtype == np.uint8
    assert (loaded.image[..., 0] == gray).all() and (loaded.image[..., 2] == gray).all()
    assert any("grayscale" in note for note in loaded.notes)

    rgba = np.zeros((30, 30, 4), np.uint8)
    rgba[..., :3] = (0, 0, 200)  # red where opaque
    rgba[10:20, 10:20, 3] = 255  # opaque centre, transparent border
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    loaded = load_image(tmp_path / "rgba.png")
    assert loaded.image.shape == (30, 30, 3)
    assert tuple(loaded.image[0, 0]) == (255, 255, 255)  # composited onto white
    assert tuple(loaded.image[15, 15]) == (0, 0, 200)
    assert any("alpha" in note for note in loaded.notes)

    deep = (np.arange(64 * 64 * 3, dtype=np.uint32).reshape(64, 64, 3) * 7 % 65536).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.image.dtype == np.uint8 and (loaded.image == (deep >> 8)).all()


def test_alpha_png_with_exif_orientation(tmp_path):
    # IMREAD_UNCHANGED (kept for the alpha channel) ignores EXIF: load_image rotates.
    rgba = np.dstack([asymmetric_image()[..., ::-1], np.full((96, 160), 255, np.uint8)])
    rgba[60:, 120:, 3] = 0
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgba, "RGBA").save(tmp_path / "o6.png", exif=exif.tobytes())
    with Image.open(tmp_path / "o6.png") as handle:
        upright = np.asarray(ImageOps.exif_transpose(handle).convert("RGBA"))
    loaded = load_image(tmp_path / "o6.png")
    assert loaded.image.shape == (160, 96, 3)
    opaque = upright[..., 3] == 255
    assert (loaded.image[opaque] == upright[opaque][:, 2::-1]).all()
    assert (loaded.image[~opaque] == 255).all()


def test_broken_files_raise_a_clear_error(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image at all")
    ok, encoded = cv2.imencode(".png", asymmetric_image())
    (tmp_path / "cut.png").write_bytes(encoded.tobytes()[:40])
    for name, reason in [("empty.jpg", "empty"), ("text.jpg", "not a decodable image"),
                         ("cut.png", "not a decodable image"), ("missing.jpg", "not found")]:
        with pytest.raises(ImageReadError, match=reason) as info:
            load_image(tmp_path / name)
        assert name in str(info.value)


def test_large_non_jpeg_is_shrunk_or_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "big.png"), cv2.resize(asymmetric_image(), (400, 240)))
    shrunk = load_image(tmp_path / "big.png", max_pixels=24_000)
    assert shrunk.image.shape[0] * shrunk.image.shape[1] <= 24_000
    assert shrunk.original_size == (400, 240) and shrunk.scale == pytest.approx(400 / shrunk.image.shape[1])
    with pytest.raises(ImageReadError, match="too large to decode safely"):
        load_image(tmp_path / "big.png", max_pixels=10_000, max_decode_pixels=50_000)


HUGE_JPEG = textwrap.dedent(
    """
    import sys, cv2, numpy as np
    canvas = np.full((20000, 20000), 120, np.uint8)  # 400 MB, only in this process
    cv2.circle(canvas, (14000, 6000), 1500, 255, -1)
    ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 80])
    open(sys.argv[1], "wb").write(data.tobytes())
    """
)
LOAD_AND_MEASURE = textwrap.dedent(
    """
    import json, re, sys
    from ssrnet_tf.faces import load_image
    loaded = load_image(sys.argv[1])
    # VmHWM: peak resident memory of this process image (ru_maxrss would
    # include the parent's, inherited through fork and exec).
    peak_kb = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
    print(json.dumps({"shape": loaded.image.shape, "scale": loaded.scale, "size": loaded.original_size,
                      "notes": loaded.notes, "bright": loaded.image[6000 // 4, 14000 // 4].tolist(),
                      "max_rss_mb": peak_kb / 1024}))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads peak memory from Linux /proc")
def test_a_20000_pixel_jpeg_is_decoded_at_reduced_size(tmp_path):
    import json

    path = tmp_path / "huge.jpg"
    subprocess.run([sys.executable, "-c", HUGE_JPEG, str(path)], check=True, timeout=120)
    result = subprocess.run([sys.executable, "-c", LOAD_AND_MEASURE, str(path)], check=True, timeout=120,
                            capture_output=True, text=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["size"] == [20000, 20000]
    assert report["scale"] == 4.0 and report["shape"] == [5000, 5000, 3]
    assert report["bright"] == [255, 255, 255]  # the circle is where it should be
    assert any("1/4 size" in note for note in report["notes"])
    # A full decode alone would hold 1.2 GB (BGR); the reduced one stays small.
    assert report["max_rss_mb"] < 500, report
