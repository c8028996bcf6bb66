"""Sub-commands of ``ssrnet-tf``: each module has ``add_parser`` and ``run``."""

from ssrnet_tf.commands import bench, demo, evaluate, export, train, weights

#: Every sub-command module, in ``--help`` order.
COMMANDS = (bench, train, evaluate, export, demo, weights)
