"""The head protocol: named outputs, their losses and their label encodings."""

from __future__ import annotations

import abc
import re
from typing import Dict, Iterable, List, Mapping

import keras
import numpy as np

from ssrnet_tf.heads import encodings

#: The inference output of every age head: ages in years, shape (N, 1).
AGE_OUTPUT = "age"

_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class Head(abc.ABC):
    """A head: layers on a backbone's features with named outputs.

    A head is not a Keras layer: :meth:`build_outputs` creates its layers on
    the features of a functional model and returns the outputs by name. Most
    heads take a pooled ``(batch, D)`` feature tensor; a head with
    ``takes_feature_maps`` (SSR-Net's, :class:`ssrnet_tf.heads.SSRNetHead`)
    takes several feature maps, a mapping ``{name: (batch, h, w, c)}`` as a
    backbone exposes them (:func:`ssrnet_tf.models.build_ssrnet_backbone`).
    The model assembly merges the dicts of several heads
    into ``keras.Model(image, {**outputs})`` and compiles it with the
    merged :meth:`losses`, :meth:`loss_weights` and :meth:`metrics`, and
    fits it on the merged :meth:`encode_targets`. The layers are standard
    or registered ``ssrnet_tf`` layers, so the model saves to ``.keras``,
    loads without ``custom_objects`` and converts to TFLite.

    Age heads (``is_age_head``; exactly one per model) output ``"age"`` of
    shape ``(N, 1)`` in years, which is what inference and export use.
    ``"age"`` is always one of their loss keys, so that ``"age"`` targets
    exist for the MAE metric; a head that does not train its ``"age"``
    output directly gives that loss a weight of 0 (it is then a
    monitor-only MAE in years, ``age_loss`` in the logs).

    Subclasses implement :attr:`output_names`, :meth:`build_outputs`,
    :meth:`losses`, :meth:`loss_weights`, :meth:`encode_targets` and
    chain :meth:`get_config`.

    Args:
        name: Unique name of the head, the prefix of its layer names.
    """

    #: Whether the head outputs the model's ``"age"``.
    is_age_head = False
    #: Whether :meth:`build_outputs` takes a mapping of feature maps instead
    #: of one pooled ``(batch, D)`` tensor.
    takes_feature_maps = False

    def __init__(self, name: str):
        if not isinstance(name, str) or not _NAME_PATTERN.match(name):
            raise ValueError(
                f"Head name must start with a letter and hold only letters, digits and '_', got {name!r}."
            )
        self.name = name

    @property
    @abc.abstractmethod
    def output_names(self) -> tuple:
        """Names of the outputs :meth:`build_outputs` returns."""

    @abc.abstractmethod
    def build_outputs(self, features) -> Dict[str, keras.KerasTensor]:
        """Creates the head's layers on ``features``.

        Args:
            features: Pooled features ``(batch, D)``, or with
                ``takes_feature_maps`` a mapping of named feature maps.

        Returns:
            The output tensors keyed by :attr:`output_names`.
        """

    @abc.abstractmethod
    def losses(self) -> Dict[str, keras.losses.Loss]:
        """Fresh loss objects, keyed by a subset of :attr:`output_names`."""

    @abc.abstractmethod
    def loss_weights(self) -> Dict[str, float]:
        """Loss weights, with the same keys as :meth:`losses`."""

    def metrics(self) -> Dict[str, list]:
        """Fresh metric objects per output name (may be empty)."""
        return {}

    @property
    def classifier_layer_names(self) -> tuple:
        """Names of the layers that map features to the head's class scores.

        The *classifier* that decoupled long-tailed training re-trains on
        class-balanced batches while everything else stays frozen
        (:mod:`ssrnet_tf.training.stage_two`). Empty for heads without one.
        """
        return ()

    @abc.abstractmethod
    def encode_targets(self, labels: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Encodes raw labels into the ``y`` arrays of :meth:`losses`.

        Args:
            labels: ``"age"``: float years ``(N,)``; optionally
                ``"gender"`` and ``"race"``: int ``(N,)`` with ``-1`` for
                missing.

        Returns:
            One array per key of :meth:`losses`.
        """

    def get_config(self) -> dict:
        """The constructor arguments, as plain Python values."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "Head":
        """Creates a head from :meth:`get_config` output."""
        return cls(**config)

    def _layer_name(self, suffix: str) -> str:
        return f"{self.name}_{suffix}"

    @staticmethod
    def _check_features(features) -> None:
        if len(features.shape) != 2:
            raise ValueError(
                f"Heads take pooled features of shape (batch, D), got shape {tuple(features.shape)}."
            )

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


class AgeOnlyHead(Head):
    """An age head whose one output is ``"age"``, trained on the raw age.

    Implements :attr:`output_names`, :meth:`metrics` (MAE in years) and
    :meth:`encode_targets` (the age column) for heads such as
    :class:`ssrnet_tf.heads.RegressionHead` and
    :class:`ssrnet_tf.heads.SSRNetHead`.
    """

    is_age_head = True

    @property
    def output_names(self) -> tuple:
        return (AGE_OUTPUT,)

    def metrics(self) -> Dict[str, list]:
        return age_metrics()

    def encode_targets(self, labels: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        return {AGE_OUTPUT: age_target(ages_from(labels))}


def ages_from(labels: Mapping[str, np.ndarray]) -> np.ndarray:
    """The checked ``"age"`` labels of ``labels`` as float64 ``(N,)``.

    Raises:
        ValueError: If ``"age"`` is absent, negative or not finite.
    """
    if AGE_OUTPUT not in labels:
        raise ValueError(f"labels must contain 'age' (years), got keys {sorted(labels)}.")
    return encodings.validate_ages(labels[AGE_OUTPUT])


def age_target(ages: np.ndarray) -> np.ndarray:
    """Raw ages as the float32 ``(N, 1)`` target of an ``"age"`` output."""
    return np.asarray(ages, dtype=np.float32).reshape(-1, 1)


#: Losses on the raw age that :func:`age_loss` makes.
AGE_LOSSES = ("mae", "mse")


def age_loss(kind: str) -> keras.losses.Loss:
    """A fresh MAE (``"mae"``) or MSE (``"mse"``) loss on the raw age."""
    if kind not in AGE_LOSSES:
        raise ValueError(f"loss must be one of {AGE_LOSSES}, got {kind!r}.")
    return keras.losses.MeanAbsoluteError() if kind == "mae" else keras.losses.MeanSquaredError()


def age_metrics() -> Dict[str, list]:
    """A fresh MAE-in-years metric on ``"age"`` (``age_mae`` in the logs)."""
    return {AGE_OUTPUT: [keras.metrics.MeanAbsoluteError(name="mae")]}


def check_weight(value, label: str) -> float:
    """A loss weight as a float, checked to be finite and >= 0."""
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{label} must be a finite number >= 0, got {value}.")
    return value


def validate_heads(heads: Iterable[Head]) -> List[str]:
    """Checks that heads can share one model.

    Args:
        heads: The heads of one model.

    Returns:
        All output names, in head order.

    Raises:
        ValueError: If two heads share a name or an output name, or if the
            heads do not hold exactly one age head.
    """
    heads = list(heads)
    names = [head.name for head in heads]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"Head names must be unique, got {duplicates} more than once.")
    age_heads = [head.name for head in heads if head.is_age_head]
    if len(age_heads) != 1:
        raise ValueError(f"A model needs exactly one age head, got {len(age_heads)}: {age_heads}.")
    owners = {}
    for head in heads:
        for output in head.output_names:
            if output in owners:
                raise ValueError(
                    f"Output name {output!r} is produced by both head {owners[output]!r} and head {head.name!r}."
                )
            owners[output] = head.name
    return list(owners)


def expected_age_branch(head: "Head", features, min_age: int, max_age: int, suffix: str, arg_max: bool = False):
    """A softmax over the whole years ``min_age..max_age`` and its expectation.

    The shared branch of the label-distribution and DEX heads.

    Args:
        head: The head whose layer-name prefix is used.
        features: Feature tensor ``(batch, D)``.
        min_age: First age class.
        max_age: Last age class.
        suffix: Layer-name suffix of the softmax layer.
        arg_max: Give the age of the most probable class instead of the
            expectation (plain classification).

    Returns:
        ``(probabilities, age)`` of shapes ``(batch, K)`` and ``(batch, 1)``.
    """
    from ssrnet_tf.layers import arg_max_value, expected_value  # pylint: disable=import-outside-toplevel

    ages = encodings.discrete_ages(min_age, max_age)
    probabilities = keras.layers.Dense(ages.size, activation="softmax", name=head._layer_name(suffix))(features)
    layer = arg_max_value.ArgMaxValue if arg_max else expected_value.ExpectedValue
    age = layer(ages.tolist(), name=head._layer_name("age"))(probabilities)
    return probabilities, age
