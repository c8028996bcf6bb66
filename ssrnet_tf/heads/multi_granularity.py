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
    (classes of ``g`` years), each with its own sparse categorical
    cross-entropy, next to a regression branch with an MSE loss, and sums
    them (eq. 1)::

        L = sum_g L_g(y_g, y_hat_g) + lambda * L_mse(y, y_hat)

    "In our experiments, the weight lambda is set to 1". Every added loss
    regularises the shared features and improves accuracy at no inference
    cost: at inference only one branch gives the age (the paper uses the
    one-year branch), yet all branches stay model outputs for analysis.

    Outputs (``N`` = batch):

    * ``"age_g{g}"`` for each granularity: ``(N, K_g)`` probabilities, with
      ``K_g = ceil((max_age - min_age) / g)`` (100/20/10/5 classes for the
      default granularities over 0-100). ``class_indexing="paper"`` (the
      default) indexes the classes as the paper's Fig. 2, where 44 is "the
      43'rd class in the 100-class loss, the 8'th [...] the 4'th [...] and
      2'nd": class ``k`` holds ``(k g, (k + 1) g]`` (see
      :func:`encodings.granularity_class`). Ages beyond the range belong to
      the first/last class. Loss: sparse categorical cross-entropy, weight
      ``classification_weight``.
    * ``"age_regression"`` (if ``use_regression``): ``(N, 1)`` age in years
      from a dense single-output node, ``min_age + (max_age - min_age) / 2
      + regression_scale * dense``. The fixed affine rescaling is only a
      parametrisation of the output (it starts predictions mid-range and
      keeps the dense output of order 1); it does not change the loss.
      Loss: MSE in years (raw squared years, as the paper) with weight
      ``regression_weight`` (``lambda``, 1 by default as in the paper). The
      target is the raw age (not clipped to the range). A squared error of
      hundreds of years^2 outweighs the cross-entropies early in training;
      ``regression_weight=0.01`` measures it in units of 10 years instead.
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
            squared years (the paper's loss; 1 in the paper).
        regression_scale: Years per unit of the regression branch's dense
            output (a parametrisation; the loss does not depend on it).
        class_indexing: ``"paper"`` or ``"floor"``
            (:data:`encodings.CLASS_INDEXINGS`).
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
        Zhou, Huttunen and Elomaa, "Using Multiple Losses for Accurate
        Facial Age Estimation" (Age-Granularity-Net), eqs. 1-2 and Fig. 2.
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
        class_indexing: str = "paper",
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
        if class_indexing not in encodings.CLASS_INDEXINGS:
            raise ValueError(f"class_indexing must be one of {encodings.CLASS_INDEXINGS}, got {class_indexing!r}.")
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
        self.class_indexing = class_indexing

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
            centers = encodings.class_centers(granularity, self.min_age, self.max_age, self.class_indexing)
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
            weights[REGRESSION_OUTPUT] = self.regression_weight
        return weights

    def metrics(self) -> Dict[str, list]:
        return base.age_metrics()

    def encode_targets(self, labels: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        ages = base.ages_from(labels)
        targets = {base.AGE_OUTPUT: base.age_target(ages)}
        for granularity in self.granularities:
            targets[branch_output(granularity)] = encodings.granularity_class(
                ages, granularity, self.min_age, self.max_age, self.class_indexing
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
                "class_indexing": self.class_indexing,
            }
        )
        return config
