"""``python -m ssrnet_tf`` runs the ``ssrnet-tf`` command line."""

import sys

from ssrnet_tf.cli import main

sys.exit(main())
