"""mypy over every package, run as ``make lint`` runs it: this venv's mypy, pyproject.toml's settings.

mypy keeps its cache in ``.mypy_cache`` at the repository root (git-ignored), so after the first
run only changed modules are checked again.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_covers_every_package() -> None:
    """The packages mypy checks are the packages the import contract layers: all of them."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())
    checked = set(settings["tool"]["mypy"]["packages"])
    shipped = set(settings["tool"]["importlinter"]["root_packages"])
    assert checked == shipped, (
        f"[tool.mypy] packages is {sorted(checked)} but the packages are {sorted(shipped)}: "
        f"add {sorted(shipped - checked)} to [tool.mypy] packages in pyproject.toml"
    )


@pytest.mark.slow
def test_mypy_passes() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=280, check=False
    )
    assert proc.returncode == 0, (
        f"mypy exited {proc.returncode}; fix the errors below (or run `make lint`):\n{proc.stdout}{proc.stderr}"
    )
