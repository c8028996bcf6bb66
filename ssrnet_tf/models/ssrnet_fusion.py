"""The SSR-Net fusion block: one per stage, producing p, Delta and eta."""

from __future__ import annotations

import keras

from ssrnet_tf.layers.static_flatten import StaticFlatten


def fusion_block(
    relu_features,
    tanh_features,
    *,
    stage: int,
    bins: int,
    pool_size: int,
    filters: int = 10,
    dropout: float = 0.2,
    stage_activation: str = "relu",
):
    """Fuses the two streams at one level into a stage's outputs.

    Each stream's feature map goes through a 1x1 convolution (ReLU) and is
    pooled with its own stream's pooling (average for the ReLU stream, max
    for the tanh stream) down to a small grid, then flattened. Their
    element-wise product gives the scale factor ``Delta_k`` (tanh). After
    dropout, each is mapped to ``s_k`` units, multiplied element-wise,
    mapped to ``2 * s_k`` units, and from there to the stage distribution
    ``p^(k)`` and the bin shifts ``eta^(k)`` (tanh). This is the fusion block
    of SSR-Net, section 3.4 and figure 3.

    Args:
        relu_features: Stream 1 (ReLU, average pooling) map, ``(b, h, w, c1)``.
        tanh_features: Stream 2 (tanh, max pooling) map, ``(b, h, w, c2)``.
        stage: 1-based stage index, used in layer names.
        bins: ``s_k``, the number of bins of the stage.
        pool_size: Pooling window and stride applied after the 1x1 convs
            (1 for none).
        filters: Filters of the 1x1 convolutions.
        dropout: Dropout rate before the per-stream dense layers.
        stage_activation: ``"relu"`` (reference) or ``"softmax"`` for ``p``.

    Returns:
        Tuple ``(probabilities, scale, shift)`` of shapes ``(b, s_k)``,
        ``(b, 1)`` and ``(b, s_k)``.

    Reference:
        Yang et al., "SSR-Net: A Compact Soft Stagewise Regression Network
        for Age Estimation", IJCAI 2018.
    """
    prefix = f"stage{stage}"

    # === Per-stream reduction ===
    branches = []
    for stream, features, pooling in (
        ("stream1", relu_features, keras.layers.AveragePooling2D),
        ("stream2", tanh_features, keras.layers.MaxPooling2D),
    ):
        x = keras.layers.Conv2D(
            filters, 1, activation="relu", name=f"{prefix}_{stream}_conv"
        )(features)
        if pool_size > 1:
            x = pooling(pool_size, name=f"{prefix}_{stream}_pool")(x)
        branches.append(StaticFlatten(name=f"{prefix}_{stream}_flatten")(x))
    relu_flat, tanh_flat = branches  # (b, g*g*filters) each

    # === Dynamic range: scale factor Delta_k ===
    feature_product = keras.layers.Multiply(name=f"{prefix}_feature_product")(
        [tanh_flat, relu_flat]
    )
    scale = keras.layers.Dense(1, activation="tanh", name=f"{prefix}_scale")(
        feature_product
    )  # (b, 1)

    # === Stage distribution p^(k) and shifts eta^(k) ===
    mapped = []
    for stream, flat in (("stream2", tanh_flat), ("stream1", relu_flat)):
        x = keras.layers.Dropout(dropout, name=f"{prefix}_{stream}_dropout")(flat)
        mapped.append(
            keras.layers.Dense(
                bins, activation="relu", name=f"{prefix}_{stream}_dense"
            )(x)
        )
    fused = keras.layers.Multiply(name=f"{prefix}_fused_product")(mapped)
    fused = keras.layers.Dense(
        2 * bins, activation="relu", name=f"{prefix}_fused_dense"
    )(fused)
    probabilities = keras.layers.Dense(
        bins, activation=stage_activation, name=f"{prefix}_probabilities"
    )(fused)  # (b, s_k)
    shift = keras.layers.Dense(bins, activation="tanh", name=f"{prefix}_shift")(
        fused
    )  # (b, s_k)
    return probabilities, scale, shift
