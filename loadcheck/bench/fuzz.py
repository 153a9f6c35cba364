"""``loadcheck bench fuzz``: the long profile of the schema fuzzer (issue 15 item 3).

Runs ``tests/integration/test_schema_fuzz.py`` (schemathesis against openapi.yaml, signed through
the local stack's gateway) with ``$LOADCHECK_FUZZ_EXAMPLES`` examples per operation (default 500
here; ``make test`` runs 25), and reports how long it took and whether it found anything. Needs a
repository checkout (the test module lives under ``tests/``); it starts and stops its own stack.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import click

from loadcheck.core.errors import ConfigError, ExitCode

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "tests" / "integration" / "test_schema_fuzz.py"


@click.command("fuzz")
@click.option("--examples", type=int, default=500, show_default=True, help="generated requests per operation")
def command(examples: int) -> None:
    """Schema fuzzing through the signed gateway, at length."""
    if not MODULE.is_file():
        raise ConfigError(
            f"{MODULE} is not there", value=str(MODULE), hint="run `loadcheck bench fuzz` from a repository checkout"
        )
    env = {**os.environ, "LOADCHECK_FUZZ_EXAMPLES": str(examples)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(MODULE)], cwd=REPO, env=env, check=False
    )
    took = time.monotonic() - started
    verdict = "nothing found" if done.returncode == 0 else "FAILURES (see above)"
    click.echo(f"fuzz: {examples} examples per operation, {took:.0f} s: {verdict}")
    # pytest's own codes onto docs/cli.md's: 1 some test failed, 2 interrupted, else could not run.
    codes = {0: ExitCode.PASSED, 1: ExitCode.CHECK_FAILED, 2: ExitCode.INTERRUPTED}
    sys.exit(codes.get(done.returncode, ExitCode.ERROR))
