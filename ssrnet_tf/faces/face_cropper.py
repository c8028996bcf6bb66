"""One face-crop function for training data and inference alike.

A model only works on crops made the way its training crops were made,
so ``ssrnet-tf prepare`` (training data) and ``ssrnet-tf predict`` both go
through :class:`FaceCropper`, configured from the model's
:class:`ssrnet_tf.model_spec.ModelSpec` (input size, alignment, margin).

Alignment modes (``ModelSpec.alignment``):

* ``"none"``: the detector box grown by ``margin`` of its width/height on
  each side, clipped to the image and resized to the input size (the crop
  of the original SSR-Net demo, aspect ratio not kept).
* ``"similarity"``: a similarity transform (rotation, uniform scale,
  shift) of the five landmarks onto
  :data:`ssrnet_tf.faces.face_template.UTKFACE_TEMPLATE`, zoomed out for
  margins above :data:`~ssrnet_tf.faces.face_template.UTKFACE_MARGIN`.
  With the default ``margin=UTKFACE_MARGIN`` a UTKFace image is mapped
  onto (almost exactly) itself.
* ``"eye_rotation"``: two passes. Rotate the image about the eye midpoint
  so the eyes are level, detect again in the rotated image, and crop the
  new box as in ``"none"`` (clipped to the rotated image).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ssrnet_tf.faces import face_alignment
from ssrnet_tf.faces.face_detector import LANDMARK_NAMES, Detection, FaceDetector
from ssrnet_tf.faces.face_template import UTKFACE_MARGIN

#: What :class:`FaceCropper` returns when an image holds several faces.
POLICIES = ("all", "largest", "most_confident")
#: Crop modes, as in ``ModelSpec.alignment``.
ALIGNMENTS = ("none", "similarity", "eye_rotation")
#: Pixel ranges understood by :meth:`FaceCropper.model_input`.
PIXEL_RANGES = ("0-255", "0-1", "-1-1")

# Face side (pixels) the eye-rotation pass re-detects at.
_REDETECT_FACE_SIDE = 100.0


@dataclasses.dataclass
class FaceCrop:
    """One face: where it is and the crop the model sees.

    Attributes:
        box: ``(x1, y1, x2, y2)`` detector box in the source image.
        landmarks: ``(5, 2)`` in :data:`LANDMARK_NAMES` order, source image.
        score: Detector confidence.
        crop: ``(H, W, 3)`` uint8 **BGR** crop at the model's input size.
        matrix: 2x3 affine map from source pixels to crop pixels.
        alignment: The mode that made the crop (``"none"`` when a requested
            alignment had to fall back, see ``note``).
        note: Why a fallback happened, else ``""``.
    """

    box: np.ndarray
    landmarks: np.ndarray
    score: float
    crop: np.ndarray
    matrix: np.ndarray
    alignment: str
    note: str = ""

    def crop_landmarks(self) -> np.ndarray:
        """The ``(5, 2)`` landmarks in crop pixels."""
        return face_alignment.transform_points(self.matrix, self.landmarks)

    def to_json(self, scale: float = 1.0) -> Dict:
        """Box, landmarks and score as JSON-ready values.

        Args:
            scale: Multiplies coordinates, e.g. :attr:`LoadedImage.scale` to
                report them in the pixels of the original file.
        """
        box = [round(float(v) * scale, 1) for v in self.box]
        landmarks = {name: [round(float(x) * scale, 1), round(float(y) * scale, 1)]
                     for name, (x, y) in zip(LANDMARK_NAMES, self.landmarks)}
        entry = {"box": box, "landmarks": landmarks, "score": round(float(self.score), 4)}
        if self.note:
            entry["note"] = self.note
        return entry


class FaceCropper:
    """Detects faces and crops them the way a model expects.

    Args:
        spec: A :class:`ssrnet_tf.model_spec.ModelSpec`; its ``input_size``,
            ``alignment``, ``margin``, ``channel_order`` and ``pixel_range``
            are used. ``None``: a 64x64 UTKFace-layout spec.
        policy: Which faces :meth:`crops` returns: ``"all"`` (left to
            right), ``"largest"`` or ``"most_confident"`` (one face).
        min_face_size: Smallest face kept, in pixels (shorter box side).
        min_score: Smallest detector confidence kept.
        max_detection_side: Longest side the detector runs on; bigger
            images are shrunk for detection only.
        detector: A detector with ``detect(image) -> [Detection]``; default
            a :class:`FaceDetector` with the settings above.
        backend: Backend of the default detector (``"litert"`` or
            ``"mtcnn"``, see :class:`FaceDetector`).
        num_threads: LiteRT threads of the default detector.

    Example:
        >>> cropper = FaceCropper(spec)
        >>> faces = cropper.crops(image_bgr)  # [FaceCrop(box, landmarks, score, crop, ...)]
        >>> ages = model.predict(cropper.model_input(faces))
    """

    def __init__(
        self,
        spec=None,
        *,
        policy: str = "all",
        min_face_size: float = 20.0,
        min_score: float = 0.9,
        max_detection_side: int = 1280,
        detector=None,
        backend: str = "litert",
        num_threads=None,
    ):
        from ssrnet_tf.model_spec import default_spec  # pylint: disable=import-outside-toplevel

        spec = spec if spec is not None else default_spec()
        if spec.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {spec.alignment!r}.")
        if spec.pixel_range not in PIXEL_RANGES:
            raise ValueError(f"pixel_range must be one of {PIXEL_RANGES}, got {spec.pixel_range!r}.")
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}.")
        self.spec = spec
        self.policy = policy
        self.detector = detector or FaceDetector(min_face_size, min_score, max_detection_side,
                                                 backend=backend, num_threads=num_threads)

    @property
    def output_size(self) -> Tuple[int, int]:
        """``(height, width)`` of the crops."""
        return tuple(self.spec.input_size)

    def detect(self, image_bgr: np.ndarray) -> List[Detection]:
        """The detections :meth:`crops` would crop, after the policy."""
        return self.select(self.detector.detect(image_bgr))

    def select(self, detections: Sequence[Detection]) -> List[Detection]:
        """Applies the several-faces policy to a detection list."""
        if not detections:
            return []
        if self.policy == "largest":
            return [max(detections, key=lambda d: d.area)]
        if self.policy == "most_confident":
            return [max(detections, key=lambda d: d.score)]
        return sorted(detections, key=lambda d: (d.box[0], d.box[1]))

    def crops(self, image_bgr: np.ndarray) -> List[FaceCrop]:
        """Detects the faces of a uint8 BGR image and crops them.

        Returns:
            :class:`FaceCrop` list (empty when no face passes the policy,
            size and confidence filters).
        """
        return [self.crop(image_bgr, detection) for detection in self.detect(image_bgr)]

    def crop(self, image_bgr: np.ndarray, detection: Detection) -> FaceCrop:
        """Crops one detected face according to the spec's alignment."""
        alignment = self.spec.alignment
        if alignment == "similarity":
            matrix = face_alignment.similarity_matrix(detection.landmarks, self.output_size, self.spec.margin)
            if matrix is None:
                return self._box_crop(image_bgr, detection, "similarity fit failed (degenerate landmarks); box crop used")
            return self._face_crop(image_bgr, detection, matrix, "similarity")
        if alignment == "eye_rotation":
            return self._eye_rotation_crop(image_bgr, detection)
        return self._box_crop(image_bgr, detection)

    def model_input(self, crops: Sequence[FaceCrop]) -> np.ndarray:
        """float32 ``(N, H, W, 3)`` batch in the spec's channel order and range."""
        height, width = self.output_size
        if not crops:
            return np.zeros((0, height, width, 3), np.float32)
        batch = np.stack([c.crop for c in crops]).astype(np.float32)  # (N, H, W, 3) BGR 0-255
        if self.spec.channel_order == "rgb":
            batch = batch[..., ::-1]
        if self.spec.pixel_range == "0-1":
            batch = batch / 255.0
        elif self.spec.pixel_range == "-1-1":
            batch = batch / 127.5 - 1.0
        return np.ascontiguousarray(batch, dtype=np.float32)

    # === Crop modes ===

    def _face_crop(self, image, detection, matrix, alignment, note="") -> FaceCrop:
        crop = face_alignment.warp_crop(image, matrix, self.output_size)
        return FaceCrop(detection.box, detection.landmarks, detection.score, crop, matrix, alignment, note)

    def _box_crop(self, image, detection, note="") -> FaceCrop:
        height, width = image.shape[:2]
        box = face_alignment.expand_box(detection.box, self.spec.margin, (width, height))
        matrix = face_alignment.box_matrix(box, self.output_size)
        return self._face_crop(image, detection, matrix, "none", note)

    def _eye_rotation_crop(self, image, detection) -> FaceCrop:
        height, width = image.shape[:2]
        eyes = detection.landmarks[:2]
        rotate = face_alignment.rotation_matrix(eyes.mean(0), face_alignment.eye_angle(detection.landmarks))
        # Second pass on a patch of the rotated image around the face (the
        # whole rotated image is never built), scaled to a face side of
        # about _REDETECT_FACE_SIDE pixels.
        side = max(detection.box[2] - detection.box[0], detection.box[3] - detection.box[1])
        scale = min(2.0, _REDETECT_FACE_SIDE / side)
        half = side * (1.0 + self.spec.margin)
        center = face_alignment.transform_points(rotate, detection.box.reshape(2, 2).mean(0, keepdims=True))[0]
        to_patch = np.array([[scale, 0.0, -scale * (center[0] - half)], [0.0, scale, -scale * (center[1] - half)]])
        patch_side = max(24, int(round(2 * half * scale)))
        patch = face_alignment.warp_crop(image, face_alignment.compose(to_patch, rotate), (patch_side, patch_side), border="constant")
        redetector = FaceDetector(
            min_face_size=max(12.0, 0.5 * side * scale),
            min_score=min(self.detector.min_score, 0.8) if hasattr(self.detector, "min_score") else 0.8,
            max_side=max(48, patch_side),
            backend=getattr(self.detector, "backend", "litert"),
            num_threads=getattr(self.detector, "num_threads", None),
        )
        found = redetector.detect(patch)
        middle = np.array([patch_side / 2.0, patch_side / 2.0])
        found = [d for d in found if np.linalg.norm(d.box.reshape(2, 2).mean(0) - middle) < 0.5 * side * scale]
        note = ""
        if found:
            nearest = min(found, key=lambda d: np.linalg.norm(d.box.reshape(2, 2).mean(0) - middle))
            box = nearest.mapped(face_alignment.invert(to_patch)).box  # rotated-image pixels
        else:
            w, h = detection.box[2] - detection.box[0], detection.box[3] - detection.box[1]
            box = np.array([center[0] - w / 2, center[1] - h / 2, center[0] + w / 2, center[1] + h / 2])
            note = "no face re-detected after levelling the eyes; the first box was rotated instead"
        box = face_alignment.expand_box(box, self.spec.margin, (width, height))
        matrix = face_alignment.compose(face_alignment.box_matrix(box, self.output_size), rotate)
        return self._face_crop(image, detection, matrix, "eye_rotation", note)


__all__ = ["ALIGNMENTS", "POLICIES", "FaceCrop", "FaceCropper"]
