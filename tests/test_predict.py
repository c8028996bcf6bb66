"""``ssrnet-tf predict`` and the AgePredictor behind it, on real faces."""

import json
import random
import shutil
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from PIL import Image

from ssrnet_tf import cli, model_spec, pretrained
from ssrnet_tf.errors import ExitCode
from ssrnet_tf.export import convert_to_tflite
from ssrnet_tf.faces import (
    UTKFACE_MARGIN,
    AgePredictor,
    FaceDetector,
    Placement,
    face_alignment,
    load_age_model,
    paste_faces,
)

IMDB = "ssrnet_3_3_3_64_1.0_1.0_imdb.h5"


@pytest.fixture(scope="module")
def face_paths(utkface_dir):
    paths = sorted(utkface_dir.glob("*.jpg"))
    random.Random(13).shuffle(paths)
    return paths[:8]


@pytest.fixture(scope="module")
def models(reference_dir, tmp_path_factory):
    """The published SSR-Net (imdb) as .keras and float32 .tflite, both with a spec."""
    folder = tmp_path_factory.mktemp("models")
    model = pretrained.load_reference_ssrnet(reference_dir / IMDB)
    spec = model_spec.ModelSpec(input_size=(64, 64), alignment="similarity", margin=UTKFACE_MARGIN,
                                architecture="ssrnet(3,3,3)", training_data="published SSR-Net weights: imdb")
    keras_path = model_spec.save_keras(model, folder / "ssrnet_imdb.keras", spec)
    tflite_path = folder / "ssrnet_imdb_float32.tflite"
    convert_to_tflite(model, tflite_path, spec=spec)
    bare_path = folder / "no_spec.keras"
    model.save(bare_path)
    return {"keras": keras_path, "tflite": tflite_path, "bare": bare_path, "spec": spec}


def group_photo(face_paths):
    """Five real faces pasted onto a canvas, three of them rotated by 15-30 degrees."""
    faces = [cv2.imread(str(p)) for p in face_paths[:5]]
    placements = [Placement((160, 180), 0.0, 1.0), Placement((450, 330), 30.0, 1.0),
                  Placement((760, 190), -30.0, 1.1), Placement((1050, 340), 15.0, 0.85),
                  Placement((1290, 170), 0.0, 0.8)]
    canvas, matrices = paste_faces((1450, 520), faces, placements)
    detector = FaceDetector()
    expected = [face_alignment.transform_points(m, detector.detect(face)[0].landmarks) for face, m in zip(faces, matrices)]
    return canvas, expected


def run_cli(capsys, *argv):
    code = cli.main(["predict", *map(str, argv)])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    return code, lines, captured.err


def test_group_photo_gives_one_entry_per_face(models, face_paths, tmp_path):
    canvas, expected = group_photo(face_paths)
    cv2.imwrite(str(tmp_path / "group.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 95])
    predictor = AgePredictor(load_age_model(models["keras"]))
    record = predictor.predict_file(tmp_path / "group.jpg", annotate_path=tmp_path / "annotated" / "group.jpg")
    faces = record["faces"]
    assert len(faces) == len(expected)
    for landmarks in expected:
        eye_distance = np.linalg.norm(landmarks[1] - landmarks[0])
        center = landmarks.mean(0)
        matches = [f for f in faces if np.linalg.norm(np.reshape(f["box"], (2, 2)).mean(0) - center) < eye_distance]
        assert len(matches) == 1, (center, [f["box"] for f in faces])
        (face,) = matches
        x1, y1, x2, y2 = face["box"]
        assert x1 < center[0] < x2 and y1 < center[1] < y2
        assert 1.5 * eye_distance < x2 - x1 < 4.0 * eye_distance
        found = np.array(list(face["landmarks"].values()))
        assert np.abs(found - landmarks).max() < 0.3 * eye_distance
        assert 1.0 < face["age"] < 100.0 and face["score"] >= 0.9
    assert (tmp_path / "annotated" / "group.jpg").is_file() and record["annotated"].endswith("group.jpg")


HUGE_FACE_JPEG = textwrap.dedent(
    """
    import sys, cv2, numpy as np
    face = cv2.cvtColor(cv2.imread(sys.argv[1]), cv2.COLOR_BGR2GRAY)
    canvas = np.full((20000, 20000), 120, np.uint8)  # 400 MB, only in this helper process
    canvas[5000:7400, 12000:14400] = cv2.resize(face, (2400, 2400))
    ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 85])
    open(sys.argv[2], "wb").write(data.tobytes())
    """
)


def test_folder_of_good_and_bad_images(models, face_paths, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    face = cv2.imread(str(face_paths[5]))
    shutil.copy(face_paths[6], folder / "good.jpg")
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
    rgba = np.zeros((300, 300, 4), np.uint8)
    rgba[50:250, 50:250, :3] = face
    rgba[50:250, 50:250, 3] = 255  # opaque face, transparent surround
    cv2.imwrite(str(folder / "transparent.png"), rgba)
    upright = cv2.copyMakeBorder(cv2.imread(str(face_paths[7])), 100, 0, 0, 0, cv2.BORDER_CONSTANT)  # 300 x 200
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # what a sideways camera writes
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(stored[..., ::-1]).save(folder / "rotated_exif.jpg", "JPEG", quality=95, exif=exif.tobytes())
    subprocess.run([sys.executable, "-c", HUGE_FACE_JPEG, str(face_paths[4]), str(folder / "huge.jpg")],
                   check=True, timeout=120)
    (folder / "broken.jpg").write_text("this is not a JPEG")
    (folder / "empty.png").write_bytes(b"")
    cv2.imwrite(str(folder / "noise.jpg"), np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / "tiny.png"), face[::25, ::25])  # 8 x 8
    (folder / "notes.txt").write_text("not an image")

    code, lines, _ = run_cli(capsys, folder, "--model", models["keras"], "--annotate", tmp_path / "annotated")
    assert code == 0
    header, records, summary = lines[0], {r["image"].rsplit("/", 1)[-1]: r for r in lines[1:-1]}, lines[-1]["summary"]
    assert header["spec_source"] == "model file (.keras)" and header["spec"]["alignment"] == "similarity"
    assert sorted(records) == ["broken.jpg", "empty.png", "good.jpg", "gray.png", "huge.jpg", "noise.jpg",
                               "rotated_exif.jpg", "tiny.png", "transparent.png"]
    for name in ("good.jpg", "gray.png", "transparent.png", "rotated_exif.jpg", "huge.jpg"):
        assert len(records[name]["faces"]) == 1, (name, records[name])
        assert 1.0 < records[name]["faces"][0]["age"] < 100.0
        assert (tmp_path / "annotated" / name).is_file()
    assert "not a decodable image" in records["broken.jpg"]["error"]
    assert "empty" in records["empty.png"]["error"]
    assert records["noise.jpg"]["faces"] == [] and "no face found" in records["noise.jpg"]["reason"]
    assert records["tiny.png"]["faces"] == [] and "8x8" in records["tiny.png"]["reason"]
    assert any("grayscale" in n for n in records["gray.png"]["notes"])
    assert any("alpha" in n for n in records["transparent.png"]["notes"])

    rotated = records["rotated_exif.jpg"]
    assert rotated["size"] == [200, 300] and any("EXIF orientation 6" in n for n in rotated["notes"])
    x1, y1, x2, y2 = rotated["faces"][0]["box"]
    assert 100 < (y1 + y2) / 2 < 300 and 50 < (x1 + x2) / 2 < 150  # upright: the face is in the lower part
    eyes = rotated["faces"][0]["landmarks"]
    assert abs(eyes["left_eye"][1] - eyes["right_eye"][1]) < 0.2 * (eyes["right_eye"][0] - eyes["left_eye"][0])

    huge = records["huge.jpg"]
    assert huge["size"] == [20000, 20000] and any("1/4 size" in n for n in huge["notes"])
    x1, y1, x2, y2 = huge["faces"][0]["box"]  # in the pixels of the 20,000 x 20,000 file
    assert 12000 < (x1 + x2) / 2 < 14400 and 5000 < (y1 + y2) / 2 < 7400 and x2 - x1 > 1200

    assert summary["images"] == 9 and summary["errors"] == 2 and summary["no_face"] == 2
    assert summary["with_faces"] == 5 and summary["skipped_files"] == [
        {"path": str(folder / "notes.txt"), "reason": "not an image file name (suffix .txt; images are "
         ".jpg, .jpeg, .jpe, .png, .bmp, .webp, .tif, .tiff, .pgm, .ppm, .pbm, .jp2)"}]


def test_keras_and_tflite_give_the_same_ages(models, face_paths, tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for path in face_paths[:6]:
        shutil.copy(path, folder / path.name)
    cv2.imwrite(str(folder / "group.jpg"), group_photo(face_paths)[0])
    by_kind = {}
    for kind in ("keras", "tflite"):
        model = load_age_model(models[kind])
        assert model.kind == kind and model.spec == models["spec"]
        assert model.spec_source.startswith("model file")
        predictor = AgePredictor(model)
        by_kind[kind] = [predictor.predict_file(p) for p in sorted(folder.iterdir())]
    ages = {kind: [f["age"] for r in records for f in r["faces"]] for kind, records in by_kind.items()}
    assert len(ages["keras"]) == 6 + 5
    np.testing.assert_allclose(ages["tflite"], ages["keras"], atol=0.01)
    for keras_record, tflite_record in zip(by_kind["keras"], by_kind["tflite"]):
        assert [f["box"] for f in keras_record["faces"]] == [f["box"] for f in tflite_record["faces"]]


@pytest.mark.slow
def test_int8_tflite_stays_close_to_keras(models, face_paths, utkface_dir, reference_dir, tmp_path):
    # Calibration: 100 other UTKFace images resized to 64x64, which is what the
    # similarity crop at UTKFACE_MARGIN makes of a UTKFace image.
    calibration = sorted(utkface_dir.glob("*.jpg"))
    random.Random(99).shuffle(calibration)
    images = np.stack([cv2.resize(cv2.imread(str(p)), (64, 64)) for p in calibration[:100]]).astype(np.float32)
    model = pretrained.load_reference_ssrnet(reference_dir / IMDB)
    int8_path = tmp_path / "ssrnet_imdb_int8.tflite"
    convert_to_tflite(model, int8_path, quantize="int8", representative_images=images, spec=models["spec"])
    ages = {}
    for name, path in (("keras", models["keras"]), ("int8", int8_path)):
        predictor = AgePredictor(load_age_model(path))
        ages[name] = np.array([f["age"] for p in face_paths for f in predictor.predict_file(p)["faces"]])
    assert len(ages["int8"]) == len(ages["keras"]) == len(face_paths)
    difference = np.abs(ages["int8"] - ages["keras"])
    print(f"\nint8 vs keras through predict: mean |diff| {difference.mean():.2f}, max {difference.max():.2f} years")
    # Issue #6: int8 within 0.5 years of the Keras model (mean over faces).
    assert difference.mean() <= 0.5 and difference.max() < 3.0


def test_a_model_without_spec_uses_the_documented_default(models, face_paths, capsys):
    model = load_age_model(models["bare"])
    assert model.spec_source.startswith("default")
    assert (model.spec.alignment, model.spec.margin, model.spec.input_size) == ("similarity", UTKFACE_MARGIN, (64, 64))
    code, lines, err = run_cli(capsys, face_paths[0], "--model", models["bare"])
    assert code == 0 and lines[0]["spec_source"].startswith("default: the .keras file stores no ModelSpec")
    assert "stores no ModelSpec" in err
    assert len(lines[1]["faces"]) == 1


def test_published_weights_by_name(reference_dir, face_paths, capsys):
    code, lines, _ = run_cli(capsys, face_paths[0], "--model", "imdb", "--weights-dir", reference_dir,
                             "--policy", "largest")
    assert code == 0
    assert lines[0]["kind"] == "published" and lines[0]["spec"]["alignment"] == "none"
    assert lines[0]["spec"]["margin"] == 0.4 and "SSR-Net demo" in lines[0]["spec_source"]
    (face,) = lines[1]["faces"]
    assert 1.0 < face["age"] < 100.0 and set(face["landmarks"]) == {
        "left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["predict", str(tmp_path), "--model", str(tmp_path / "nope.keras")])
    assert code == ExitCode.NOT_FOUND and "nope.keras" in capsys.readouterr().err
