"""`make run` installs loadcheck's main dependencies alone (``pip install -e .``): everything the
packages import must come from them, not from the ``test`` extra.

Every module of loadcheck, checks, reports, locustfiles and reference_stack is imported in a
child process (``locust`` first, as in a load process; the handler-testing kit
``reference_stack.testing`` is the ``testing`` extra's and is left out), and each distribution
that supplied an imported module must be in the closure of loadcheck's requirements without
extras. The Makefile is held to the same split with ``make -n``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("reference_stack.testing",)  # the `testing` extra (pip install 'loadcheck[testing]')

PROBE = """
import locust  # noqa: F401  (gevent patches first, as in a Locust process)
import importlib, json, pkgutil, sys
from importlib.metadata import packages_distributions

skip = tuple(sys.argv[1:])
for top in ("loadcheck", "checks", "reports", "locustfiles", "reference_stack"):
    for info in pkgutil.walk_packages(importlib.import_module(top).__path__, top + "."):
        if not info.name.startswith(skip) and not info.name.endswith("__main__"):
            importlib.import_module(info.name)
by_top = packages_distributions()
print(json.dumps({m: by_top.get(m.split(".")[0], []) for m in sorted(sys.modules)}))
"""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_closure(name: str, extras: frozenset[str] = frozenset(), seen: set[str] | None = None) -> set[str]:
    """Every distribution ``name`` (with ``extras``) needs, transitively, as installed here."""
    seen = set() if seen is None else seen
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        return seen
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
            continue
        key = _norm(req.name) + "[" + ",".join(sorted(req.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        requirement_closure(req.name, frozenset(req.extras), seen)
    return seen


def test_everything_the_packages_import_comes_with_the_main_dependencies():
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *OPTIONAL], capture_output=True, text=True, cwd=ROOT, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    modules: dict[str, list[str]] = json.loads(out.stdout)
    main = {key.split("[")[0] for key in requirement_closure("loadcheck")} | {"loadcheck"}
    assert {"locust", "moto", "rich", "click"} <= main  # the closure was read: this test can fail
    outside: dict[str, str] = {}
    for module, dists in modules.items():
        for dist in dists:
            if _norm(dist) not in main:
                outside.setdefault(dist, module)
    assert not outside, "imported by loadcheck but not among its main dependencies (pyproject.toml " + (
        "[project] dependencies): "
        + "; ".join(f"{d} (module {m})" for d, m in sorted(outside.items()))
        + "; add it there, or import it only where its extra is installed"
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_run_installs_the_package_alone_and_make_test_says_what_it_installs_first(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)

    def dry(target: str) -> list[str]:
        out = subprocess.run(["make", "-n", target], capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    run = dry("run")
    assert any(line.endswith("pip install --quiet -e .") for line in run), run
    assert not any("[test]" in line or "checkov" in line or "chromium" in line for line in run), run
    test = subprocess.run(["make", "test-plan"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert test.returncode == 0, test.stderr
    plan = test.stdout
    assert "test extras" in plan and "checkov" in plan and "chromium" in plan.lower()
    steps = dry("test")
    first_install = next(n for n, line in enumerate(steps) if "pip install" in line or "apt-get" in line)
    assert any("make test: what it needs" in line for line in steps[:first_install]), steps
    assert any("-e '.[test]'" in line for line in steps), steps
