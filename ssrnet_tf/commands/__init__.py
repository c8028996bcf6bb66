"""Sub-commands of ``ssrnet-tf``: each module has ``add_parser`` and ``run``."""

from ssrnet_tf.commands import bench, demo, evaluate, export, predict, prepare, train, weights

#: Every sub-command module, in ``--help`` order.
COMMANDS = (bench, prepare, train, evaluate, export, predict, demo, weights)
