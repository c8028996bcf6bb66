"""MTCNN with LiteRT + XNNPACK: the ``mtcnn`` package's algorithm, fast.

The three cascaded networks run as ``.tflite`` files converted from the
``mtcnn`` package's own weights (:mod:`ssrnet_tf.faces.mtcnn_conversion`);
everything around them follows ``mtcnn`` 1.0 step by step, in NumPy and
OpenCV instead of TensorFlow eager ops:

1. **Image pyramid.** "we initially resize it to different scales to build
   an image pyramid" (Zhang et al. 2016, sec. II-A): scales
   ``12 / min_face * 0.709**k``; each level is the ``[-1, 1]`` normalised
   image area-resized to ``int(side * scale)``, all levels in one pass
   (:mod:`ssrnet_tf.faces.area_pyramid`).
2. **P-Net** on every level; windows with face probability above
   ``threshold_pnet`` become boxes (stride 2, 12-pixel window, regression),
   NMS (IoU 0.5) per level, NMS (IoU 0.7) over all levels, then squared.
3. **R-Net** on 24x24 bilinear crops of the boxes (TensorFlow
   ``crop_and_resize`` sampling, zeros outside the image), box regression,
   ``threshold_rnet``, NMS (IoU 0.7), squared.
4. **O-Net** on 48x48 crops: landmarks, box regression,
   ``threshold_onet``, NMS (0.7 of the smaller box).

The NMS is ``mtcnn``'s: a box is dropped when any higher-scored box
(kept or not) overlaps it by more than the threshold.

Detections are returned as ``mtcnn``'s numpy rows
``[image, x1, y1, x2, y2, score, 5 x, 5 y]``.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import pathlib
from typing import Dict, List, Optional, Tuple

import numpy as np

from ssrnet_tf.faces import area_pyramid
from ssrnet_tf.faces.mtcnn_conversion import CHECKSUM_FILE, NETWORK_FILES

#: Folder of the shipped networks.
MODELS_DIR = pathlib.Path(__file__).parent / "mtcnn_models"

# mtcnn 1.0 defaults.
_SCALE_FACTOR = 0.709
_CELL = 12
_STRIDE = 2
_MAX_PYRAMID_SHAPES = 48


def _read_checked(directory: pathlib.Path) -> Dict[str, bytes]:
    """The three ``.tflite`` files, each checked against ``SHA256SUMS``."""
    sums_path = directory / CHECKSUM_FILE
    if not sums_path.is_file():
        raise FileNotFoundError(f"{sums_path}: checksum file of the MTCNN .tflite networks not found.")
    expected = dict(reversed(line.split()) for line in sums_path.read_text().splitlines() if line.strip())
    models = {}
    for stage, name in NETWORK_FILES.items():
        path = directory / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: MTCNN {stage} network not found.")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != expected.get(name):
            raise ValueError(f"{path}: SHA-256 does not match {sums_path}; the file is damaged or was replaced.")
        models[stage] = data
    return models


@functools.lru_cache(maxsize=4)
def _shipped_models(directory: str) -> Dict[str, bytes]:
    return _read_checked(pathlib.Path(directory))


# === Geometry (mtcnn 1.0 semantics) ===


def pyramid_scales(width: int, height: int, min_face_size: float, min_size: int = _CELL,
                   scale_factor: float = _SCALE_FACTOR) -> np.ndarray:
    """Scales of the image pyramid, as ``mtcnn``'s ``build_scale_pyramid``."""
    count = round(-((np.log(min(width, height) / min_size) / np.log(scale_factor)) + 1))
    return (min_size / min_face_size) * scale_factor ** np.arange(max(0, count))


def overlap(boxes: np.ndarray, method: str = "union") -> np.ndarray:
    """Pairwise IoU (``"union"``) or intersection over the smaller box (``"min"``)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    width = np.maximum(0.0, np.minimum(boxes[None, :, 2], boxes[:, None, 2]) - np.maximum(boxes[None, :, 0], boxes[:, None, 0]))
    height = np.maximum(0.0, np.minimum(boxes[None, :, 3], boxes[:, None, 3]) - np.maximum(boxes[None, :, 1], boxes[:, None, 1]))
    inter = width * height
    if method == "union":
        denominator = area[:, None] + area[None, :] - inter
    elif method == "min":
        denominator = np.minimum(area[:, None], area[None, :])
    else:
        raise ValueError(f"method must be 'union' or 'min', got {method!r}.")
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / denominator


def suppress(rows: np.ndarray, threshold: float, method: str = "union", sort: bool = True) -> np.ndarray:
    """``mtcnn``'s NMS: keeps a row unless an earlier row overlaps it too much.

    Args:
        rows: ``(N, >=6)`` ``[image, x1, y1, x2, y2, score, ...]`` of one image.
        threshold: Overlap above which the later row is dropped.
        method: ``"union"`` (IoU) or ``"min"``.
        sort: Sort by score (descending) first.
    """
    if len(rows) == 0:
        return rows
    if sort:
        rows = rows[np.argsort(rows[:, 5])[::-1]]
    failed = overlap(rows[:, 1:5], method) > threshold
    earlier = np.triu(np.ones(failed.shape, dtype=bool), k=1)
    return rows[~(failed & earlier).any(axis=0)]


def square(rows: np.ndarray) -> np.ndarray:
    """Boxes grown to squares about their centres (``resize_to_square``)."""
    rows = rows.copy()
    height = rows[:, 4] - rows[:, 2]
    width = rows[:, 3] - rows[:, 1]
    side = np.maximum(width, height)
    rows[:, 1] = rows[:, 1] + width * 0.5 - side * 0.5
    rows[:, 2] = rows[:, 2] + height * 0.5 - side * 0.5
    rows[:, 3] = rows[:, 1] + side
    rows[:, 4] = rows[:, 2] + side
    return rows


def regress(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Applies box offsets in units of the ``+1`` box size (``adjust_bboxes``)."""
    rows = rows.copy()
    width = rows[:, 3] - rows[:, 1] + 1
    height = rows[:, 4] - rows[:, 2] + 1
    rows[:, 1:5] += offsets * np.stack([width, height, width, height], axis=-1)
    return rows


def proposals(offsets: np.ndarray, probability: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """P-Net windows above ``threshold`` as rows in original-image pixels.

    Args:
        offsets: ``(h, w, 4)`` P-Net box regression of one level.
        probability: ``(h, w)`` face probability.
        scale: The level's scale.
        threshold: ``threshold_pnet``.

    Returns:
        ``(N, 6)`` rows sorted by score, descending.
    """
    ys, xs = np.where(probability > threshold)
    dx1, dy1, dx2, dy2 = offsets[ys, xs].T
    # mtcnn 1.0 places window (x, y) at [2x + 1, 2x + 12] and scales the
    # offsets by that 11-pixel extent.
    left, top = xs * _STRIDE + 1, ys * _STRIDE + 1
    right, bottom = xs * _STRIDE + _CELL, ys * _STRIDE + _CELL
    extent = _CELL - 1
    rows = np.stack([np.zeros(len(xs)), left + dx1 * extent, top + dy1 * extent,
                     right + dx2 * extent, bottom + dy2 * extent, probability[ys, xs]], axis=0).T
    rows = rows[np.argsort(rows[:, -1])[::-1]]
    rows[:, 1:5] = rows[:, 1:5] / scale
    return rows


def crop_and_resize(image: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """Bilinear crops of boxes, sampled like ``tf.image.crop_and_resize``.

    The box ``[x1, y1, x2, y2]`` (pixels) is normalised by the image size,
    as ``mtcnn`` does, so sample ``i`` of ``size`` lies at
    ``y1 / H * (H - 1) + i * (y2 - y1) / H * (H - 1) / (size - 1)``;
    samples outside the image are 0.

    Args:
        image: ``(H, W, 3)`` float32.
        rows: ``(N, >=5)`` rows.
        size: Output side.

    Returns:
        ``(N, size, size, 3)`` float32.
    """
    height, width = image.shape[:2]
    steps = np.arange(size, dtype=np.float64) / (size - 1)

    def axis_samples(start, end, extent):
        low = start / extent * (extent - 1)
        high = end / extent * (extent - 1)
        position = low[:, None] + steps[None, :] * (high - low)[:, None]
        valid = (position >= 0) & (position <= extent - 1)
        floor = np.floor(position)
        frac = (position - floor).astype(np.float32)
        lower = np.clip(floor, 0, extent - 1).astype(np.int64)
        upper = np.clip(np.ceil(position), 0, extent - 1).astype(np.int64)
        return lower, upper, frac, valid

    top, bottom, y_frac, y_valid = axis_samples(rows[:, 2], rows[:, 4], height)
    left, right, x_frac, x_valid = axis_samples(rows[:, 1], rows[:, 3], width)
    flat = image.reshape(-1, image.shape[2])
    top, bottom = top[:, :, None] * width, bottom[:, :, None] * width
    left, right = left[:, None, :], right[:, None, :]
    x_frac = x_frac[:, None, :, None]
    top_left, bottom_left = flat[top + left], flat[bottom + left]
    upper = top_left + (flat[top + right] - top_left) * x_frac
    lower = bottom_left + (flat[bottom + right] - bottom_left) * x_frac
    crops = upper + (lower - upper) * y_frac[:, :, None, None]
    crops *= (y_valid[:, :, None] & x_valid[:, None, :])[..., None]
    return crops.astype(np.float32)


def normalize(image_rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 ``(x - 127.5) / 128``, as ``mtcnn``."""
    return (image_rgb.astype(np.float32) - np.float32(127.5)) / np.float32(128.0)


# === Networks ===


class _Network:
    """LiteRT interpreters of one network, one per input shape.

    P-Net keeps an interpreter per pyramid level shape (XNNPACK plans each
    shape once; a video's levels never change); the crop networks keep one
    interpreter and resize its batch when the crop count changes (about
    0.1 ms).
    """

    def __init__(self, flatbuffer: bytes, num_threads: Optional[int], max_shapes: int):
        from ssrnet_tf.export.tflite import _interpreter_class  # pylint: disable=import-outside-toplevel

        self._flatbuffer = flatbuffer
        self._num_threads = num_threads
        self._max_shapes = max_shapes
        self._make = _interpreter_class()
        self._interpreters: "collections.OrderedDict[Tuple[int, ...], list]" = collections.OrderedDict()

    def _interpreter(self, shape: Tuple[int, ...]):
        entry = self._interpreters.get(shape)
        if entry is not None:
            self._interpreters.move_to_end(shape)
            return entry
        if len(self._interpreters) >= self._max_shapes:
            entry = self._interpreters.popitem(last=False)[1]
        else:
            interpreter = self._make(model_content=self._flatbuffer, num_threads=self._num_threads)
            outputs = {int(d["shape_signature"][-1]): d["index"] for d in interpreter.get_output_details()}
            entry = [interpreter, interpreter.get_input_details()[0]["index"], outputs]
        entry[0].resize_tensor_input(entry[1], list(shape))
        entry[0].allocate_tensors()
        self._interpreters[shape] = entry
        return entry

    def __call__(self, batch: np.ndarray) -> Dict[int, np.ndarray]:
        """Outputs keyed by their last dimension (4 boxes, 2 classes, 10 landmarks)."""
        interpreter, input_index, outputs = self._interpreter(tuple(batch.shape))
        interpreter.set_tensor(input_index, np.ascontiguousarray(batch, dtype=np.float32))
        interpreter.invoke()
        return {width: interpreter.get_tensor(index) for width, index in outputs.items()}


class LiteMTCNN:
    """MTCNN through LiteRT: ``mtcnn`` 1.0's detection with its weights.

    Args:
        num_threads: Interpreter threads (``None``: LiteRT's default).
        models_dir: Folder with the three ``.tflite`` files and
            ``SHA256SUMS`` (default: the ones shipped in the package).

    Example:
        >>> rows = LiteMTCNN(num_threads=1).detect(image_rgb, min_face_size=20, threshold_onet=0.9)
        >>> rows[:, 1:5]  # x1, y1, x2, y2
    """

    def __init__(self, num_threads: Optional[int] = None, models_dir=None):
        directory = pathlib.Path(models_dir) if models_dir is not None else MODELS_DIR
        models = _shipped_models(str(directory.resolve()))
        self.num_threads = num_threads
        self._pnet = _Network(models["pnet"], num_threads, _MAX_PYRAMID_SHAPES)
        self._rnet = _Network(models["rnet"], num_threads, 1)
        self._onet = _Network(models["onet"], num_threads, 1)

    def detect(self, image_rgb: np.ndarray, min_face_size: float = 20, threshold_pnet: float = 0.6,
               threshold_rnet: float = 0.7, threshold_onet: float = 0.8, nms_pnet1: float = 0.5,
               nms_pnet2: float = 0.7, nms_rnet: float = 0.7, nms_onet: float = 0.7) -> np.ndarray:
        """Faces of a uint8 RGB image, as ``mtcnn``'s ``detect_faces`` numpy rows.

        Args:
            image_rgb: ``(H, W, 3)`` uint8 RGB.
            min_face_size: Sets the first pyramid scale (``12 / min_face_size``).
            threshold_pnet, threshold_rnet, threshold_onet, nms_pnet1,
            nms_pnet2, nms_rnet, nms_onet: As ``mtcnn.MTCNN.detect_faces``.

        Returns:
            ``(N, 16)`` float64 ``[0, x1, y1, x2, y2, score, 5 x, 5 y]``,
            most confident first, not clipped to the image.
        """
        image = normalize(image_rgb)
        rows = self._stage_pnet(image, min_face_size, threshold_pnet, nms_pnet1, nms_pnet2)
        if len(rows):
            rows = self._stage_rnet(image, rows, threshold_rnet, nms_rnet)
        if len(rows):
            rows = self._stage_onet(image, rows, threshold_onet, nms_onet)
        return rows if len(rows) else np.empty((0, 16))

    def _stage_pnet(self, image, min_face_size, threshold, nms_level, nms_all) -> np.ndarray:
        height, width = image.shape[:2]
        scales, sizes = [], []
        for scale in pyramid_scales(width, height, min_face_size):
            level_h, level_w = (np.asarray([height, width]) * scale).astype(int)
            if min(level_h, level_w) >= _CELL:
                scales.append(scale)
                sizes.append((int(level_h), int(level_w)))
        levels = []
        for scale, level in zip(scales, area_pyramid.area_levels(image, sizes)):
            outputs = self._pnet(level[None])
            rows = proposals(outputs[4][0], outputs[2][0, :, :, 1], scale, threshold)
            levels.append(suppress(rows, nms_level, sort=False))
        rows = np.concatenate(levels) if levels else np.empty((0, 6))
        return square(suppress(rows, nms_all))

    def _stage_rnet(self, image, rows, threshold, nms) -> np.ndarray:
        outputs = self._rnet(crop_and_resize(image, rows, 24))
        rows = rows.copy()
        rows[:, 5] = outputs[2][:, 1]
        rows = regress(rows, outputs[4])
        rows = rows[rows[:, 5] > threshold]
        return square(suppress(rows, nms))

    def _stage_onet(self, image, rows, threshold, nms) -> np.ndarray:
        outputs = self._onet(crop_and_resize(image, rows, 48))
        width = rows[:, 3:4] - rows[:, 1:2] + 1
        height = rows[:, 4:5] - rows[:, 2:3] + 1
        landmarks = outputs[10].astype(np.float64)
        landmarks[:, :5] = width * landmarks[:, :5] + rows[:, 1:2] - 1
        landmarks[:, 5:] = height * landmarks[:, 5:] + rows[:, 2:3] - 1
        rows = rows.copy()
        rows[:, 5] = outputs[2][:, 1]
        rows = np.concatenate([regress(rows, outputs[4]), landmarks], axis=1)
        rows = rows[rows[:, 5] > threshold]
        return suppress(rows, nms, method="min")


__all__ = ["LiteMTCNN", "MODELS_DIR", "crop_and_resize", "overlap", "proposals", "pyramid_scales", "regress",
           "square", "suppress"]
