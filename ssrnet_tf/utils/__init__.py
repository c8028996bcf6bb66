"""Small shared helpers of ssrnet_tf."""
