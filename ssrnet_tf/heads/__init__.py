"""Heads of ssrnet_tf: outputs, losses and label encodings on pooled features.

A head turns a backbone's ``(batch, D)`` features into named outputs (see
:class:`Head`). Exactly one *age head* per model outputs ``"age"``;
:class:`AgeGroupHead` and :class:`MultiTaskHead` are auxiliary heads that
can be added next to it. :class:`SSRNetHead` is SSR-Net's head on the
feature maps of its two-stream backbone (``build_ssrnet``), not a
pooled-feature head, so it is not in :data:`HEADS`. :data:`HEADS` maps registry names to classes and
:func:`build_head` creates a head by name.
"""

from typing import Dict

from ssrnet_tf.heads import encodings
from ssrnet_tf.heads.age_group import AgeGroupHead
from ssrnet_tf.heads.base import AGE_OUTPUT, Head, validate_heads
from ssrnet_tf.heads.label_distribution import LabelDistributionHead
from ssrnet_tf.heads.multi_granularity import MultiGranularityHead
from ssrnet_tf.heads.multi_task import MultiTaskHead
from ssrnet_tf.heads.regression import DEXHead, RegressionHead
from ssrnet_tf.heads.ssrnet_head import SSRNetHead

#: Head classes by registry name.
HEADS: Dict[str, type] = {
    "multi_granularity": MultiGranularityHead,
    "label_distribution": LabelDistributionHead,
    "dex": DEXHead,
    "regression": RegressionHead,
    "age_group": AgeGroupHead,
    "multi_task": MultiTaskHead,
}


def build_head(name: str, /, **kwargs) -> Head:
    """Creates the head registered as ``name``.

    Args:
        name: A key of :data:`HEADS` (positional-only, so that ``kwargs``
            may hold the head's own ``name``).
        **kwargs: Constructor arguments of that head.

    Returns:
        The head.

    Raises:
        ValueError: If ``name`` is not a registered head.
    """
    if name not in HEADS:
        raise ValueError(f"Unknown head {name!r}; valid heads: {sorted(HEADS)}.")
    return HEADS[name](**kwargs)


__all__ = [
    "AGE_OUTPUT",
    "AgeGroupHead",
    "DEXHead",
    "HEADS",
    "Head",
    "LabelDistributionHead",
    "MultiGranularityHead",
    "MultiTaskHead",
    "RegressionHead",
    "SSRNetHead",
    "build_head",
    "encodings",
    "validate_heads",
]
