"""The run-directory readers the reports use; they are :mod:`loadcheck.core.rundir`'s (the one
owner of run.json, results.json and histograms.json and their versions)."""

from __future__ import annotations

from loadcheck.core.rundir import (
    HISTOGRAMS_FILE,
    RESULTS_FILE,
    RUN_FILE,
    read_histograms,
    read_results,
    read_run,
    run_dir_of,
)

__all__ = ["HISTOGRAMS_FILE", "RESULTS_FILE", "RUN_FILE", "read_histograms", "read_results", "read_run", "run_dir_of"]
