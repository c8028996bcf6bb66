"""The SSR-Net head: one fusion block per stage and soft stagewise regression."""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import keras
import numpy as np

from ssrnet_tf.heads import base
from ssrnet_tf.layers.soft_stagewise_regression import SoftStagewiseRegression
from ssrnet_tf.models import ssrnet_config
from ssrnet_tf.models.ssrnet_backbone import feature_map_name
from ssrnet_tf.models.ssrnet_fusion import fusion_block

class SSRNetHead(base.AgeOnlyHead):
    """SSR-Net's fusion blocks and soft stagewise regression on two streams.

    Stage ``k`` taps both streams of :func:`ssrnet_tf.models.
    build_ssrnet_backbone` at block ``stage_levels[k]`` and fuses them into
    its distribution ``p^(k)``, bin shifts ``eta^(k)`` and scale factor
    ``Delta_k`` (:func:`ssrnet_tf.models.ssrnet_fusion.fusion_block`,
    section 3.4); :class:`ssrnet_tf.layers.SoftStagewiseRegression` turns
    them into the age (eq. 7)::

        y = V * sum_k sum_i p_i^(k) * (i + lambda_local * eta_i^(k))
                       / prod_{j<=k} s_j * (1 + lambda_d * Delta_j)

    Unlike the pooled-feature heads it takes several feature maps
    (``takes_feature_maps``), and its layer names carry no head prefix
    (``stage1_...`` and ``age``): they are the names the published weights
    load into (:func:`ssrnet_tf.pretrained.reference_layer_map`).

    Outputs:

    * ``"age"``: ``(N, 1)`` age in years, float32 under mixed precision.
      Loss: ``loss`` (MAE, the paper's L1, by default) on the raw age.

    Args:
        stage_bins: ``s_k`` of each stage; its length is the number of
            stages ``K``.
        stage_levels: Stream block (1-4) tapped by each stage; ``None``: the
            reference order (:class:`ssrnet_tf.models.SSRNetConfig`).
        fusion_filters: Filters of the 1x1 convolutions of the fusion blocks.
        dropout: Dropout rate before the fusion dense layers.
        stage_activation: ``"relu"`` (reference) or ``"softmax"`` for
            ``p^(k)``.
        lambda_local: Weight of the bin shifts ``eta``.
        lambda_d: Weight of the scale factors ``Delta``.
        age_range: ``V``, the width of the age range.
        min_scale: Division guard of eq. 7 (see
            :class:`ssrnet_tf.layers.SoftStagewiseRegression`).
        loss: ``"mae"`` or ``"mse"`` on ``"age"``.
        name: Head name (not a layer-name prefix, see above).

    Example:
        >>> from ssrnet_tf.models import build_ssrnet_backbone
        >>> backbone = build_ssrnet_backbone()
        >>> SSRNetHead().build_outputs(backbone.output)["age"].shape
        (None, 1)

    Reference:
        Yang et al., "SSR-Net: A Compact Soft Stagewise Regression Network
        for Age Estimation", IJCAI 2018.
    """

    takes_feature_maps = True

    def __init__(
        self,
        stage_bins: Sequence[int] = (3, 3, 3),
        stage_levels: Optional[Sequence[int]] = None,
        fusion_filters: int = 10,
        dropout: float = 0.2,
        stage_activation: str = "relu",
        lambda_local: float = 1.0,
        lambda_d: float = 1.0,
        age_range: float = 101.0,
        min_scale: float = 0.1,
        loss: str = "mae",
        name: str = "ssrnet",
    ):
        super().__init__(name)
        base.age_loss(loss)  # checks the name
        # SSRNetConfig validates every head field (and names the bad one).
        config = ssrnet_config.SSRNetConfig(
            stage_bins=stage_bins, stage_levels=stage_levels, fusion_filters=fusion_filters, dropout=dropout,
            stage_activation=stage_activation, lambda_local=lambda_local, lambda_d=lambda_d,
            age_range=age_range, min_scale=min_scale,
        )
        self.stage_bins = config.stage_bins
        self.stage_levels = config.resolved_stage_levels
        self.fusion_filters = config.fusion_filters
        self.dropout = config.dropout
        self.stage_activation = config.stage_activation
        self.lambda_local = config.lambda_local
        self.lambda_d = config.lambda_d
        self.age_range = config.age_range
        self.min_scale = config.min_scale
        self.loss = loss

    @classmethod
    def from_ssrnet_config(cls, config: ssrnet_config.SSRNetConfig, **kwargs) -> "SSRNetHead":
        """The head of an :class:`SSRNetConfig` (its non-stream fields)."""
        return cls(
            stage_bins=config.stage_bins, stage_levels=config.resolved_stage_levels,
            fusion_filters=config.fusion_filters, dropout=config.dropout,
            stage_activation=config.stage_activation, lambda_local=config.lambda_local,
            lambda_d=config.lambda_d, age_range=config.age_range, min_scale=config.min_scale, **kwargs,
        )

    def build_outputs(self, features: Mapping[str, keras.KerasTensor]) -> Dict[str, keras.KerasTensor]:
        """Creates the fusion blocks and eq. 7 on the backbone's feature maps.

        Args:
            features: ``{"stream<s>_block<b>": map}`` of
                :func:`ssrnet_tf.models.build_ssrnet_backbone`.
        """
        self._check_feature_maps(features)
        # === Fusion blocks ===
        probabilities, scales, shifts = [], [], []
        for stage, (bins, level) in enumerate(zip(self.stage_bins, self.stage_levels), start=1):
            relu_map = features[feature_map_name(1, level)]  # (b, h, w, c1)
            tanh_map = features[feature_map_name(2, level)]  # (b, h, w, c2)
            # Reduce the tapped map to a small grid, as the reference does
            # (14 -> 3 with pool 4 at block 2, 31 -> 3 with pool 8 at block 1).
            spatial = min(int(relu_map.shape[1]), int(relu_map.shape[2]))
            pool_size = min(2 ** (ssrnet_config.NUM_BLOCKS - level), spatial)
            p, delta, eta = fusion_block(
                relu_map, tanh_map, stage=stage, bins=bins, pool_size=pool_size, filters=self.fusion_filters,
                dropout=self.dropout, stage_activation=self.stage_activation,
            )
            probabilities.append(p)
            scales.append(delta)
            shifts.append(eta)

        # === Soft stagewise regression (eq. 7) ===
        age = SoftStagewiseRegression(
            stage_bins=self.stage_bins,
            lambda_local=self.lambda_local,
            lambda_d=self.lambda_d,
            age_range=self.age_range,
            min_scale=self.min_scale,
            dtype="float32",  # eq. 7 stays float32 under mixed precision
            name=base.AGE_OUTPUT,
        )(probabilities + scales + shifts)
        return {base.AGE_OUTPUT: age}

    def losses(self) -> Dict[str, keras.losses.Loss]:
        return {base.AGE_OUTPUT: base.age_loss(self.loss)}

    def loss_weights(self) -> Dict[str, float]:
        return {base.AGE_OUTPUT: 1.0}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "stage_bins": list(self.stage_bins),
                "stage_levels": list(self.stage_levels),
                "fusion_filters": self.fusion_filters,
                "dropout": self.dropout,
                "stage_activation": self.stage_activation,
                "lambda_local": self.lambda_local,
                "lambda_d": self.lambda_d,
                "age_range": self.age_range,
                "min_scale": self.min_scale,
                "loss": self.loss,
            }
        )
        return config

    def _check_feature_maps(self, features) -> None:
        needed = sorted({feature_map_name(stream, level) for level in self.stage_levels for stream in (1, 2)})
        missing = [key for key in needed if not isinstance(features, Mapping) or key not in features]
        if missing:
            raise ValueError(
                f"SSRNetHead taps the feature maps {needed} of an SSR-Net backbone; missing {missing} "
                f"(got {type(features).__name__})."
            )
