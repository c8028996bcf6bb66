"""Model builders of ssrnet_tf."""

from ssrnet_tf.models.ssrnet import build_ssrnet
from ssrnet_tf.models.ssrnet_backbone import build_ssrnet_backbone
from ssrnet_tf.models.ssrnet_config import SSRNetConfig

__all__ = ["SSRNetConfig", "build_ssrnet", "build_ssrnet_backbone"]
