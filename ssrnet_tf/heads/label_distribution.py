"""DLDL-v2 head: label distribution learning with an expectation loss."""

from __future__ import annotations

from typing import Dict, Mapping

import keras
import numpy as np

from ssrnet_tf.heads import base
from ssrnet_tf.heads import encodings

#: Name of the predicted age distribution output.
DISTRIBUTION_OUTPUT = "age_distribution"

# Layer-name suffix of the (N, K) softmax classifier.
_CLASSIFIER_SUFFIX = "distribution"


class LabelDistributionHead(base.Head):
    """Learns a distribution over whole-year ages and its expectation.

    DLDL-v2 represents an age ``y`` by a Gaussian distribution over the
    ``K`` whole years ``min_age .. max_age`` (101 classes for 0-100) with
    standard deviation ``sigma`` (eq. 1; normalised over the ``K`` ages,
    ages outside the range clipped into it, see
    :func:`encodings.gaussian_label_distribution`). The network predicts a
    softmax distribution ``p`` and its expectation ``y_hat = sum_k p_k l_k``
    (eq. 5), trained jointly (eq. 8) with::

        L = KL(target || p) + lambda * |y_hat - y|

    Outputs:

    * ``"age_distribution"``: ``(N, K)`` probabilities. Loss:
      ``keras.losses.KLDivergence``, weight ``distribution_loss_weight``.
    * ``"age"``: ``(N, 1)`` expected age in years. Loss: L1 (MAE) against
      the raw age, weight ``age_loss_weight`` (``lambda``, default 1 as in
      the paper). An age above ``max_age`` gives the same L1 gradient as the
      clipped one, since the expectation cannot exceed ``max_age``.

    Args:
        sigma: Standard deviation of the target distribution, years (> 0).
        min_age: Lowest age of the range (whole years).
        max_age: Highest age of the range (whole years).
        distribution_loss_weight: Weight of the KL divergence.
        age_loss_weight: ``lambda``, weight of the expectation L1 loss.
        name: Head name (layer-name prefix).

    Example:
        >>> head = LabelDistributionHead(sigma=2.0)
        >>> outputs = head.build_outputs(keras.Input((32,)))
        >>> outputs["age_distribution"].shape, outputs["age"].shape
        ((None, 101), (None, 1))

    Reference:
        Gao et al., "Age Estimation Using Expectation of Label Distribution
        Learning", IJCAI 2018 (DLDL-v2).
    """

    is_age_head = True

    def __init__(
        self,
        sigma: float = 2.0,
        min_age: int = 0,
        max_age: int = 100,
        distribution_loss_weight: float = 1.0,
        age_loss_weight: float = 1.0,
        name: str = "label_distribution",
    ):
        super().__init__(name)
        encodings.check_age_range(min_age, max_age)
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}.")
        self.sigma = float(sigma)
        self.min_age = int(min_age)
        self.max_age = int(max_age)
        self.distribution_loss_weight = base.check_weight(distribution_loss_weight, "distribution_loss_weight")
        self.age_loss_weight = base.check_weight(age_loss_weight, "age_loss_weight")

    @property
    def output_names(self) -> tuple:
        return (base.AGE_OUTPUT, DISTRIBUTION_OUTPUT)

    @property
    def classifier_layer_names(self) -> tuple:
        return (self._layer_name(_CLASSIFIER_SUFFIX),)

    def build_outputs(self, features):
        self._check_features(features)
        distribution, age = base.expected_age_branch(self, features, self.min_age, self.max_age, _CLASSIFIER_SUFFIX)
        return {base.AGE_OUTPUT: age, DISTRIBUTION_OUTPUT: distribution}

    def losses(self) -> Dict[str, keras.losses.Loss]:
        return {
            base.AGE_OUTPUT: keras.losses.MeanAbsoluteError(),
            DISTRIBUTION_OUTPUT: keras.losses.KLDivergence(),
        }

    def loss_weights(self) -> Dict[str, float]:
        return {base.AGE_OUTPUT: self.age_loss_weight, DISTRIBUTION_OUTPUT: self.distribution_loss_weight}

    def metrics(self) -> Dict[str, list]:
        return base.age_metrics()

    def encode_targets(self, labels: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        ages = base.ages_from(labels)
        return {
            base.AGE_OUTPUT: base.age_target(ages),
            DISTRIBUTION_OUTPUT: encodings.gaussian_label_distribution(ages, self.sigma, self.min_age, self.max_age),
        }

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "sigma": self.sigma,
                "min_age": self.min_age,
                "max_age": self.max_age,
                "distribution_loss_weight": self.distribution_loss_weight,
                "age_loss_weight": self.age_loss_weight,
            }
        )
        return config
