"""Build script: metadata lives in setup.cfg; this only adds the optional C helper.

``ssrnet_tf.faces._area_pyramid`` (MTCNN's image pyramid, see
``ssrnet_tf/faces/area_pyramid.py``) is optional: without a C compiler the
package installs without it and OpenCV computes the same pyramid, slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ssrnet_tf.faces._area_pyramid",
            sources=["ssrnet_tf/faces/_area_pyramid.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
