"""The ``mtcnn`` package's P-Net, R-Net and O-Net as ``.tflite`` files.

The three networks keep the ``mtcnn`` package's own weights and layers;
only the graph around them is made LiteRT/XNNPACK friendly:

* P-Net takes ``(1, None, None, 3)``: one image of any size (one pyramid
  level), fully convolutional as in the paper ("P-Net ... a fully
  convolutional network", Zhang et al. 2016, sec. II-A).
* R-Net (24x24) and O-Net (48x48) take a batch of crops. Their
  ``Permute + Flatten`` becomes a transpose and a reshape to a constant
  width, which XNNPACK delegates (Keras' ``Flatten`` lowers to
  SHAPE/STRIDED_SLICE/PACK, which it does not).

The converted files ship in ``ssrnet_tf/faces/mtcnn_models`` with their
SHA-256 in ``SHA256SUMS`` (checked on load by
:mod:`ssrnet_tf.faces.mtcnn_litert`). Rebuild them with::

    python -m ssrnet_tf.faces.mtcnn_conversion ssrnet_tf/faces/mtcnn_models

Reference:
    Zhang, Zhang, Li and Qiao, "Joint Face Detection and Alignment Using
    Multitask Cascaded Convolutional Networks", IEEE SPL 2016.
"""

from __future__ import annotations

import hashlib
import pathlib
import sys
from typing import Dict

from ssrnet_tf.utils.atomic import atomic_write_bytes

#: File names of the converted networks, by stage.
NETWORK_FILES = {"pnet": "pnet.tflite", "rnet": "rnet.tflite", "onet": "onet.tflite"}
#: Name of the checksum file beside them (``sha256  name`` lines).
CHECKSUM_FILE = "SHA256SUMS"


def _mtcnn_networks():
    """The ``mtcnn`` package's three Keras networks with its weights loaded."""
    try:
        from mtcnn.stages import StageONet, StagePNet, StageRNet  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise ImportError("converting MTCNN needs the 'mtcnn' package: pip install 'mtcnn>=1.0'") from None
    return StagePNet().model, StageRNet().model, StageONet().model


def _flat_head(net, x, flat_width: int, prelu, dense, outputs):
    """Permute(2, 1, 3) + Flatten as transpose + constant reshape, then heads."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    x = tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [-1, flat_width])
    x = getattr(net, prelu)(getattr(net, dense)(x))
    return [getattr(net, name)(x) for name in outputs]


def _convert(function, signature) -> bytes:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.export.tflite import _silent_convert  # pylint: disable=import-outside-toplevel

    concrete = tf.function(function, input_signature=[signature]).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    return _silent_convert(converter)


def convert_mtcnn() -> Dict[str, bytes]:
    """Converts the ``mtcnn`` package's networks to float32 ``.tflite`` bytes.

    Returns:
        ``{"pnet": bytes, "rnet": bytes, "onet": bytes}``. Outputs are told
        apart by their last dimension: 4 box offsets, 2 class
        probabilities (face = index 1), 10 landmarks (5 x, then 5 y).
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    pnet, rnet, onet = _mtcnn_networks()

    def run_pnet(images):
        return pnet(images)

    def run_rnet(crops):
        x = rnet.prelu1(rnet.conv1(crops))
        x = rnet.prelu2(rnet.conv2(rnet.maxpool1(x)))
        x = rnet.prelu3(rnet.conv3(rnet.maxpool2(x)))
        return _flat_head(rnet, x, 3 * 3 * 64, "prelu4", "fc4", ("fc5_1", "fc5_2"))

    def run_onet(crops):
        x = onet.prelu1(onet.conv1(crops))
        x = onet.prelu2(onet.conv2(onet.maxpool1(x)))
        x = onet.prelu3(onet.conv3(onet.maxpool2(x)))
        x = onet.prelu4(onet.conv4(onet.maxpool3(x)))
        return _flat_head(onet, x, 3 * 3 * 128, "prelu5", "fc5", ("fc6_1", "fc6_2", "fc6_3"))

    return {
        "pnet": _convert(run_pnet, tf.TensorSpec([1, None, None, 3], tf.float32)),
        "rnet": _convert(run_rnet, tf.TensorSpec([None, 24, 24, 3], tf.float32)),
        "onet": _convert(run_onet, tf.TensorSpec([None, 48, 48, 3], tf.float32)),
    }


def write_mtcnn_models(output_dir) -> pathlib.Path:
    """Converts the networks into ``output_dir`` with a ``SHA256SUMS`` file.

    Returns:
        ``output_dir`` as a path.
    """
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for stage, flatbuffer in convert_mtcnn().items():
        atomic_write_bytes(output_dir / NETWORK_FILES[stage], flatbuffer)
        lines.append(f"{hashlib.sha256(flatbuffer).hexdigest()}  {NETWORK_FILES[stage]}\n")
    atomic_write_bytes(output_dir / CHECKSUM_FILE, "".join(lines).encode())
    return output_dir


if __name__ == "__main__":
    print(write_mtcnn_models(sys.argv[1] if len(sys.argv) > 1 else "mtcnn_models"))
