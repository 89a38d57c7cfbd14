"""polybot — an automated trading system for Polymarket prediction markets.

Importing the package checks the Python version first, so every script that
imports it says clearly when the interpreter is too old.
"""

import sys

if sys.version_info < (3, 11):  # pragma: no cover - exercised only on old interpreters
    sys.stderr.write(
        "polybot needs Python 3.11 or newer (this is Python %d.%d); install Python 3.11+ and "
        "recreate the virtualenv (python3.11 -m venv .venv).\n" % sys.version_info[:2]
    )
    sys.exit(2)

# One BLAS thread: on a 2-core machine OpenBLAS's threads make the strategies' small
# matrix products ~20x slower. Set before anything imports numpy.
import os as _os

_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
