"""``bin/loadcheck``, the one way the README calls the CLI after setup."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "bin" / "loadcheck"


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "loadcheck").exists(), reason="no .venv in this checkout")
def test_the_wrapper_runs_the_venvs_cli_from_any_directory(tmp_path):
    out = subprocess.run([str(WRAPPER), "run", "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: loadcheck run [OPTIONS]")


def test_without_a_venv_the_wrapper_says_to_run_make_setup(tmp_path):
    (tmp_path / "bin").mkdir()
    shutil.copy2(WRAPPER, tmp_path / "bin" / "loadcheck")
    out = subprocess.run([str(tmp_path / "bin" / "loadcheck"), "run"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        f"loadcheck: error: {tmp_path}/.venv/bin/loadcheck does not exist: the virtual environment is not set up",
        f"  fix: run `make setup` in {tmp_path} (needs Python 3.11+ and make; a few minutes)",
    ]
