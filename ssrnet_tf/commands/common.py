"""Shared constants of the command-line sub-commands."""

#: Environment variable naming a local folder of published weights files.
WEIGHTS_DIR_ENV = "SSRNET_TF_WEIGHTS_DIR"
