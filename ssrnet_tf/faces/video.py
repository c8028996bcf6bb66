"""Ages of the faces in every frame of a video file or camera.

The library behind ``ssrnet-tf predict VIDEO_FILE`` and ``ssrnet-tf
predict CAMERA_INDEX``: frames are read with OpenCV, each goes through
:meth:`ssrnet_tf.faces.AgePredictor.predict_array` (detection, crops, one
age-model batch per frame), and one JSON-ready record per frame is
yielded. With an output path, an annotated copy of the video (boxes,
landmarks, ages) is written, atomically: to a temporary file first, moved
into place when the video ends.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import time
from typing import Dict, Iterator, Optional, Union

#: File name suffixes treated as videos by ``ssrnet-tf predict``.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def is_camera_index(text: str) -> bool:
    """A non-negative integer that is not an existing file or folder."""
    return text.isdigit() and not pathlib.Path(text).exists()


def is_video_path(text: str) -> bool:
    """A path with a video suffix."""
    return pathlib.Path(text).suffix.lower() in VIDEO_SUFFIXES


class VideoReadError(ValueError):
    """A video file or camera that cannot be opened; names it and why."""


def _open_capture(source: Union[str, int]):
    import cv2  # pylint: disable=import-outside-toplevel

    if isinstance(source, str) and not pathlib.Path(source).is_file():
        raise VideoReadError(f"{source}: video file not found.")
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        what = f"camera {source}" if isinstance(source, int) else f"{source}"
        raise VideoReadError(f"{what}: cannot be opened as a video (OpenCV VideoCapture failed).")
    return capture


class _AnnotatedWriter:
    """An annotated video written to a temporary file, moved into place on close."""

    def __init__(self, path: pathlib.Path, fps: float, size):
        import cv2  # pylint: disable=import-outside-toplevel

        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
        os.close(handle)
        self.temporary = pathlib.Path(temporary)
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
        self.writer = cv2.VideoWriter(str(self.temporary), fourcc, fps, size)
        if not self.writer.isOpened():
            self.temporary.unlink(missing_ok=True)
            raise OSError(f"{path}: OpenCV cannot write {path.suffix} video here")

    def write(self, frame) -> None:
        self.writer.write(frame)

    def close(self, keep: bool) -> None:
        self.writer.release()
        if keep:
            os.replace(self.temporary, self.path)
        else:
            self.temporary.unlink(missing_ok=True)


def predict_video(predictor, source: Union[str, int], annotate_path: Optional[os.PathLike] = None,
                  max_frames: Optional[int] = None) -> Iterator[Dict]:
    """Runs ``predictor`` on every frame of a video file or camera.

    Args:
        predictor: An :class:`ssrnet_tf.faces.AgePredictor`.
        source: A video file path, or a camera index (``int``).
        annotate_path: Where to write the annotated video (``.mp4``, or
            ``.avi`` for MJPG), or ``None``.
        max_frames: Stop after this many frames (a camera never ends).

    Yields:
        ``{"frame": i, "time": seconds, "faces": [...]}`` per frame, then a
        last ``{"video": ..., "frames": n, "faces": ..., "seconds": ...,
        "fps": ...}`` summary (``"annotated"`` or ``"annotate_error"`` when
        an annotated copy was asked for). ``fps`` is frames processed per
        second of wall time (reading, detection, ages, writing).

    Raises:
        VideoReadError: If the file or camera cannot be opened.
    """
    from ssrnet_tf.faces.face_annotation import draw_faces  # pylint: disable=import-outside-toplevel

    capture = _open_capture(source)
    import cv2  # pylint: disable=import-outside-toplevel

    video_fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    writer, summary = None, {"video": str(source), "frames": 0, "faces": 0}
    start = time.perf_counter()
    try:
        while max_frames is None or summary["frames"] < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            index = summary["frames"]
            faces = predictor.predict_array(frame)
            seconds = index / video_fps if video_fps > 0 else time.perf_counter() - start
            summary["frames"] += 1
            summary["faces"] += len(faces)
            if annotate_path is not None and "annotate_error" not in summary:
                try:
                    if writer is None:
                        height, width = frame.shape[:2]
                        writer = _AnnotatedWriter(pathlib.Path(annotate_path), video_fps or 25.0, (width, height))
                    writer.write(draw_faces(frame, faces))
                except OSError as error:
                    summary["annotate_error"] = str(error)
            yield {"frame": index, "time": round(seconds, 3), "faces": faces}
    finally:
        capture.release()
        elapsed = time.perf_counter() - start
        if writer is not None:
            writer.close(keep=summary["frames"] > 0)
            summary["annotated"] = str(annotate_path)
    summary["seconds"] = round(elapsed, 3)
    summary["fps"] = round(summary["frames"] / elapsed, 2) if elapsed > 0 else 0.0
    yield summary


__all__ = ["VIDEO_SUFFIXES", "VideoReadError", "is_camera_index", "is_video_path", "predict_video"]
