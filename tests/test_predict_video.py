"""``ssrnet-tf predict`` on a video file, and faces of several photos in one model batch."""

import json
import random

import cv2
import numpy as np
import pytest

from ssrnet_tf import cli
from ssrnet_tf.errors import ExitCode
from ssrnet_tf.faces import AgePredictor, FaceDetector, Placement, load_age_model, paste_faces, video

FACE_CENTERS = [(200 + 25 * index, 240) for index in range(10)]


@pytest.fixture(scope="module")
def faces(utkface_dir):
    """Four UTKFace faces the detector finds (the first wherever the test video puts it)."""
    paths = sorted(utkface_dir.glob("*.jpg"))
    random.Random(21).shuffle(paths)
    detector, chosen = FaceDetector(), []
    for path in paths[:40]:
        face = cv2.imread(str(path))
        centers = FACE_CENTERS if not chosen else FACE_CENTERS[:1]  # the first one moves through the video
        frames = [paste_faces((640, 480), [face], [Placement(center, 0.0, 1.0)])[0] for center in centers]
        if all(len(detector.detect(frame)) == 1 for frame in frames):
            chosen.append(face)
        if len(chosen) == 4:
            return chosen
    pytest.fail("fewer than 4 of 40 UTKFace faces are found in the test frames")


def make_video(path, faces, frames=10, size=(640, 480)):
    """A face moving left to right; every fifth frame is empty."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    with_face = []
    for index in range(frames):
        if index % 5 == 4:
            frame = paste_faces(size, [], [])[0]
        else:
            frame = paste_faces(size, [faces[0]], [Placement(FACE_CENTERS[index], 0.0, 1.0)])[0]
        with_face.append(index % 5 != 4)
        writer.write(frame)
    writer.release()
    return with_face


def test_video_gives_a_line_per_frame_an_annotated_copy_and_its_fps(faces, reference_dir, tmp_path, capsys):
    clip = tmp_path / "clip.avi"
    with_face = make_video(clip, faces)
    code = cli.main(["predict", str(clip), "--model", "imdb", "--weights-dir", str(reference_dir),
                     "--annotate", str(tmp_path / "out"), "--threads", "1"])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 0
    frames = [line for line in lines if "frame" in line]
    assert [f["frame"] for f in frames] == list(range(len(with_face)))
    assert [bool(f["faces"]) for f in frames] == with_face
    assert all(1.0 < face["age"] < 100.0 for f in frames for face in f["faces"])
    (summary,) = [line for line in lines if "fps" in line]
    assert summary["frames"] == len(with_face) and summary["fps"] > 0
    assert "frames/s" in captured.err
    annotated = cv2.VideoCapture(summary["annotated"])
    count = 0
    while annotated.read()[0]:
        count += 1
    assert count == len(with_face)
    assert lines[-1]["summary"]["videos"] == 1 and lines[-1]["summary"]["errors"] == 0


def test_unreadable_video_is_an_error_line(reference_dir, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    code = cli.main(["predict", str(broken), str(tmp_path / "missing.mp4"), "--model", "imdb",
                     "--weights-dir", str(reference_dir)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == int(ExitCode.NO_RESULT)  # no face anywhere
    errors = [line for line in lines if "error" in line]
    assert [e["video"] for e in errors] == [str(broken), str(tmp_path / "missing.mp4")]
    assert "cannot be opened" in errors[0]["error"] and "not found" in errors[1]["error"]
    assert lines[-1]["summary"]["errors"] == 2


def test_camera_index_and_video_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert video.is_camera_index("0") and not video.is_camera_index("cam0")
    (tmp_path / "3").write_bytes(b"")
    assert not video.is_camera_index("3")  # an existing file named 3 is a file
    assert video.is_video_path("a/b.MP4") and not video.is_video_path("a/b.jpg")


def test_faces_of_several_photos_share_one_model_batch(faces, reference_dir, tmp_path):
    paths = []
    for index, face in enumerate(faces):
        paths.append(tmp_path / f"{index}.png")
        cv2.imwrite(str(paths[-1]), face)
    group = paste_faces((700, 300), faces[:3], [Placement((120 + 230 * k, 150), 0.0, 1.0) for k in range(3)])[0]
    cv2.imwrite(str(tmp_path / "group.png"), group)
    paths += [tmp_path / "group.png", tmp_path / "missing.jpg"]
    model = load_age_model("imdb", weights_dir=reference_dir)
    batches = []
    run = model.run
    model.run = lambda batch: (batches.append(len(batch)), run(batch))[1]
    predictor = AgePredictor(model)
    records = list(predictor.predict_files(paths))
    assert batches == [sum(len(r["faces"]) for r in records)] and batches[0] >= 6
    assert "error" in records[-1] and [len(r["faces"]) for r in records[:4]] == [1, 1, 1, 1]
    alone = [predictor.predict_file(p) for p in paths[:4]]
    for one, batched in zip(alone, records):
        np.testing.assert_allclose([f["age"] for f in one["faces"]], [f["age"] for f in batched["faces"]], atol=1e-3)


def test_bench_pipeline_times_every_stage(faces, reference_dir, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, face in enumerate(faces[:2]):
        frame = paste_faces((640, 480), [face], [Placement(FACE_CENTERS[index], 0.0, 1.0)])[0]
        cv2.imwrite(str(folder / f"{index}.jpg"), frame)
    code = cli.main(["bench", "imdb", "--pipeline", str(folder), "--weights-dir", str(reference_dir),
                     "--repeats", "1", "--output-dir", str(tmp_path / "bench")])
    out = capsys.readouterr().out
    assert code == 0 and "decode ms" in out and "litert, 1 thread" in out
    report = json.loads((tmp_path / "bench" / "pipeline.json").read_text())
    for timing in report["timings"]:
        assert timing["photos"] == 2 and timing["faces"] == 2
        assert all(timing["p50_ms"][stage] > 0 for stage in ("decode", "detect", "align", "age"))
        assert timing["photos_per_s"] > 0
