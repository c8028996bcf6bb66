"""Training of ssrnet_tf models: configs, schedules, resumable runs."""
