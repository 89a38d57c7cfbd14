#!/usr/bin/env python3
"""Heatmap of the correlation matrix: ``python plot_correlations.py ARGS`` runs ``polybot plot-correlations ARGS``.

The parser, its help text and the code live in the package (``polybot plot-correlations --help``);
this file stays so that every command of the operator's checklist works as written.
"""

from polybot.commands import run_script

if __name__ == "__main__":
    run_script("plot_correlations.py")
