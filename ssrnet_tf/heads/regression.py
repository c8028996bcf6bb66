"""Baseline age heads: direct regression and DEX expected value."""

from __future__ import annotations

from typing import Dict, Mapping

import keras
import numpy as np

from ssrnet_tf.heads import base
from ssrnet_tf.heads import encodings

#: Losses of :class:`RegressionHead`.
REGRESSION_LOSSES = base.AGE_LOSSES
#: Ways :class:`DEXHead` turns class probabilities into an age.
DEX_PREDICTIONS = ("expectation", "arg_max")
#: Name of the DEX class-probability output.
DEX_CLASSES_OUTPUT = "age_classes"

# Layer-name suffix of DEX's (N, K) softmax classifier.
_DEX_CLASSIFIER_SUFFIX = "classes"


class RegressionHead(base.AgeOnlyHead):
    """Plain age regression: one linear unit, trained with MAE or MSE.

    The age is ``age_offset + age_scale * Dense(1)(features)``; the fixed
    rescaling starts predictions near the middle of the age range and keeps
    the dense layer's output of order 1.

    Outputs:

    * ``"age"``: ``(N, 1)`` age in years (unbounded). Loss on the raw age:
      ``"mae"``: MAE in years with weight ``loss_weight``; ``"mse"``: MSE in
      years with weight ``loss_weight / age_scale ** 2``, i.e. the MSE in
      units of ``age_scale`` years (raw squared years would dwarf any other
      loss of the model).

    Args:
        loss: ``"mae"`` or ``"mse"``.
        loss_weight: Weight of the loss (see above).
        age_scale: Years per unit of the dense output (> 0).
        age_offset: Age of a zero dense output, years.
        name: Head name (layer-name prefix).

    Example:
        >>> head = RegressionHead(loss="mse")
        >>> head.build_outputs(keras.Input((32,)))["age"].shape
        (None, 1)
    """

    def __init__(
        self,
        loss: str = "mae",
        loss_weight: float = 1.0,
        age_scale: float = 10.0,
        age_offset: float = 50.0,
        name: str = "regression",
    ):
        super().__init__(name)
        if loss not in REGRESSION_LOSSES:
            raise ValueError(f"loss must be one of {REGRESSION_LOSSES}, got {loss!r}.")
        if not age_scale > 0:
            raise ValueError(f"age_scale must be > 0, got {age_scale}.")
        self.loss = loss
        self.loss_weight = base.check_weight(loss_weight, "loss_weight")
        self.age_scale = float(age_scale)
        self.age_offset = float(age_offset)

    def build_outputs(self, features):
        self._check_features(features)
        units = keras.layers.Dense(1, name=self._layer_name("dense"))(features)
        age = keras.layers.Rescaling(scale=self.age_scale, offset=self.age_offset, name=self._layer_name("age"))(
            units
        )  # (batch, 1) years
        return {base.AGE_OUTPUT: age}

    def losses(self) -> Dict[str, keras.losses.Loss]:
        return {base.AGE_OUTPUT: base.age_loss(self.loss)}

    def loss_weights(self) -> Dict[str, float]:
        weight = self.loss_weight if self.loss == "mae" else self.loss_weight / self.age_scale**2
        return {base.AGE_OUTPUT: weight}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "loss": self.loss,
                "loss_weight": self.loss_weight,
                "age_scale": self.age_scale,
                "age_offset": self.age_offset,
            }
        )
        return config


class DEXHead(base.Head):
    """DEX: softmax over whole-year ages, age = expected value.

    One class per whole year ``min_age .. max_age`` (101 for 0-100), trained
    with cross-entropy against the rounded age (clipped into the range, see
    :func:`encodings.discrete_age_class`); the age is the expectation of the
    softmax over the class ages, which DEX found better than the arg-max.
    ``prediction="arg_max"`` gives the plain classification baseline
    instead, "the class with the highest probability (argmax) is considered
    the predicted age value" (the LDL report's comparison): same network and
    loss, the age of the most probable class
    (:class:`ssrnet_tf.layers.ArgMaxValue`).

    Outputs:

    * ``"age_classes"``: ``(N, K)`` probabilities. Loss: sparse categorical
      cross-entropy, weight ``classification_weight``.
    * ``"age"``: ``(N, 1)`` expected (or arg-max) age in years. Loss: MAE
      on the raw age with weight ``age_loss_weight`` (default 0:
      monitor-only, as in DEX; must be 0 with ``"arg_max"``, which has no
      gradient).

    Args:
        min_age: Lowest age of the range (whole years).
        max_age: Highest age of the range (whole years).
        classification_weight: Weight of the cross-entropy.
        age_loss_weight: Weight of the MAE on ``"age"``.
        prediction: ``"expectation"`` (DEX) or ``"arg_max"`` (classification).
        name: Head name (layer-name prefix).

    Reference:
        Rothe et al., "DEX: Deep EXpectation of apparent age from a single
        image", ICCV Workshops 2015.
    """

    is_age_head = True

    def __init__(
        self,
        min_age: int = 0,
        max_age: int = 100,
        classification_weight: float = 1.0,
        age_loss_weight: float = 0.0,
        prediction: str = "expectation",
        name: str = "dex",
    ):
        super().__init__(name)
        encodings.check_age_range(min_age, max_age)
        if prediction not in DEX_PREDICTIONS:
            raise ValueError(f"prediction must be one of {DEX_PREDICTIONS}, got {prediction!r}.")
        if prediction == "arg_max" and age_loss_weight:
            raise ValueError(f"prediction='arg_max' has no gradient; age_loss_weight must be 0, got {age_loss_weight}.")
        self.prediction = prediction
        self.min_age = int(min_age)
        self.max_age = int(max_age)
        self.classification_weight = base.check_weight(classification_weight, "classification_weight")
        self.age_loss_weight = base.check_weight(age_loss_weight, "age_loss_weight")

    @property
    def output_names(self) -> tuple:
        return (base.AGE_OUTPUT, DEX_CLASSES_OUTPUT)

    @property
    def classifier_layer_names(self) -> tuple:
        return (self._layer_name(_DEX_CLASSIFIER_SUFFIX),)

    def build_outputs(self, features):
        self._check_features(features)
        classes, age = base.expected_age_branch(self, features, self.min_age, self.max_age, _DEX_CLASSIFIER_SUFFIX,
                                                arg_max=self.prediction == "arg_max")
        return {base.AGE_OUTPUT: age, DEX_CLASSES_OUTPUT: classes}

    def losses(self) -> Dict[str, keras.losses.Loss]:
        return {
            base.AGE_OUTPUT: keras.losses.MeanAbsoluteError(),
            DEX_CLASSES_OUTPUT: keras.losses.SparseCategoricalCrossentropy(),
        }

    def loss_weights(self) -> Dict[str, float]:
        return {base.AGE_OUTPUT: self.age_loss_weight, DEX_CLASSES_OUTPUT: self.classification_weight}

    def metrics(self) -> Dict[str, list]:
        return base.age_metrics()

    def encode_targets(self, labels: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        ages = base.ages_from(labels)
        return {
            base.AGE_OUTPUT: base.age_target(ages),
            DEX_CLASSES_OUTPUT: encodings.discrete_age_class(ages, self.min_age, self.max_age),
        }

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "min_age": self.min_age,
                "max_age": self.max_age,
                "classification_weight": self.classification_weight,
                "age_loss_weight": self.age_loss_weight,
                "prediction": self.prediction,
            }
        )
        return config
