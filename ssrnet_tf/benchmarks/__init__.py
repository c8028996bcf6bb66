"""Benchmarks that print numbers: how fast training runs on the machine at hand.

:mod:`ssrnet_tf.benchmarks.training_throughput` times the training step of
a named experiment config for every combination of the speed switches
(``ssrnet-tf bench --train CONFIG``).
"""
