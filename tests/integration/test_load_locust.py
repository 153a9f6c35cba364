"""The load generator as real processes: Locust (one process, or master + workers) against a real
HTTPS server on 127.0.0.1 that verifies SigV4 and the Host header (loadcheck.bench.load_server,
a seam standing in for the gateway). Runs are a few seconds long and loopback only."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from loadcheck.bench.load_server import TEST_KEYS, running_server
from loadcheck.commands.run_steps import locust_commands
from loadcheck.core import histograms
from loadcheck.core.ledger import read_ledger
from loadcheck.core.runconfig import LoadConfig, RunOptions

pytestmark = pytest.mark.integration

EVENTLOG = Path(__file__).resolve().parents[2] / "locustfiles" / "eventlog.py"


@pytest.fixture
def server(tmp_path):
    with running_server(tmp_path / "server") as handle:
        yield handle


def write_config(tmp_path: Path, server, options: RunOptions, run_id: str = "testrun") -> tuple[Path, Path]:
    run_dir = tmp_path / "run"
    target = server.target(credentials_file=tmp_path / "credentials")
    cfg = tmp_path / "loadconfig.json"
    cfg.write_text(
        LoadConfig(run_id=run_id, run_dir=str(run_dir), options=options, target=target.to_public()).to_json()
    )
    return cfg, run_dir


def popen(argv: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as fh:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def run_procs(cmds: dict, run_dir: Path, timeout_s: float = 90.0) -> list[int]:
    """Start the main process and workers (each in its own group) and wait; always clean up."""
    run_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        procs.append(popen(cmds["main"], run_dir / "main.log"))
        for i, argv in enumerate(cmds["workers"]):
            procs.append(popen(argv, run_dir / f"w{i}.log"))
        return [p.wait(timeout_s) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def ledger_route_counts(run_dir: Path) -> Counter:
    return Counter(r["route"] for r in read_ledger(run_dir))


def test_single_process_ledger_matches_locust_counts(tmp_path, server):
    opts = RunOptions(rate=20, duration_s=4, collisions=0.2, mix={"writes": 5, "reads": 3, "search": 2}, seed=7)
    cfg, run_dir = write_config(tmp_path, server, opts)
    codes = run_procs(locust_commands(opts, cfg_path=cfg, run_dir=run_dir, url=server.url, master_port=0), run_dir)
    # 0 although the forced 409s are failures: Locust runs with --exit-code-on-error 0 (the checks judge requests)
    assert codes[0] == 0, (run_dir / "main.log").read_text()[-3000:]

    loadgen = json.loads((run_dir / "loadgen.json").read_text())
    locust_routes = {r: v["requests"] for r, v in loadgen["locust"]["routes"].items()}
    ledger = list(read_ledger(run_dir))
    assert ledger, "no ledger records"
    assert dict(Counter(r["route"] for r in ledger)) == locust_routes
    assert loadgen["locust"]["total"]["requests"] == len(ledger) == loadgen["ledger_records"]

    statuses = Counter(r["status"] for r in ledger)
    assert statuses[403] == 0, "the server refused a signature"
    writes = [r for r in ledger if r["route"] == "POST /events"]
    assert all(
        r["item_digest"] and r["item_key"] == {"date": r["item"]["date"], "time": r["item"]["time"]} for r in writes
    )
    fresh = [r for r in writes if not r.get("collision")]
    assert len({(r["item_key"]["date"], r["item_key"]["time"]) for r in fresh}) == len(fresh), "keys are not unique"
    assert all(r["status"] == 409 for r in writes if r.get("collision")), "a forced collision was not refused"
    assert any(r.get("collision") for r in writes)
    failures = {(f["route"], f["error"]) for f in loadgen["locust"]["failures"]}
    assert ("POST /events", "409 Conflict") in failures
    assert all(r["request_id"] for r in ledger if r["status"])
    assert [r["seq"] for r in ledger] == list(range(len(ledger)))

    hist = histograms.load(run_dir)
    assert sum(h.get_total_count() for h in hist.routes.values()) == len(ledger)
    per_interval = sum(histograms.decode(t).get_total_count() for i in hist.intervals.values() for t in i.values())
    assert per_interval == len(ledger)


def test_workers_merge_to_the_same_totals_on_the_master(tmp_path, server):
    opts = RunOptions(rate=20, duration_s=4, workers=2, seed=3)
    cfg, run_dir = write_config(tmp_path, server, opts)
    from loadcheck.commands.run_steps import free_port

    cmds = locust_commands(opts, cfg_path=cfg, run_dir=run_dir, url=server.url, master_port=free_port())
    assert len(cmds["workers"]) == 2
    codes = run_procs(cmds, run_dir)
    assert codes == [0, 0, 0], (run_dir / "main.log").read_text()[-3000:]  # master and both workers ran to the end

    loadgen = json.loads((run_dir / "loadgen.json").read_text())
    ledger = list(read_ledger(run_dir))
    assert sorted(p.name.split("-")[0] for p in (run_dir / "ledger").glob("*.jsonl.gz")) == ["w0", "w1"]
    assert set(loadgen["workers"]) == {"w0", "w1"}
    assert all(w["final"] and w["records"] > 0 for w in loadgen["workers"].values())
    assert sum(w["records"] for w in loadgen["workers"].values()) == len(ledger)
    locust_routes = {r: v["requests"] for r, v in loadgen["locust"]["routes"].items()}
    assert dict(Counter(r["route"] for r in ledger)) == locust_routes
    hist = histograms.load(run_dir)
    assert sum(h.get_total_count() for h in hist.routes.values()) == len(ledger)
    # Each worker sent half the rate; together they hold the asked rate.
    span = (max(r["t_intended_ms"] for r in ledger) - min(r["t_intended_ms"] for r in ledger)) / 1000.0
    assert len(ledger) / (span + 1.0 / opts.rate) == pytest.approx(opts.rate, rel=0.1)


def test_constant_rate_holds_while_latency_rises(tmp_path, server):
    opts = RunOptions(rate=25, duration_s=8, mix={"writes": 1, "reads": 1, "search": 1}, seed=1)
    cfg, run_dir = write_config(tmp_path, server, opts)
    cmds = locust_commands(opts, cfg_path=cfg, run_dir=run_dir, url=server.url, master_port=0)
    run_dir.mkdir(parents=True)
    proc = popen(cmds["main"], run_dir / "main.log")
    try:
        deadline = time.monotonic() + 30
        while True:  # poll until the run is 3 s in, then slow the server down
            progress = _read(run_dir / "progress.json")
            if progress.get("elapsed_s", 0) >= 3 and progress.get("requests", 0) > 0:
                break
            assert time.monotonic() < deadline and proc.poll() is None, "the run did not start"
            time.sleep(0.1)
        server.admin("/_admin/config", {"latency_ms": 250})
        switched_at_ms = time.time() * 1000.0
        assert proc.wait(60) in (0, 1), (run_dir / "main.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    ledger = list(read_ledger(run_dir))
    t0 = min(r["t_intended_ms"] for r in ledger)
    full = [r for r in ledger if r["t_intended_ms"] < t0 + 7000]  # 7 whole seconds of schedule
    assert len(full) / 7.0 == pytest.approx(opts.rate, rel=0.05)
    before = sorted(r["latency_ms"] for r in ledger if r["t_intended_ms"] < switched_at_ms - 200)
    after = sorted(r["latency_ms"] for r in ledger if r["t_intended_ms"] > switched_at_ms + 200)
    assert before and after
    # The server adds 250 ms to every answer after the switch: latency rose, the rate did not move.
    assert after[len(after) // 2] >= 250
    assert after[len(after) // 2] > before[len(before) // 2]
    loadgen = json.loads((run_dir / "loadgen.json").read_text())
    assert loadgen["dropped_arrivals"] == 0


def test_arrivals_without_a_free_user_are_counted_dropped(tmp_path, server):
    server.admin("/_admin/config", {"latency_ms": 500})
    opts = RunOptions(rate=20, duration_s=3, users=2, seed=1)  # 2 users x 2 req/s each << 20 req/s
    cfg, run_dir = write_config(tmp_path, server, opts)
    codes = run_procs(locust_commands(opts, cfg_path=cfg, run_dir=run_dir, url=server.url, master_port=0), run_dir)
    assert codes[0] == 0
    loadgen = json.loads((run_dir / "loadgen.json").read_text())
    sent = loadgen["ledger_records"]
    assert loadgen["dropped_arrivals"] > 20
    assert sent + loadgen["dropped_arrivals"] == pytest.approx(20 * 3, abs=6)


def test_plain_locust_f_with_resolve_and_credential_chain(tmp_path, server):
    run_dir = tmp_path / "plain"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": TEST_KEYS["access_key"],
        "AWS_SECRET_ACCESS_KEY": TEST_KEYS["secret_key"],
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(EVENTLOG),
        "--headless",
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "3s",
        "--host",
        server.url,
        "--resolve",
        f"{server.domain}:{server.port}:127.0.0.1",
        "--ca-bundle",
        server.ca_bundle,
        "--region",
        "us-east-1",
        "--run-dir",
        str(run_dir),
        "--run-id",
        "plain1",
        "--think-time",
        "0.05-0.1",
        "--only-summary",
    ]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, start_new_session=True)
    assert out.returncode == 0, out.stderr[-3000:]
    ledger = list(read_ledger(run_dir))
    assert ledger and {r["run_id"] for r in ledger} == {"plain1"}
    assert Counter(r["status"] for r in ledger).keys() <= {200, 201}, Counter(r["status"] for r in ledger)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["locust"]["total"]["requests"] == len(ledger)


def test_wrong_ca_bundle_is_a_tls_error_in_the_ledger(tmp_path, server):
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    opts = RunOptions(rate=10, duration_s=2, seed=1)
    cfg, run_dir = write_config(tmp_path, server, opts)
    data = json.loads(cfg.read_text())
    data["target"]["ca_bundle"] = str(other)
    cfg.write_text(json.dumps(data))
    codes = run_procs(locust_commands(opts, cfg_path=cfg, run_dir=run_dir, url=server.url, master_port=0), run_dir)
    assert codes[0] == 0  # every request failed, yet Locust ran to the end: the ledger, not the status, says so
    ledger = list(read_ledger(run_dir))
    assert ledger and all(r["status"] == 0 and r["error"] == "tls" for r in ledger)
    assert server.admin("/_admin/stats")["writes"] == 0


def test_wrong_secret_is_refused_by_the_verifier(tmp_path, server):
    opts = RunOptions(rate=10, duration_s=2, seed=1)
    cfg, run_dir = write_config(tmp_path, server, opts)
    creds = tmp_path / "credentials"
    creds.write_text(creds.read_text().replace(TEST_KEYS["secret_key"], "not-the-secret"))
    run_procs(locust_commands(opts, cfg_path=cfg, run_dir=run_dir, url=server.url, master_port=0), run_dir)
    ledger = list(read_ledger(run_dir))
    assert ledger and all(r["status"] == 403 for r in ledger)


def test_a_killed_run_keeps_its_ledger(tmp_path, server):
    opts = RunOptions(rate=40, duration_s=60, seed=1)
    cfg, run_dir = write_config(tmp_path, server, opts)
    cmds = locust_commands(opts, cfg_path=cfg, run_dir=run_dir, url=server.url, master_port=0)
    run_dir.mkdir(parents=True)
    proc = popen(cmds["main"], run_dir / "main.log")
    try:
        deadline = time.monotonic() + 30
        while _read(run_dir / "progress.json").get("requests", 0) < 60:
            assert time.monotonic() < deadline and proc.poll() is None, "no batch was written"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    ledger = list(read_ledger(run_dir))
    assert len(ledger) >= 60
    assert [r["seq"] for r in ledger] == list(range(len(ledger)))
    # The cut-off stream still decompresses up to its last flushed batch.
    with gzip.open(next((run_dir / "ledger").glob("*.jsonl.gz")), "rb") as fh, pytest.raises(EOFError):
        fh.read()


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def test_options_reach_workers_from_the_master(tmp_path, server):
    """A worker started with another config still uses the master's run id and options."""
    opts = RunOptions(rate=10, duration_s=3, workers=1, mix={"writes": 1, "reads": 0, "search": 0}, seed=5)
    cfg, run_dir = write_config(tmp_path, server, opts, run_id="master-run")
    other = dataclasses.replace(opts, mix={"writes": 0, "reads": 0, "search": 1})
    wcfg, _ = (
        write_config(tmp_path / "w", server, other, run_id="worker-own")
        if (tmp_path / "w").mkdir() is None
        else (None, None)
    )
    from loadcheck.commands.run_steps import free_port

    port = free_port()
    cmds = locust_commands(opts, cfg_path=cfg, run_dir=run_dir, url=server.url, master_port=port)
    cmds["workers"] = [[a if a != str(cfg) else str(wcfg) for a in cmds["workers"][0]]]
    run_procs(cmds, run_dir)
    ledger = list(read_ledger(run_dir))
    assert ledger and {r["run_id"] for r in ledger} == {"master-run"}
    assert {r["route"] for r in ledger} == {"POST /events"}


def test_a_worker_that_dies_is_reported_with_what_it_sent(tmp_path, server):
    from loadcheck.commands.run_steps import free_port

    opts = RunOptions(rate=20, duration_s=8, workers=2, seed=2)
    cfg, run_dir = write_config(tmp_path, server, opts)
    cmds = locust_commands(opts, cfg_path=cfg, run_dir=run_dir, url=server.url, master_port=free_port())
    run_dir.mkdir(parents=True)
    main = popen(cmds["main"], run_dir / "main.log")
    workers = [popen(argv, run_dir / f"w{i}.log") for i, argv in enumerate(cmds["workers"])]
    try:
        deadline = time.monotonic() + 60
        while True:  # both workers have shipped batches, each with its whole pool of users
            progress = _read(run_dir / "progress.json")
            users = progress.get("users") or {}
            if progress.get("requests", 0) >= 30 and users.get("pool") == opts.pool_size():
                break
            assert time.monotonic() < deadline and main.poll() is None, f"the run did not start: {progress}"
            time.sleep(0.1)
        # progress.json sums the pools the workers report; busy = users not waiting for an arrival.
        assert 0 <= users["busy"] <= users["pool"], users
        os.killpg(workers[1].pid, signal.SIGKILL)
        assert main.wait(90) in (0, 1), (run_dir / "main.log").read_text()[-3000:]
    finally:
        for p in (main, *workers):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    loadgen = json.loads((run_dir / "loadgen.json").read_text())
    ledger = list(read_ledger(run_dir))
    assert set(loadgen["workers"]) == {"w0", "w1"}
    complete = {name: w["complete"] for name, w in loadgen["workers"].items()}
    assert sorted(complete.values()) == [False, True], loadgen["workers"]
    dead = next(w for w in loadgen["workers"].values() if not w["complete"])
    assert dead["records"] > 0
    assert sum(w["records"] for w in loadgen["workers"].values()) == len(ledger)


def test_step_shape_changes_the_rate_per_step(tmp_path, server):
    opts = RunOptions(shape="step", rate=None, steps=(5, 15), step_duration_s=3, seed=4)
    cfg, run_dir = write_config(tmp_path, server, opts)
    codes = run_procs(locust_commands(opts, cfg_path=cfg, run_dir=run_dir, url=server.url, master_port=0), run_dir)
    assert codes[0] in (0, 1), (run_dir / "main.log").read_text()[-3000:]
    ledger = list(read_ledger(run_dir))
    t0 = min(r["t_intended_ms"] for r in ledger)
    per_step = Counter(int((r["t_intended_ms"] - t0) // 3000) for r in ledger)
    assert per_step == {0: 15, 1: 45}


SEND_SCRIPT = r"""
import json, sys
from urllib.parse import urlsplit

from locust.env import Environment

from loadcheck.core.sigv4 import Credentials
from locustfiles.resolve import Resolve
from locustfiles.signing import CredentialSource, SigningContext
from locustfiles.sigv4user import SigV4FastHttpUser

url, connect_port, ca_bundle, key, secret = sys.argv[1:6]
parts = urlsplit(url)


class User(SigV4FastHttpUser):
    pass


env = Environment(user_classes=[User])
env.loadcheck_signing = SigningContext(
    url=url,
    region="us-east-1",
    credentials=CredentialSource(static=Credentials(key, secret)),
    ca_bundle=ca_bundle,
    resolves={(parts.hostname, parts.port): Resolve(parts.hostname, parts.port, "127.0.0.1", int(connect_port))},
)
events = []
env.events.request.add_listener(lambda **kw: events.append(kw))
user = User(env)
item = {"date": "2100-01-01", "time": "00:00:00.000", "userId": "u", "eventType": "t"}
user.signed_request("GET", "GET /events", "/events", query=[("date", "2100-01-01")])
user.signed_request("POST", "POST /events", "/events", body=json.dumps(item).encode(), meta={"item": item})
out = [
    {
        "status": ev["response"].status_code,
        "exception": str(ev["exception"]) if ev["exception"] else None,
        "route": ev["context"]["loadcheck"]["route"],
        "accept": ev["response"].request.headers.get("Accept-Encoding"),
        "host_sent": user._send_host,
    }
    for ev in events
]
print(json.dumps(out))
"""


@pytest.mark.parametrize("url_port,host_sent", [(None, False), (80, True)], ids=["server-port", "explicit-80"])
@pytest.mark.parametrize("throttled", [False, True], ids=["created", "throttled"])
def test_signed_request_verifies_reports_by_status_and_sends_host_only_when_needed(
    tmp_path, server, url_port, host_sent, throttled
):
    """A real SigV4FastHttpUser on real Locust against the verifying server (SigV4 and Host).

    ``https://domain:80`` is signed for ``domain:80`` while geventhttpclient would write plain
    ``domain`` for port 80: the user must send Host itself there, and only there (the server
    answers 403 to a Host that differs from the signed one).
    """
    if throttled:
        server.admin("/_admin/config", {"throttle_after": 0})
    url = f"https://{server.domain}:{url_port or server.port}"
    argv = [sys.executable, "-c", SEND_SCRIPT, url, str(server.port), server.ca_bundle]
    out = subprocess.run(
        [*argv, TEST_KEYS["access_key"], TEST_KEYS["secret_key"]], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-3000:]
    sent = json.loads(out.stdout.strip().splitlines()[-1])
    assert [s["route"] for s in sent] == ["GET /events", "POST /events"]
    assert [(s["status"], s["exception"]) for s in sent] == [
        (200, None),
        (429, "429 Too Many Requests") if throttled else (201, None),
    ]
    assert all(s["host_sent"] is host_sent for s in sent)
    assert all(s["accept"] == "gzip, deflate, br" for s in sent)  # as FastHttpSession.request sends it
    stats = server.admin("/_admin/stats")["stats"]
    assert not [k for k in stats if k.startswith("403")], stats  # signature and Host verified
    assert stats["GET /events"] == 1 and stats["POST /events"] == 1
