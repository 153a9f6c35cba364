"""The architecture rules of docs/internals.md ("Layers"), checked on the source tree.

- the import contracts of ``pyproject.toml`` (layers; no cycles) hold: ``lint-imports`` passes;
- imports sit at the top of their module: one inside a function is allowed only with a comment
  starting ``# deferred:`` on its line or directly above it, saying why (an optional or heavy
  dependency, or an import that must not run at module load); ``if TYPE_CHECKING:`` blocks are
  exempt;
- the CLI's start-up stays light: ``loadcheck.cli`` does not load what those comments defer;
- no tracked Python file is longer than 600 lines.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("loadcheck", "checks", "reports", "locustfiles", "reference_stack")
DEFERRED = "# deferred:"
MAX_LINES = 600
# Heavy or process-patching dependencies the CLI must not load just to start (`loadcheck --help`).
NOT_AT_CLI_START = ("locust", "gevent", "matplotlib", "moto")


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _function_imports(node: ast.AST, in_function: bool = False) -> list[ast.Import | ast.ImportFrom]:
    """Import statements inside a function or method body, outside ``if TYPE_CHECKING:`` blocks."""
    found: list[ast.Import | ast.ImportFrom] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                found += _function_imports(other, in_function)
            continue
        if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
            found.append(child)
        found += _function_imports(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return found


def _declared_deferred(lines: list[str], lineno: int) -> bool:
    """A ``# deferred:`` comment on the import's first line, or starting the comment block right above it."""
    if DEFERRED in lines[lineno - 1]:
        return True
    above = lineno - 2
    block_start = None
    while above >= 0 and lines[above].lstrip().startswith("#"):
        block_start = above
        above -= 1
    return block_start is not None and lines[block_start].lstrip().startswith(DEFERRED)


def undeclared_function_imports(source: str, filename: str) -> list[str]:
    """``file:line: statement`` for each function-level import without a ``# deferred:`` comment."""
    lines = source.splitlines()
    return [
        f"{filename}:{node.lineno}: {lines[node.lineno - 1].strip()}"
        for node in _function_imports(ast.parse(source, filename=filename))
        if not _declared_deferred(lines, node.lineno)
    ]


def _tracked_python_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked sdist): walk the tree
        skip = {".venv", ".venv-tools", "runs", ".loadcheck", "build", "dist"}
        return [p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts)]
    return [ROOT / name for name in out.split("\0") if name]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), (
        f"{lint_imports} is missing: run `make setup-test` (it installs import-linter with the test extras)"
    )
    proc = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"lint-imports failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"


def test_function_level_imports_say_why_they_are_deferred() -> None:
    problems = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            problems += undeclared_function_imports(path.read_text(encoding="utf-8"), rel)
    assert not problems, (
        "imports inside functions without a `# deferred:` comment (move them to the top of the module, "
        "or say on the line or just above why they must wait):\n" + "\n".join(problems)
    )


def test_the_import_check_finds_what_it_must_and_only_that() -> None:
    source = """
from typing import TYPE_CHECKING

import json

if TYPE_CHECKING:
    from pathlib import Path


def plain():
    import os
    return os


class Thing:
    def method(self):
        if True:
            from collections import deque
        return deque

    def noted(self):
        import csv  # deferred: a reason
        # deferred: a reason given in a comment block
        # that runs over two lines
        import zlib
        return csv, zlib


def nested():
    def inner():
        if TYPE_CHECKING:
            from decimal import Decimal
        # an ordinary comment is not a reason
        import ssl
        return ssl
    return inner
"""
    assert undeclared_function_imports(source, "mod.py") == [
        "mod.py:11: import os",
        "mod.py:18: from collections import deque",
        "mod.py:34: import ssl",
    ]


def test_cli_start_does_not_load_deferred_dependencies() -> None:
    probe = "import sys, loadcheck.cli; print('\\n'.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = sorted(name for name in proc.stdout.split() if name.partition(".")[0] in NOT_AT_CLI_START)
    assert not loaded, f"`loadcheck --help` would import {', '.join(loaded[:10])}: defer them (`# deferred:`)"


def test_no_python_file_is_longer_than_600_lines() -> None:
    too_long = []
    for path in _tracked_python_files():
        if not path.exists():  # deleted in the work tree, not yet in the index
            continue
        count = len(path.read_text(encoding="utf-8").splitlines())
        if count > MAX_LINES:
            too_long.append(f"{path.relative_to(ROOT).as_posix()}: {count} lines")
    assert not too_long, f"files over {MAX_LINES} lines (split them by responsibility):\n" + "\n".join(too_long)
