"""Sub-commands of ``ssrnet-tf``: each module has ``add_parser`` and ``run``."""

from ssrnet_tf.commands import ablate, bench, demo, evaluate, export, predict, prepare, train, weights

#: Every sub-command module, in ``--help`` order.
COMMANDS = (bench, prepare, train, ablate, evaluate, export, predict, demo, weights)
