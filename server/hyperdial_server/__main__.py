"""``python -m hyperdial_server``: the same as ``hyperdial serve``."""

import sys

from hyperdial_server.cli import main

sys.exit(main())
