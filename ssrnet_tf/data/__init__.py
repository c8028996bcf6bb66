"""Datasets and image input of ssrnet_tf."""
