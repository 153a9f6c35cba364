"""docs/deploy-aws.md's sequence against a real, deployed stack: corpus load, smoke, a short run.

Runs only with ``LOADCHECK_AWS_TEST=1`` (and ``LOADCHECK_AWS_PROFILE``, the caller's profile):
nothing here can reach AWS, so in ``make test`` it is skipped. The same commands run against the
local stack, through ``loadcheck stack outputs``, in tests/e2e/test_aws_path.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.aws_verified,
    pytest.mark.e2e,
    pytest.mark.skipif(os.environ.get("LOADCHECK_AWS_TEST") != "1", reason="set LOADCHECK_AWS_TEST=1 to run on AWS"),
]

TF_DIR = Path(__file__).resolve().parents[2] / "reference_stack" / "terraform"


def loadcheck(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadcheck", *args], capture_output=True, text=True, timeout=timeout)


def test_the_documented_sequence_on_aws(tmp_path: Path) -> None:
    profile = os.environ.get("LOADCHECK_AWS_PROFILE", "")
    assert profile, "set LOADCHECK_AWS_PROFILE to the caller's profile (docs/deploy-aws.md)"
    target = ["--target", "aws", "--tf-dir", str(TF_DIR), "--profile", profile]
    loaded = loadcheck("corpus", "load", *target)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    smoke = loadcheck("smoke", *target)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    run = loadcheck("run", *target, "--duration", "30s", "--rate", "2", "--out", str(tmp_path / "runs"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "verdict: PASS" in run.stdout
