"""``POST /events`` end to end through the full local stack, with the CPU split per process.

Starts the local stack from a copy of the stack description whose table is PAY_PER_REQUEST and
whose stage throttle is 10,000 rps (so neither capacity nor a throttle setting is measured),
initialises the events function's environments, then drives signed ``POST /events`` with unique
keys from ``connections`` threads, each holding one keep-alive TLS connection. Reports
requests/s, p50/p90/p99 (HDR, from before signing to the last body byte), statuses, and the CPU
seconds each part used over the measured interval: the gateway, the Lambda service with its
execution environments, the aws endpoint (moto + governor), and this load-generating process.
"""

from __future__ import annotations

import http.client
import json
import ssl
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from hdrh.histogram import HdrHistogram

from loadcheck.bench.client import PinnedHTTPSConnection, summarize
from loadcheck.core.description import DEFAULT_DESCRIPTION
from loadcheck.core.sigv4 import Signer
from loadcheck.core.target import Target
from reference_stack.local import supervisor


def _cpu(procs: list[Any]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:  # noqa: BLE001, S112 - a process that exited has no more CPU to count
            continue
    return total


def run_post_events_bench(*, connections: int = 8, duration_s: float = 10.0, warmup_s: float = 3.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lc-bench-") as tmp:
        desc = json.loads(DEFAULT_DESCRIPTION.read_text())
        desc["table"]["billing_mode"] = "PAY_PER_REQUEST"
        desc["throttle"] = {"rate_limit": 10000, "burst_limit": 5000}
        desc_path = Path(tmp) / "stack.auto.tfvars.json"
        desc_path.write_text(json.dumps(desc))
        state_dir = Path(tmp) / "state"
        stack = supervisor.start_detached(state_dir, description=str(desc_path))
        try:
            target = Target.from_stack_json(stack, state_dir)
            supervisor.prewarm(state_dir, {target.function_names["events"]: connections})
            creds = target.credentials("requester")
            ctx = ssl.create_default_context(cafile=target.ca_bundle)
            signer = Signer("execute-api", target.region)
            host = f"{target.domain}:{target.connect_port}"
            pids = {name: svc["pid"] for name, svc in stack["services"].items()}
            start = time.monotonic()
            measure_from, stop_at = start + warmup_s, start + warmup_s + duration_s
            hists = [HdrHistogram(1, 60_000_000, 3) for _ in range(connections)]
            statuses: list[Counter[int]] = [Counter() for _ in range(connections)]
            errors: list[str] = []

            def worker(i: int) -> None:
                conn = PinnedHTTPSConnection(target.connect_port, ctx, 35, domain=target.domain)
                n = 0
                while (t0 := time.monotonic()) < stop_at:
                    n += 1
                    ms = n % 86_400_000
                    item = {
                        "date": f"{2000 + i:04d}-01-01",
                        "time": f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}",
                        "userId": f"bench-{i}",
                        "eventType": "bench",
                    }
                    body = json.dumps(item).encode()
                    headers = signer.sign(
                        creds, "POST", host, "/events", "", {"content-type": "application/json"}, body
                    )
                    headers["content-type"] = "application/json"
                    try:
                        conn.request("POST", "/events", body=body, headers=headers)
                        resp = conn.getresponse()
                        resp.read()
                    except (OSError, http.client.HTTPException) as exc:
                        errors.append(f"{type(exc).__name__}: {exc}")
                        conn.close()
                        conn = PinnedHTTPSConnection(target.connect_port, ctx, 35, domain=target.domain)
                        continue
                    if t0 >= measure_from:
                        hists[i].record_value(max(1, int((time.monotonic() - t0) * 1_000_000)))
                        statuses[i][resp.status] += 1
                conn.close()

            threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
            for t in threads:
                t.start()
            while time.monotonic() < measure_from:
                time.sleep(0.05)
            lam = psutil.Process(pids["lambda"])
            groups = {
                "gateway": [psutil.Process(pids["gateway"])],
                "lambda service + environments": [lam, *lam.children(recursive=True)],
                "aws endpoint (moto + governor)": [psutil.Process(pids["aws"])],
                "search service": [psutil.Process(pids["search"])],
                "load generator (this process)": [psutil.Process()],
            }
            cpu0 = {k: _cpu(v) for k, v in groups.items()}
            wall0 = time.monotonic()
            for t in threads:
                t.join()
            wall = time.monotonic() - wall0
            groups["lambda service + environments"] = [lam, *lam.children(recursive=True)]
            cpu = {k: round(_cpu(v) - cpu0[k], 2) for k, v in groups.items()}
        finally:
            supervisor.stop_stack(state_dir)
    result = summarize(hists, statuses, errors, wall)
    n = result["requests"]
    cpu_sum = sum(cpu.values()) or 1.0
    return (
        {"route": "POST /events", "connections": connections}
        | result
        | {
            "cpu_s": cpu,
            "cpu_share": {k: round(v / cpu_sum, 3) for k, v in cpu.items()},
            "cpu_ms_per_request": {k: round(1000 * v / n, 2) for k, v in cpu.items()} if n else {},
        }
    )
