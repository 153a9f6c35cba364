"""The handlers directory deploys as it is: a zip of it must work as a Lambda task root."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

HANDLERS = Path(__file__).resolve().parents[2] / "reference_stack" / "handlers"
LAMBDA_RUNTIME_EXTRAS = {"boto3", "botocore"}  # what the python3.12 runtime adds to the stdlib
MODULES = sorted(p for p in HANDLERS.glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_handlers_import_only_the_stdlib_boto3_and_each_other(path: Path) -> None:
    local = {p.stem for p in MODULES}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [] if node.level else [str(node.module).split(".")[0]]
        else:
            continue
        for name in names:
            assert name in sys.stdlib_module_names or name in LAMBDA_RUNTIME_EXTRAS or name in local, (
                f"{path.name} imports {name}, which the Lambda runtime does not have"
            )


def test_handlers_load_as_top_level_modules_from_the_task_root(tmp_path: Path) -> None:
    """As awslambdaric loads ``events.handler`` with LAMBDA_TASK_ROOT on sys.path."""
    code = (
        "import events, search, json\n"
        "ev = {'version': '2.0', 'rawPath': '/nowhere', 'requestContext': {'http': {'method': 'GET'}}}\n"
        "print(json.loads(events.handler(ev, None)['body'])['message'], search.handler(ev, None)['statusCode'])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}
    env["PYTHONPATH"] = str(HANDLERS)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Not", "Found", "404"]
