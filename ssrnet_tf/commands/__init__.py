"""Sub-commands of ``ssrnet-tf``: each module has ``add_parser`` and ``run``."""

from ssrnet_tf.commands import demo, weights

#: Every sub-command module, in ``--help`` order.
COMMANDS = (demo, weights)
