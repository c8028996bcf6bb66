"""Auxiliary age-group classification head."""

from __future__ import annotations

from typing import Dict, Mapping, Sequence, Union

import keras
import numpy as np

from ssrnet_tf.heads import base
from ssrnet_tf.heads import encodings

#: Default output name of :class:`AgeGroupHead`.
AGE_GROUP_OUTPUT = "age_group"


class AgeGroupHead(base.Head):
    """Classifies faces into coarse age groups, as an auxiliary task.

    Groups are given by boundaries, the first age of each group after the
    first one (:func:`encodings.age_group_index`), or by a preset name of
    :data:`encodings.AGE_GROUP_PRESETS`: ``"3_groups"``, ``"5_groups"`` and
    ``"10_groups"``, the 3-, 5- and 10-group splits of ages 1-80 used by
    multi-task age/gender/race learning. This is not an age head: it has no
    ``"age"`` output and goes next to exactly one age head. Several
    groupings can share a model with distinct ``output_name`` and ``name``.

    Outputs:

    * ``output_name`` (default ``"age_group"``): ``(N, G)`` probabilities,
      ``G = len(boundaries) + 1``. Loss: sparse categorical cross-entropy,
      weight ``loss_weight``; metric: accuracy.

    Args:
        boundaries: A preset name or strictly increasing ages (> 0).
        loss_weight: Weight of the cross-entropy.
        output_name: Name of the output; not ``"age"``, and distinct from
            the other heads' outputs (:func:`base.validate_heads`).
        name: Head name (layer-name prefix).

    Example:
        >>> head = AgeGroupHead("3_groups")
        >>> head.build_outputs(keras.Input((32,)))["age_group"].shape
        (None, 3)
    """

    def __init__(
        self,
        boundaries: Union[str, Sequence[float]] = "5_groups",
        loss_weight: float = 1.0,
        output_name: str = AGE_GROUP_OUTPUT,
        name: str = "age_group",
    ):
        super().__init__(name)
        self._boundaries = encodings.resolve_age_groups(boundaries)
        if output_name == base.AGE_OUTPUT or not isinstance(output_name, str) or not output_name:
            raise ValueError(f"output_name must be a non-empty name other than 'age', got {output_name!r}.")
        self.boundaries = boundaries if isinstance(boundaries, str) else list(self._boundaries)
        self.loss_weight = base.check_weight(loss_weight, "loss_weight")
        self.output_name = output_name

    @property
    def num_groups(self) -> int:
        """Number of age groups."""
        return len(self._boundaries) + 1

    @property
    def output_names(self) -> tuple:
        return (self.output_name,)

    def build_outputs(self, features):
        self._check_features(features)
        groups = keras.layers.Dense(self.num_groups, activation="softmax", name=self._layer_name("classes"))(
            features
        )  # (batch, G)
        return {self.output_name: groups}

    def losses(self) -> Dict[str, keras.losses.Loss]:
        return {self.output_name: keras.losses.SparseCategoricalCrossentropy()}

    def loss_weights(self) -> Dict[str, float]:
        return {self.output_name: self.loss_weight}

    def metrics(self) -> Dict[str, list]:
        return {self.output_name: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    def encode_targets(self, labels: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        return {self.output_name: encodings.age_group_index(base.ages_from(labels), self._boundaries)}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"boundaries": self.boundaries, "loss_weight": self.loss_weight, "output_name": self.output_name})
        return config
