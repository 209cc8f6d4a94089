"""``python -m hyperdial_server``: the same as ``hyperdial serve``."""

import os
import sys

# One BLAS thread per process: model fits are small, and BLAS threads fighting over a few
# cores (and over the event loop's core) make an ask many times slower. Set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hyperdial_server.cli import main  # noqa: E402

sys.exit(main())
