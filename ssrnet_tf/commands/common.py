"""Shared constants of the command-line sub-commands."""

from ssrnet_tf.training.initial_weights import WEIGHTS_DIR_ENV  # noqa: F401 (re-exported)
