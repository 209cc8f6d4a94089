"""``python -m hyperdial``: the same as the ``hyperdial`` command."""

import sys

from hyperdial.cli import main

sys.exit(main())
