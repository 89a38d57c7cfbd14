"""polybot — an automated trading system for Polymarket prediction markets.

Importing the package has no side effects: no exit, no change to ``os.environ``. What a process
needs before it runs (the Python version check, one BLAS thread) is done by the command entry
points, :func:`polybot.commands.prepare_process` (``polybot COMMAND``, ``python SCRIPT.py``,
``python -m polybot``). The commands and their scripts: docs/dev/commands.md.
"""

__version__ = "0.1.0"
