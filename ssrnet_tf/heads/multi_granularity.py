"""Age-Granularity-Net head: age classification at several granularities."""

from __future__ import annotations

from typing import Dict, Mapping, Sequence, Union

import keras
import numpy as np

from ssrnet_tf.heads import base
from ssrnet_tf.heads import encodings
from ssrnet_tf.layers import expected_value

#: Name of the optional regression branch output.
REGRESSION_OUTPUT = "age_regression"
#: ``inference_branch`` values besides a granularity.
INFERENCE_BRANCHES = ("expectation", "regression")


def branch_output(granularity: int) -> str:
    """Output name of the classification branch of ``granularity`` years."""
    return f"age_g{int(granularity)}"


class MultiGranularityHead(base.Head):
    """Classification at several age granularities plus a regression branch.

    Age-Granularity-Net trains one softmax classifier per granularity ``g``
    (classes of ``g`` years: ``floor((age - min_age) / g)``), each with its
    own sparse categorical cross-entropy, next to a regression branch with
    an MSE loss. Every added loss regularises the shared features and
    improves accuracy at no inference cost: at inference only one branch
    gives the age, yet all branches stay model outputs for analysis.

    Outputs (``N`` = batch):

    * ``"age_g{g}"`` for each granularity: ``(N, K_g)`` probabilities, with
      ``K_g = ceil((max_age - min_age) / g)`` (100/20/10/5 classes for the
      default granularities over 0-100). Ages ``>= max_age`` (100, and 116
      in UTKFace) belong to the last class, ages below ``min_age`` to the
      first. Loss: sparse categorical cross-entropy, weight
      ``classification_weight``.
    * ``"age_regression"`` (if ``use_regression``): ``(N, 1)`` age in years
      from ``Dense(1)`` followed by a fixed rescaling, ``min_age +
      (max_age - min_age) / 2 + regression_scale * dense``. Loss: MSE in
      years with weight ``regression_weight / regression_scale ** 2``,
      i.e. ``regression_weight`` times the MSE measured in units of
      ``regression_scale`` years. MSE on raw years is ~1000x a
      cross-entropy early in training; with the default scale of 10 years
      a 10-year error costs 1.0, about one cross-entropy, so ``lambda =
      regression_weight = 1`` balances the branches. The target is the raw
      age (not clipped to the range).
    * ``"age"``: ``(N, 1)`` inference age in years. ``inference_branch``:
      ``"expectation"`` (default): the expectation over the finest branch's
      class centres (:func:`encodings.class_centers`);
      ``"regression"``: the regression branch; or one of the granularities:
      the expectation over that branch. Loss: MAE on the raw age with
      weight ``age_loss_weight`` (default 0: monitor-only, reported as
      ``age_loss``; > 0 adds a DLDL-v2-style expectation loss).

    Args:
        granularities: Class widths in whole years (distinct, >= 1).
        min_age: Lowest age of the range (whole years).
        max_age: Highest age of the range (whole years).
        classification_weight: Loss weight of every classification branch.
        use_regression: Whether to add the regression branch.
        regression_weight: ``lambda``, the weight of the regression MSE in
            units of ``regression_scale`` years.
        regression_scale: Years per unit of the regression branch.
        inference_branch: ``"expectation"``, ``"regression"`` or a
            granularity.
        age_loss_weight: Weight of the MAE on ``"age"``.
        name: Head name (layer-name prefix).

    Example:
        >>> head = MultiGranularityHead()
        >>> features = keras.Input((32,))
        >>> sorted(head.build_outputs(features))
        ['age', 'age_g1', 'age_g10', 'age_g20', 'age_g5', 'age_regression']

    Reference:
        Age-Granularity-Net: multi-granularity age classification with
        regression (several classification losses at different
        granularities and an MSE regression loss).
    """

    is_age_head = True

    def __init__(
        self,
        granularities: Sequence[int] = (1, 5, 10, 20),
        min_age: int = 0,
        max_age: int = 100,
        classification_weight: float = 1.0,
        use_regression: bool = True,
        regression_weight: float = 1.0,
        regression_scale: float = 10.0,
        inference_branch: Union[str, int] = "expectation",
        age_loss_weight: float = 0.0,
        name: str = "multi_granularity",
    ):
        super().__init__(name)
        encodings.check_age_range(min_age, max_age)
        granularities = tuple(granularities)
        if not granularities:
            raise ValueError("granularities must hold at least one granularity, got ().")
        for granularity in granularities:
            encodings.num_classes(granularity, min_age, max_age)  # Raises for an invalid one.
        granularities = tuple(int(g) for g in granularities)
        if len(set(granularities)) != len(granularities):
            raise ValueError(f"granularities must be distinct, got {granularities}.")
        if not (isinstance(inference_branch, str) and inference_branch in INFERENCE_BRANCHES) and not (
            not isinstance(inference_branch, (str, bool)) and inference_branch in granularities
        ):
            raise ValueError(
                f"inference_branch must be one of {INFERENCE_BRANCHES} or one of the granularities "
                f"{granularities}, got {inference_branch!r}."
            )
        if inference_branch == "regression" and not use_regression:
            raise ValueError("inference_branch='regression' needs use_regression=True.")
        if not regression_scale > 0:
            raise ValueError(f"regression_scale must be > 0, got {regression_scale}.")
        self.granularities = granularities
        self.min_age = int(min_age)
        self.max_age = int(max_age)
        self.classification_weight = base.check_weight(classification_weight, "classification_weight")
        self.use_regression = bool(use_regression)
        self.regression_weight = base.check_weight(regression_weight, "regression_weight")
        self.regression_scale = float(regression_scale)
        self.inference_branch = inference_branch if isinstance(inference_branch, str) else int(inference_branch)
        self.age_loss_weight = base.check_weight(age_loss_weight, "age_loss_weight")

    @property
    def output_names(self) -> tuple:
        names = [base.AGE_OUTPUT] + [branch_output(g) for g in self.granularities]
        if self.use_regression:
            names.append(REGRESSION_OUTPUT)
        return tuple(names)

    def _expectation_granularity(self) -> int:
        if self.inference_branch == "expectation":
            return min(self.granularities)
        return self.inference_branch

    def build_outputs(self, features):
        self._check_features(features)
        outputs = {}
        for granularity in self.granularities:
            classes = encodings.num_classes(granularity, self.min_age, self.max_age)
            outputs[branch_output(granularity)] = keras.layers.Dense(
                classes, activation="softmax", name=self._layer_name(f"g{granularity}")
            )(features)  # (batch, K_g)
        if self.use_regression:
            units = keras.layers.Dense(1, name=self._layer_name("regression_dense"))(features)
            outputs[REGRESSION_OUTPUT] = keras.layers.Rescaling(
                scale=self.regression_scale,
                offset=(self.min_age + self.max_age) / 2.0,
                name=self._layer_name("regression"),
            )(units)  # (batch, 1) years
        if self.inference_branch == "regression":
            age = keras.layers.Identity(name=self._layer_name("age"))(outputs[REGRESSION_OUTPUT])
        else:
            granularity = self._expectation_granularity()
            centers = encodings.class_centers(granularity, self.min_age, self.max_age)
            age = expected_value.ExpectedValue(centers.tolist(), name=self._layer_name("age"))(
                outputs[branch_output(granularity)]
            )  # (batch, 1) years
        return {base.AGE_OUTPUT: age, **outputs}

    def losses(self) -> Dict[str, keras.losses.Loss]:
        losses = {base.AGE_OUTPUT: keras.losses.MeanAbsoluteError()}
        for granularity in self.granularities:
            losses[branch_output(granularity)] = keras.losses.SparseCategoricalCrossentropy()
        if self.use_regression:
            losses[REGRESSION_OUTPUT] = keras.losses.MeanSquaredError()
        return losses

    def loss_weights(self) -> Dict[str, float]:
        weights = {base.AGE_OUTPUT: self.age_loss_weight}
        for granularity in self.granularities:
            weights[branch_output(granularity)] = self.classification_weight
        if self.use_regression:
            weights[REGRESSION_OUTPUT] = self.regression_weight / self.regression_scale**2
        return weights

    def metrics(self) -> Dict[str, list]:
        return base.age_metrics()

    def encode_targets(self, labels: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        ages = base.ages_from(labels)
        targets = {base.AGE_OUTPUT: base.age_target(ages)}
        for granularity in self.granularities:
            targets[branch_output(granularity)] = encodings.granularity_class(
                ages, granularity, self.min_age, self.max_age
            )
        if self.use_regression:
            targets[REGRESSION_OUTPUT] = base.age_target(ages)
        return targets

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "granularities": list(self.granularities),
                "min_age": self.min_age,
                "max_age": self.max_age,
                "classification_weight": self.classification_weight,
                "use_regression": self.use_regression,
                "regression_weight": self.regression_weight,
                "regression_scale": self.regression_scale,
                "inference_branch": self.inference_branch,
                "age_loss_weight": self.age_loss_weight,
            }
        )
        return config
