"""Typed configuration of an SSR-Net model."""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

#: Activations accepted for the stage distributions p^(k).
STAGE_ACTIVATIONS = ("relu", "softmax")

#: Number of conv blocks in each of the two streams (fixed by the paper).
NUM_BLOCKS = 4


def _default_stage_levels(num_stages: int) -> Tuple[int, ...]:
    """Stream levels tapped by each stage, deepest first.

    The reference SSR-Net(3,3,3) taps block 4, then block 2, then block 1
    (coarse to fine). One and two stages keep that order's prefix; four
    stages use every block.
    """
    defaults = {1: (4,), 2: (4, 2), 3: (4, 2, 1), 4: (4, 3, 2, 1)}
    if num_stages not in defaults:
        raise ValueError(
            f"stage_levels must be given explicitly for {num_stages} stages "
            "(defaults exist for 1 to 4 stages); e.g. stage_levels=(4, 3, 2, "
            "1, 1)."
        )
    return defaults[num_stages]


@dataclasses.dataclass(frozen=True)
class SSRNetConfig:
    """Hyper-parameters of SSR-Net (Yang et al., IJCAI 2018).

    The defaults are the published SSR-Net(3,3,3) configuration, whose
    weights :func:`ssrnet_tf.pretrained.load_reference_ssrnet` loads.

    Attributes:
        input_shape: ``(height, width, channels)`` of the raw-pixel input.
        stage_bins: ``s_k``, number of bins of each stage; its length is the
            number of stages ``K``.
        lambda_local: Weight of the bin shifts ``eta`` (paper: 1.0).
        lambda_d: Weight of the scale factors ``Delta`` (paper: 1.0).
        age_range: ``V``, width of the age range (101 for ages 0-100).
        stream_widths: Filters of stream 1 (ReLU, average pooling) and
            stream 2 (tanh, max pooling).
        fusion_filters: Filters of the 1x1 convolution in each fusion block.
        dropout: Dropout rate before the fusion dense layers.
        stage_activation: Activation of the stage distributions ``p^(k)``:
            ``"relu"`` (reference, unnormalised) or ``"softmax"``.
        stage_levels: Stream block (1-4) tapped by each stage; ``None`` uses
            the reference order, see ``resolved_stage_levels``.
        min_scale: Floor of ``1 + lambda_d * Delta_k``, the division guard of
            :class:`ssrnet_tf.layers.SoftStagewiseRegression`.
    """

    input_shape: Tuple[int, int, int] = (64, 64, 3)
    stage_bins: Tuple[int, ...] = (3, 3, 3)
    lambda_local: float = 1.0
    lambda_d: float = 1.0
    age_range: float = 101.0
    stream_widths: Tuple[int, int] = (32, 16)
    fusion_filters: int = 10
    dropout: float = 0.2
    stage_activation: str = "relu"
    stage_levels: Optional[Tuple[int, ...]] = None
    min_scale: float = 0.1

    def __post_init__(self):
        # Normalise sequences (YAML and JSON give lists) to tuples.
        for name in ("input_shape", "stage_bins", "stream_widths"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.stage_levels is not None:
            object.__setattr__(self, "stage_levels", tuple(self.stage_levels))
        self.validate()

    @property
    def num_stages(self) -> int:
        """Number of stages ``K``."""
        return len(self.stage_bins)

    @property
    def resolved_stage_levels(self) -> Tuple[int, ...]:
        """The stream block each stage taps, defaults filled in."""
        if self.stage_levels is not None:
            return self.stage_levels
        return _default_stage_levels(self.num_stages)

    def validate(self) -> None:
        """Checks every field.

        Raises:
            ValueError: naming the offending argument and its value.
        """
        if len(self.input_shape) != 3:
            raise ValueError(
                "input_shape must be (height, width, channels), rank 3, got "
                f"{self.input_shape} (rank {len(self.input_shape)})."
            )
        if any(int(d) < 1 for d in self.input_shape):
            raise ValueError(
                f"input_shape dimensions must be >= 1, got {self.input_shape}."
            )
        if self.num_stages < 1:
            raise ValueError("stage_bins must name at least one stage, got ().")
        if any(int(b) < 1 for b in self.stage_bins):
            raise ValueError(
                f"stage_bins must all be >= 1, got {self.stage_bins}."
            )
        if not self.age_range > 0:
            raise ValueError(f"age_range (V) must be > 0, got {self.age_range}.")
        if self.lambda_local < 0:
            raise ValueError(
                f"lambda_local must be >= 0, got {self.lambda_local}."
            )
        if self.lambda_d < 0:
            raise ValueError(f"lambda_d must be >= 0, got {self.lambda_d}.")
        if len(self.stream_widths) != 2 or any(w < 1 for w in self.stream_widths):
            raise ValueError(
                "stream_widths must be two positive filter counts, got "
                f"{self.stream_widths}."
            )
        if self.fusion_filters < 1:
            raise ValueError(
                f"fusion_filters must be >= 1, got {self.fusion_filters}."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        if self.stage_activation not in STAGE_ACTIVATIONS:
            raise ValueError(
                f"stage_activation must be one of {STAGE_ACTIVATIONS}, got "
                f"{self.stage_activation!r}."
            )
        if not self.min_scale > 0:
            raise ValueError(f"min_scale must be > 0, got {self.min_scale}.")
        levels = self.resolved_stage_levels
        if len(levels) != self.num_stages:
            raise ValueError(
                f"stage_levels has {len(levels)} entries but stage_bins has "
                f"{self.num_stages} stages."
            )
        if any(not 1 <= level <= NUM_BLOCKS for level in levels):
            raise ValueError(
                f"stage_levels must lie in 1..{NUM_BLOCKS}, got {levels}."
            )
        # Every stream feature map must stay non-empty.
        for size, name in zip(self.input_shape[:2], ("height", "width")):
            for level, spatial in enumerate(stream_spatial_sizes(size), 1):
                if spatial < 1:
                    raise ValueError(
                        f"input_shape {name} {size} is too small: stream block "
                        f"{level} would have an empty feature map (SSR-Net "
                        "needs at least 46 pixels)."
                    )

    def to_dict(self) -> dict:
        """Plain-Python dict (lists, not tuples) for YAML/JSON."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }


def stream_spatial_sizes(size: int):
    """Spatial size of each stream block's tapped feature map.

    Blocks 1-3 are conv 3x3 'valid' followed by 2x2 pooling; block 4 has no
    pooling. With a 64-pixel input: ``[31, 14, 6, 4]``.

    Args:
        size: Input height or width.

    Returns:
        List of 4 sizes (possibly < 1 when the input is too small).
    """
    sizes = []
    for block in range(1, NUM_BLOCKS + 1):
        size = size - 2
        if block < NUM_BLOCKS:
            size = size // 2
        sizes.append(size)
    return sizes
