"""Face images: detection, alignment and cropping (and a drawn test face).

One function makes every face crop, for training data (``ssrnet-tf
prepare``) and inference (``ssrnet-tf predict``) alike:
:meth:`FaceCropper.crops`, configured by a model's
:class:`ssrnet_tf.model_spec.ModelSpec`. See :mod:`.face_template` for the
measured UTKFace layout the similarity alignment reproduces.

Face detection is MTCNN with the ``mtcnn`` package's weights, run through
LiteRT (:mod:`.mtcnn_litert`) or the package itself; :mod:`.video` runs the
predictor on video files and cameras, :mod:`.pipeline_benchmark` times its
stages. Heavy dependencies (OpenCV, LiteRT, MTCNN/TensorFlow) load on first
use.
"""

from ssrnet_tf.faces.age_predictor import AgeModel, AgePredictor, default_spec, load_age_model, published_spec
from ssrnet_tf.faces.crop_dataset import prepare_crop_dataset, read_labels
from ssrnet_tf.faces.face_collage import Placement, paste_faces
from ssrnet_tf.faces.face_cropper import ALIGNMENTS, POLICIES, FaceCrop, FaceCropper
from ssrnet_tf.faces.face_detector import LANDMARK_NAMES, Detection, FaceDetector
from ssrnet_tf.faces.face_template import UTKFACE_MARGIN, UTKFACE_TEMPLATE, FaceLayout, measure_layout, template_points
from ssrnet_tf.faces.loaded_image import ImageReadError, LoadedImage, load_image
from ssrnet_tf.faces.synthetic import synthetic_face

__all__ = [
    "ALIGNMENTS",
    "LANDMARK_NAMES",
    "POLICIES",
    "UTKFACE_MARGIN",
    "UTKFACE_TEMPLATE",
    "AgeModel",
    "AgePredictor",
    "Detection",
    "FaceCrop",
    "FaceCropper",
    "FaceDetector",
    "FaceLayout",
    "ImageReadError",
    "LoadedImage",
    "Placement",
    "default_spec",
    "load_age_model",
    "load_image",
    "measure_layout",
    "paste_faces",
    "prepare_crop_dataset",
    "published_spec",
    "read_labels",
    "synthetic_face",
    "template_points",
]
