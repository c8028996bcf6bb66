"""Face images: detection, alignment and cropping (and a drawn test face)."""

from ssrnet_tf.faces.synthetic import synthetic_face

__all__ = ["synthetic_face"]
