"""An age model: a Keras Applications backbone with one age head and extras."""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence

import keras
import numpy as np

from ssrnet_tf.models.backbones import build_backbone


@dataclasses.dataclass
class AgeTask:
    """A built age model together with the heads that define its training.

    Attributes:
        model: ``keras.Model`` from raw 0-255 BGR pixels to a dict of outputs;
            ``"age"`` ``(N, 1)`` is the inference output.
        heads: The heads, in the order they were attached.
    """

    model: keras.Model
    heads: List

    def losses(self) -> Dict[str, keras.losses.Loss]:
        """All heads' losses, keyed by output name."""
        return _merge(head.losses() for head in self.heads)

    def loss_weights(self) -> Dict[str, float]:
        """All heads' loss weights, keyed by output name."""
        return _merge(head.loss_weights() for head in self.heads)

    def metrics(self) -> Dict[str, list]:
        """All heads' metrics, keyed by output name."""
        return _merge(head.metrics() for head in self.heads)

    def compile(self, optimizer="adam", **kwargs) -> keras.Model:
        """Compiles :attr:`model` with the heads' losses, weights and metrics.

        Args:
            optimizer: Any Keras optimizer (or its name).
            **kwargs: Further ``keras.Model.compile`` arguments.

        Returns:
            The compiled model.
        """
        self.model.compile(
            optimizer=optimizer,
            loss=self.losses(),
            loss_weights=self.loss_weights(),
            metrics=self.metrics() or None,
            **kwargs,
        )
        return self.model

    def encode_targets(self, labels: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Targets for every loss from raw labels.

        Args:
            labels: ``"age"`` in years ``(N,)``, optionally ``"gender"`` and
                ``"race"`` integer codes with -1 for missing.

        Returns:
            ``{output_name: y}`` for every output that has a loss.
        """
        return _merge(head.encode_targets(labels) for head in self.heads)


def _merge(dicts) -> dict:
    merged = {}
    for part in dicts:
        clash = set(part) & set(merged)
        if clash:
            raise ValueError(f"two heads define the same outputs: {sorted(clash)}.")
        merged.update(part)
    return merged


def build_age_model(
    backbone: str,
    age_head,
    extra_heads: Sequence = (),
    *,
    input_size: int = 64,
    alpha: Optional[float] = None,
    weights: Optional[str] = "imagenet",
    dropout: float = 0.0,
    name: Optional[str] = None,
    batch_norm_momentum: Optional[float] = None,
) -> AgeTask:
    """Puts an age head (and optional extra heads) on a registered backbone.

    Args:
        backbone: A key of :data:`ssrnet_tf.models.backbones.BACKBONES`, or
            a backbone model made by
            :func:`ssrnet_tf.models.backbones.build_backbone` (named
            ``"<key>_backbone"``), used as it is: e.g. a trained model's
            backbone under new heads. ``input_size``, ``alpha``, ``weights``
            and ``batch_norm_momentum`` then do not apply.
        age_head: A :class:`ssrnet_tf.heads.Head` that outputs ``"age"``.
        extra_heads: Further heads, e.g. gender/race or age groups.
        input_size: Square input side in pixels.
        alpha: Width multiplier for the MobileNet families.
        weights: ``"imagenet"``, ``None`` or a weights path (backbone only).
        dropout: Dropout rate on the pooled features before the heads.
        name: Model name; default ``"<backbone>_<head>"``.
        batch_norm_momentum: Momentum of the backbone's batch normalisation
            (see :func:`ssrnet_tf.models.backbones.build_backbone`).

    Returns:
        An :class:`AgeTask`.

    Raises:
        ValueError: If the age head has no ``"age"`` output, or two heads
            share an output name.

    Example:
        >>> from ssrnet_tf import heads
        >>> task = build_age_model("mobilenet_v2", heads.MultiGranularityHead(),
        ...                        [heads.MultiTaskHead()], weights=None)
        >>> task.compile("adam")
    """
    concatenated = [head for head in extra_heads if getattr(head, "design", "parallel") == "concatenated"]
    if len(concatenated) > 1:
        raise ValueError("at most one head can feed the age layer ('concatenated' design).")
    if isinstance(backbone, keras.Model):
        features_model = backbone
        if not backbone.name.endswith("_backbone"):
            raise ValueError(f"a backbone model is named '<registry key>_backbone', got {backbone.name!r}.")
        backbone, input_size = backbone.name[: -len("_backbone")], int(backbone.input_shape[1])
        if concatenated and len(features_model.outputs) != 2:
            raise ValueError("the 'concatenated' multi-task design needs a backbone built with early_features=True.")
    else:
        features_model = build_backbone(
            backbone, input_size, alpha=alpha, weights=weights, batch_norm_momentum=batch_norm_momentum,
            early_features=bool(concatenated),
        )

    # === Functional Model ===
    image = keras.Input((input_size, input_size, 3), name="image")
    if concatenated:
        features, early = features_model(image)  # (N, D), (N, H/8, W/8, C)
    else:
        features = features_model(image)  # (N, D)
    if dropout:
        features = keras.layers.Dropout(dropout, name="feature_dropout")(features)
    outputs = {}
    age_features = features
    if concatenated:  # the LDL report's multi-task design (section 4.6)
        head = concatenated[0]
        pooled_early = keras.layers.GlobalAveragePooling2D(name=f"{head.name}_early_pool")(early)  # (N, C)
        branch_outputs, logits = head.build_branches(pooled_early)
        outputs.update(branch_outputs)
        age_features = keras.layers.Concatenate(name="age_features")([features, *logits])  # (N, D + 2 + 5)
    all_heads = [age_head, *extra_heads]
    outputs = _merge([outputs, age_head.build_outputs(age_features),
                      *(head.build_outputs(features) for head in extra_heads if head not in concatenated)])
    if "age" not in outputs:
        raise ValueError(f"age head {age_head.name!r} has no 'age' output; outputs: {sorted(outputs)}.")
    model = keras.Model(image, outputs, name=name or f"{backbone}_{age_head.name}")
    _name_outputs_by_key(model, outputs)
    return AgeTask(model=model, heads=all_heads)


def _name_outputs_by_key(model: keras.Model, outputs: Dict) -> None:
    """Names a dict-output model's outputs by their keys, for older Keras.

    Keras up to at least 3.10 names a functional model's outputs after the
    layers that produce them, checks ``compile(metrics={...})`` keys against
    those names ("key 'age' does not correspond to any model output") and
    picks ``y_true`` / ``y_pred`` entries of dicts by them. The model's
    outputs are its dict's values in sorted-key order (``model.outputs``),
    so the keys in that order are the names every Keras version agrees on.
    """
    produced_by = [tensor._keras_history[0].name for tensor in model.outputs]  # pylint: disable=protected-access
    expected = [outputs[key]._keras_history[0].name for key in sorted(outputs)]  # pylint: disable=protected-access
    if produced_by != expected:
        raise ValueError(f"model outputs {produced_by} are not the sorted output dict {sorted(outputs)}.")
    model.output_names = sorted(outputs)
