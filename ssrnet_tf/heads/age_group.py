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
    :data:`encodings.AGE_GROUP_PRESETS`: ``"3_groups"`` (1-26, 27-52,
    53-80), ``"5_groups"`` (1-11, 12-23, 24-39, 40-55, 56-80) and
    ``"10_groups"`` (eight years each), the splits of ages 1-80 of
    multi-task age/gender/race learning.

    By default this is not an age head: it has no ``"age"`` output and goes
    next to exactly one age head; several groupings can share a model with
    distinct ``output_name`` and ``name``. With ``predict_age=True`` it *is*
    the model's age head, as in the multi-task paper, where the age task is
    the age-group classification: it then also outputs ``"age"``, the
    expectation of the group probabilities over the group centres
    (:func:`encodings.age_group_centers`), monitored with an MAE of weight 0.

    Outputs:

    * ``output_name`` (default ``"age_group"``): ``(N, G)`` probabilities,
      ``G = len(boundaries) + 1``. Loss: sparse categorical cross-entropy,
      weight ``loss_weight``; metric: accuracy.
    * ``"age"`` (with ``predict_age``): ``(N, 1)`` expected age in years;
      loss MAE with weight 0 (monitor-only).

    Args:
        boundaries: A preset name or strictly increasing ages (> 0).
        loss_weight: Weight of the cross-entropy.
        output_name: Name of the output; not ``"age"``, and distinct from
            the other heads' outputs (:func:`base.validate_heads`).
        predict_age: Make this head the age head (adds ``"age"``).
        name: Head name (layer-name prefix).

    Example:
        >>> head = AgeGroupHead("3_groups")
        >>> head.build_outputs(keras.Input((32,)))["age_group"].shape
        (None, 3)

    Reference:
        Gu and Yang, "Multi-Task Learning Based Age Detection for Image"
        (age groups of section 2.1, shared CNN with task branches, 2.2).
    """

    def __init__(
        self,
        boundaries: Union[str, Sequence[float]] = "5_groups",
        loss_weight: float = 1.0,
        output_name: str = AGE_GROUP_OUTPUT,
        predict_age: bool = False,
        name: str = "age_group",
    ):
        super().__init__(name)
        self._boundaries = encodings.resolve_age_groups(boundaries)
        if output_name == base.AGE_OUTPUT or not isinstance(output_name, str) or not output_name:
            raise ValueError(f"output_name must be a non-empty name other than 'age', got {output_name!r}.")
        self.boundaries = boundaries if isinstance(boundaries, str) else list(self._boundaries)
        self.loss_weight = base.check_weight(loss_weight, "loss_weight")
        self.output_name = output_name
        self.predict_age = bool(predict_age)
        self.is_age_head = self.predict_age

    @property
    def num_groups(self) -> int:
        """Number of age groups."""
        return len(self._boundaries) + 1

    @property
    def output_names(self) -> tuple:
        return ((base.AGE_OUTPUT,) if self.predict_age else ()) + (self.output_name,)

    def build_outputs(self, features):
        self._check_features(features)
        groups = keras.layers.Dense(self.num_groups, activation="softmax", name=self._layer_name("classes"))(
            features
        )  # (batch, G)
        if not self.predict_age:
            return {self.output_name: groups}
        from ssrnet_tf.layers import expected_value  # pylint: disable=import-outside-toplevel

        centers = encodings.age_group_centers(self._boundaries)
        age = expected_value.ExpectedValue(centers.tolist(), name=self._layer_name("age"))(groups)  # (batch, 1)
        return {base.AGE_OUTPUT: age, self.output_name: groups}

    def losses(self) -> Dict[str, keras.losses.Loss]:
        losses = {self.output_name: keras.losses.SparseCategoricalCrossentropy()}
        if self.predict_age:
            losses[base.AGE_OUTPUT] = keras.losses.MeanAbsoluteError()
        return losses

    def loss_weights(self) -> Dict[str, float]:
        weights = {self.output_name: self.loss_weight}
        if self.predict_age:
            weights[base.AGE_OUTPUT] = 0.0
        return weights

    def metrics(self) -> Dict[str, list]:
        metrics = {self.output_name: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}
        if self.predict_age:
            metrics.update(base.age_metrics())
        return metrics

    def encode_targets(self, labels: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        ages = base.ages_from(labels)
        targets = {self.output_name: encodings.age_group_index(ages, self._boundaries)}
        if self.predict_age:
            targets[base.AGE_OUTPUT] = base.age_target(ages)
        return targets

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"boundaries": self.boundaries, "loss_weight": self.loss_weight, "output_name": self.output_name,
                       "predict_age": self.predict_age})
        return config
