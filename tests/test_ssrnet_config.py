"""Validation of SSRNetConfig: bad values name the argument."""

import pytest

from ssrnet_tf.models import SSRNetConfig, build_ssrnet
from ssrnet_tf.models.ssrnet_config import stream_spatial_sizes


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        ({"stage_bins": ()}, "stage_bins"),
        ({"stage_bins": (3, 0, 3)}, "stage_bins"),
        ({"age_range": -1.0}, "age_range"),
        ({"age_range": 0.0}, "age_range"),
        ({"input_shape": (64, 64)}, "input_shape"),
        ({"input_shape": (1, 64, 64, 3)}, "input_shape"),
        ({"input_shape": (32, 32, 3)}, "input_shape"),
        ({"lambda_local": -0.1}, "lambda_local"),
        ({"lambda_d": -1.0}, "lambda_d"),
        ({"dropout": 1.0}, "dropout"),
        ({"stage_activation": "sigmoid"}, "stage_activation"),
        ({"min_scale": 0.0}, "min_scale"),
        ({"stream_widths": (32,)}, "stream_widths"),
        ({"fusion_filters": 0}, "fusion_filters"),
        ({"stage_bins": (3, 3), "stage_levels": (4,)}, "stage_levels"),
        ({"stage_levels": (4, 2, 5)}, "stage_levels"),
        ({"stage_bins": (2,) * 5}, "stage_levels"),
    ],
)
def test_bad_config_raises_value_error_naming_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        SSRNetConfig(**kwargs)


def test_builder_overrides_are_validated():
    with pytest.raises(ValueError, match="stage_bins"):
        build_ssrnet(stage_bins=())


def test_reference_spatial_sizes():
    assert stream_spatial_sizes(64) == [31, 14, 6, 4]


def test_defaults_are_the_reference_and_serialise():
    config = SSRNetConfig()
    assert config.stage_bins == (3, 3, 3)
    assert config.resolved_stage_levels == (4, 2, 1)
    assert SSRNetConfig(**config.to_dict()) == config
    # Lists (as YAML gives them) are accepted and normalised.
    assert SSRNetConfig(stage_bins=[3, 3, 3], input_shape=[64, 64, 3]) == config
