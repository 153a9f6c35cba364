"""The stack changes as a release would, and loadcheck follows without a code change.

A copy of the reference stack gains ``GET /events/{date}`` (handler, description, openapi.yaml),
renames the table's range key ``time`` to ``at``, drops the ``protocol`` access-log field and adds
``$context.integration.latency``. ``loadcheck stack up --description <copy>`` runs it (the copy's
handlers in the local Lambda service, its routes in the gateway), ``loadcheck run --description
<copy> --locustfile <copy>/workload.py`` sends every route and all four checks pass; with the
drop-writes fault ``dynamodb_contents`` fails naming keys of the renamed schema. Nothing under
loadcheck/, checks/, reports/ or locustfiles/ changes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from loadcheck.core.description import load_description
from loadcheck.core.ledger import read_ledger
from loadcheck.core.rundir import read_results

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
HARNESS = ("loadcheck", "checks", "reports", "locustfiles")
NEW_ROUTE = "GET /events/{date}"
CHECKS = ["dynamodb_contents", "throttling", "access_logs", "security"]

# The release's handler change: the new route answers as GET /events?date= does.
HANDLER_RELEASE = '''

_release_handler = handler


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``GET /events/{date}``: the partition of one date, as ``GET /events?date=`` pages it."""
    if event.get("routeKey") == "GET /events/{date}":
        date = (event.get("pathParameters") or {}).get("date", "")
        query = {**(event.get("queryStringParameters") or {}), "date": date}
        event = {**event, "rawPath": "/events", "queryStringParameters": query}
    return _release_handler(event, context)
'''

WORKLOAD = '''"""The release's workload, on loadcheck's public load API alone."""

from locustfiles.api import LoadcheckUser, Write, kind


class ReleaseUser(LoadcheckUser):
    def __init__(self, environment):
        super().__init__(environment)
        self.keys = self.table_keys(hash_key="date", range_key="at")

    @kind(weight=4)
    def writes(self):
        key, collision = self.keys.next_key()
        item = {**key, "userId": f"{self.run_info.run_id}:u{self.user_no}", "eventType": "release"}
        self.send("POST", "POST /events", "/events", json_body=item, write=Write(key, item, collision))

    @kind(weight=2)
    def by_date(self):
        date = self.rng.choice(self.keys.dates)
        self.send("GET", "GET /events/{date}", f"/events/{date}", query=[("limit", "25")])

    @kind(weight=1)
    def reads(self):
        self.send("GET", "GET /events", "/events", query=[("date", self.rng.choice(self.keys.dates))])

    @kind(weight=2)
    def search(self):
        prefix = self.rng.choice(["la", "lo", "th", "ca"])
        if self.rng.random() < 0.5:
            self.send("GET", "GET /search", "/search", query=[("q", prefix), ("size", "5")])
        else:
            body = {"query": {"match_phrase_prefix": {"term": prefix}}, "size": 5}
            self.send("POST", "POST /search", "/search", json_body=body)
'''


def _fingerprint() -> str:
    h = hashlib.sha256()
    for top in HARNESS:
        for p in sorted((REPO / top).rglob("*.py")):
            h.update(str(p.relative_to(REPO)).encode() + p.read_bytes())
    return h.hexdigest()


def release_copy(dest: Path) -> Path:
    """The reference stack, changed as a release would change it; returns the description's path."""
    src = REPO / "reference_stack"
    (dest / "terraform").mkdir(parents=True)
    shutil.copytree(src / "handlers", dest / "handlers", ignore=shutil.ignore_patterns("__pycache__"))
    desc = json.loads((src / "terraform" / "stack.auto.tfvars.json").read_text())
    desc["routes"][NEW_ROUTE] = "events"
    desc["table"]["range_key"] = "at"
    fmt = desc["access_log"]["format"]
    del fmt["protocol"]
    fmt["integrationLatencyMs"] = "$context.integration.latency"
    path = dest / "terraform" / "stack.auto.tfvars.json"
    path.write_text(json.dumps(desc, indent=2))

    handler = dest / "handlers" / "events.py"
    text = handler.read_text().replace('"time"', '"at"').replace("'time'", "'at'")
    handler.write_text(text + HANDLER_RELEASE)

    spec = yaml.safe_load((src / "openapi.yaml").read_text())
    event_input = spec["components"]["schemas"]["EventInput"]
    event_input["properties"]["at"] = event_input["properties"].pop("time")
    event_input["required"] = ["at" if f == "time" else f for f in event_input["required"]]
    event_input.pop("examples", None)
    by_date = json.loads(json.dumps(spec["paths"]["/events"]["get"]))
    by_date["operationId"] = "listEventsOfDate"
    by_date["parameters"] = [
        {"name": "date", "in": "path", "required": True, "schema": {"$ref": "#/components/schemas/Date"}},
        *[p for p in by_date["parameters"] if p["name"] != "date"],
    ]
    spec["paths"]["/events/{date}"] = {"get": by_date}
    (dest / "openapi.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (dest / "workload.py").write_text(WORKLOAD)
    return path


def lc(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadcheck", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
        start_new_session=True,
    )


@pytest.fixture(scope="module")
def changed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(description of the changed copy, state dir of its running local stack)."""
    root = tmp_path_factory.mktemp("release")
    description = release_copy(root / "stack")
    state = root / "state"
    up = lc("stack", "up", "--detach", "--description", str(description), "--state-dir", str(state), cwd=root)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield description, state
    finally:
        lc("stack", "down", "--state-dir", str(state), cwd=root)


def _run(description: Path, state: Path, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    res = lc(
        "run",
        "--description",
        str(description),
        "--locustfile",
        str(description.parents[1] / "workload.py"),
        "--state-dir",
        str(state),
        "--out",
        str(out),
        "--duration",
        "6s",
        "--rate",
        "8",
        "--seed",
        "7",
        "--threshold",
        f"{NEW_ROUTE}:p99<60s",
        *extra,
        cwd=out.parent,
    )
    dirs = [d for d in out.iterdir() if d.is_dir() and not d.is_symlink()] if out.exists() else []
    assert len(dirs) == 1, res.stdout + res.stderr
    return res, dirs[0]


def test_the_copy_is_consistent(tmp_path: Path) -> None:
    """The changed description and openapi.yaml agree on the routes, as the reference's do."""
    desc = load_description(release_copy(tmp_path / "stack"))
    spec = yaml.safe_load((tmp_path / "stack" / "openapi.yaml").read_text())
    methods = {"get", "post", "put", "patch", "delete", "head", "options"}
    assert {f"{m.upper()} {p}" for p, item in spec["paths"].items() for m in item if m in methods} == set(desc.routes)
    assert desc.table.range_key == "at" and NEW_ROUTE in desc.table_routes


def test_a_release_is_load_tested_without_a_code_change(changed_stack: tuple[Path, Path], tmp_path: Path) -> None:
    before = _fingerprint()
    description, state = changed_stack
    res, run_dir = _run(description, state, tmp_path / "runs")
    ledger = list(read_ledger(run_dir))
    routes = Counter(r["route"] for r in ledger)
    assert set(routes) == set(load_description(description).routes), routes
    statuses = Counter((r["route"], r["status"]) for r in ledger)
    assert statuses[(NEW_ROUTE, 200)] == routes[NEW_ROUTE], statuses
    assert all(set(r["item_key"]) == {"date", "at"} for r in ledger if r.get("item_key"))
    doc = read_results(run_dir, required=True)
    assert doc is not None
    checks = {c["name"]: c for c in doc["checks"]}
    assert list(checks) == CHECKS
    assert all(c["status"] == "pass" for c in checks.values()), {
        n: (c["status"], c["summary"]) for n, c in checks.items()
    }
    assert checks["access_logs"]["figures"]["fields"] == 20  # 20 of the reference, one dropped, one added
    run = json.loads((run_dir / "run.json").read_text())
    assert {t["name"] for t in run["thresholds"]} >= {f"{NEW_ROUTE}:p99<60s"}
    assert res.returncode == 0, res.stdout + res.stderr
    assert _fingerprint() == before


def test_drop_writes_fails_naming_keys_of_the_renamed_schema(changed_stack: tuple[Path, Path], tmp_path: Path) -> None:
    description, state = changed_stack
    res, run_dir = _run(description, state, tmp_path / "runs", "--fault", "drop-writes=0.5")
    assert res.returncode == 1, res.stdout + res.stderr
    doc = read_results(run_dir, required=True)
    assert doc is not None
    contents = next(c for c in doc["checks"] if c["name"] == "dynamodb_contents")
    assert contents["status"] == "fail" and contents["figures"]["lost"] > 0, contents
    lost = [e for e in contents["evidence"] if e.get("kind") == "lost"]
    assert lost and all(set(e["item_key"]) == {"date", "at"} for e in lost), lost
