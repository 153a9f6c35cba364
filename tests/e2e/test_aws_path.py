"""The AWS code path, whole, against the emulation: ``loadcheck stack outputs`` stands in for
``terraform output -json``, ``loadcheck stack env`` for the user's AWS environment
(``AWS_ENDPOINT_URL``, ``AWS_CA_BUNDLE``, the caller's profile, the custom domain resolved to
loopback), and then the commands docs/deploy-aws.md lists run as a user runs them:
``loadcheck corpus load``, ``loadcheck smoke``, ``loadcheck run --target aws``.

The stack starts without its corpus (``--no-corpus``), as a fresh ``terraform apply`` leaves the
search domain, so the corpus in the run is the one ``loadcheck corpus load`` loaded."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadcheck.core.ledger import read_ledger
from loadcheck.core.target import Target
from reference_stack import corpus
from tests.unit.test_stack_outputs import expected_output_kinds, output_kinds

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

CLI = [sys.executable, "-m", "loadcheck"]
CHECKS = ("dynamodb_contents", "throttling", "access_logs", "security")


def loadcheck(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, start_new_session=True, env=env
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from reference_stack.local import supervisor

    state = tmp_path_factory.mktemp("aws-path") / "state"
    try:
        supervisor.start_detached(state, load_corpus=False)
        yield state
    finally:
        supervisor.stop_stack(state)


@pytest.fixture(scope="module")
def aws(stack: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """(the environment `eval "$(loadcheck stack env)"` gives, the outputs file)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "LOADCHECK_RESOLVE"}
    out = loadcheck("stack", "env", "--state-dir", str(stack), env=base)
    assert out.returncode == 0, out.stderr
    env = dict(base)
    for line in out.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0]
    outputs = loadcheck("stack", "outputs", "--state-dir", str(stack), env=base)
    assert outputs.returncode == 0, outputs.stderr
    path = tmp_path_factory.mktemp("tf") / "outputs.json"
    path.write_text(outputs.stdout)
    return env, path


def _search_admin_client(stack: Path) -> tuple[Any, str]:
    target = Target.from_stack_json(json.loads((stack / "stack.json").read_text()), stack)
    assert target.search_endpoint and target.search_index
    creds = target.role_credentials("search-admin")
    return corpus.signed_client(target.search_endpoint, creds, target.region), target.search_index


def test_a_run_on_the_aws_code_path_passes_every_check(
    stack: Path, aws: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, outputs = aws
    doc = json.loads(outputs.read_text())
    assert output_kinds(doc) == expected_output_kinds()  # exactly outputs.tf's names and types

    client, index = _search_admin_client(stack)
    if client.indices.exists(index=index):  # another test of this module loaded it first
        client.indices.delete(index=index)
    first = loadcheck("corpus", "load", "--target", "aws", "--tf-outputs", str(outputs), env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "as the search-admin role" in first.stdout and "2881/2881 documents" in first.stdout
    assert "created with its mapping, 2881 documents loaded, 0 already present" in first.stdout
    again = loadcheck("corpus", "load", "--target", "aws", "--tf-outputs", str(outputs), env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "all 2881 documents already present; nothing changed" in again.stdout

    runs = tmp_path / "runs"
    run = loadcheck(
        "run", "--target", "aws", "--tf-outputs", str(outputs), "--out", str(runs),
        "--duration", "4s", "--rate", "5", "--mix", "writes=4,reads=1,search=1", "--threshold", "p95<60s",
        env=env, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir() and not d.is_symlink()]
    assert json.loads((run_dir / "run.json").read_text())["target"]["kind"] == "aws"
    results = {c["name"]: c for c in json.loads((run_dir / "results.json").read_text())["checks"]}
    assert {n: results[n]["status"] for n in CHECKS} == dict.fromkeys(CHECKS, "pass"), run.stdout
    probes = {p["probe"]: p for p in results["security"]["evidence"] if "probe" in p and "verdict" in p}
    assert probes["denied"]["verdict"] == "ok" and probes["denied"]["got"].startswith("403")

    ledger = list(read_ledger(run_dir))
    assert ledger and Counter(r["status"] for r in ledger)[403] == 0
    # Who signed the load: the access log's userArn names a session of the requester role.
    logs = Target.from_stack_json(json.loads((stack / "stack.json").read_text()), stack).client("logs")
    group = doc["access_log_group"]["value"]
    load_ids = {r["request_id"] for r in ledger}
    arns = {
        json.loads(e["message"])["userArn"]
        for e in logs.filter_log_events(logGroupName=group)["events"]
        if json.loads(e["message"])["requestId"] in load_ids
    }
    assert len(arns) == 1 and ":assumed-role/loadcheck-requester/loadcheck-requester-" in arns.pop()


def test_smoke_names_a_missing_corpus_and_passes_once_it_is_loaded(
    stack: Path, aws: tuple[dict[str, str], Path]
) -> None:
    env, outputs = aws
    client, index = _search_admin_client(stack)
    if client.indices.exists(index=index):
        client.indices.delete(index=index)  # the seeded cause: corpus not loaded
    smoke = loadcheck("smoke", "--target", "aws", "--tf-outputs", str(outputs), env=env)
    assert smoke.returncode == 1, smoke.stdout + smoke.stderr
    lines = smoke.stdout.splitlines()
    assert [line.split()[:2] for line in lines if line.startswith("  ") and not line.startswith("    ")] == [
        ["ok", "roles"], ["ok", "dns"], ["ok", "write"], ["ok", "read-back"],
        ["FAIL", "search"], ["ok", "denied"], ["ok", "unsigned"],
    ]  # fmt: skip
    assert "fix: corpus not loaded? run `loadcheck corpus load`" in smoke.stdout
    assert lines[-1] == "verdict: FAIL (search)"

    loaded = loadcheck("corpus", "load", "--target", "aws", "--tf-outputs", str(outputs), env=env)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    for args in (["--target", "aws", "--tf-outputs", str(outputs)], ["--state-dir", str(stack)]):
        smoke = loadcheck("smoke", *args, env=env)
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert smoke.stdout.splitlines()[-1] == "verdict: all behave"


@pytest.mark.parametrize(
    ("change", "failed", "fix"),
    [
        ({"LOADCHECK_RESOLVE": None}, "dns", "the custom domain does not resolve yet"),
        ({"AWS_CA_BUNDLE": None}, "write", "the certificate is not valid for events.loadcheck.test yet"),
        ({"AWS_PROFILE": "no-such-profile"}, "roles", "wrong profile? --profile names the caller"),
    ],
)
def test_smoke_names_the_fix_for_each_common_cause(
    aws: tuple[dict[str, str], Path], change: dict[str, str | None], failed: str, fix: str
) -> None:
    env, outputs = aws
    env = {k: v for k, v in env.items() if change.get(k, "") is not None} | {
        k: v for k, v in change.items() if v is not None
    }
    smoke = loadcheck("smoke", "--target", "aws", "--tf-outputs", str(outputs), env=env)
    assert smoke.returncode == 1, smoke.stdout + smoke.stderr
    assert f"FAIL  {failed}" in smoke.stdout and f"fix: {fix}" in smoke.stdout, smoke.stdout
    if failed == "dns":
        # The emulation's domain is the description's .test placeholder: on AWS it would mean the
        # override was never filled in, and smoke says that too.
        assert "FAIL  config" in smoke.stdout and "user.auto.tfvars.json" in smoke.stdout, smoke.stdout
        assert smoke.stdout.splitlines()[-1] == "verdict: FAIL (dns, config)"
    else:
        assert smoke.stdout.splitlines()[-1] == f"verdict: FAIL ({failed})"
