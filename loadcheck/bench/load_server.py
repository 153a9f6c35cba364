"""A small, fast stand-in for the EventLog API, for the load generator's own tests and benchmark.

It is a seam, not an emulation: the real local stack is ``reference_stack/local``. It exists so
the load generator can be tested and measured on its own, as a real process on 127.0.0.1:

- HTTP/1.1 keep-alive on asyncio (fast enough that the client, not the server, is what a
  benchmark measures), optionally HTTPS with a certificate for ``--domain`` from a local CA made
  with trustme (:mod:`reference_stack.local.common.tls`; the CA is written to ``<state>/ca.pem``);
- ``--verify``: checks SigV4 (``execute-api``, ``--region``) with :func:`loadcheck.core.sigv4.verify`
  against keys in ``<state>/credentials.json`` and the Host header against ``--domain``; a bad
  request gets 403 like API Gateway;
- routes: ``POST /events`` (201; 409 for a key seen before; after ``throttle_after`` writes,
  429 with ``Retry-After: 1``), ``GET /events`` (items of a date, paged by ``nextToken``),
  ``GET /search`` and ``POST /search`` (canned), each answer with an ``apigw-requestid``;
- ``POST /_admin/config`` sets ``latency_ms`` and ``throttle_after`` at run time;
  ``GET /_admin/stats`` returns counts per route and status.

Run: ``python -m loadcheck.bench.load_server --state DIR [--tls --domain D] [--verify]``; it
writes ``DIR/ready.json`` ``{"port", "pid"}`` once listening and exits on SIGTERM or when its
parent dies; tests and the benchmark start it with :mod:`reference_stack.local.common.launcher`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as _dt
import http.client
import json
import os
import secrets
import signal
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadcheck.core.sigv4 import SigV4Failure, verify
from loadcheck.core.target import Target
from reference_stack.local.common.contract import write_ready_file
from reference_stack.local.common.launcher import ServiceProcess
from reference_stack.local.common.tls import issue_certificate


class State:
    def __init__(self, *, domain: str | None, region: str, keys: dict[str, tuple[str, str | None]] | None) -> None:
        self.domain = domain
        self.region = region
        self.keys = keys
        self.latency_ms = 0.0
        self.throttle_after: int | None = None
        self.writes = 0
        self.items: dict[str, dict[str, dict[str, Any]]] = {}
        self.stats: dict[str, int] = {}

    def count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1


def _json(status: int, body: Any, extra: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    return status, json.dumps(body, separators=(",", ":")).encode(), dict(extra or {})


def handle(
    state: State, method: str, target: str, headers: list[tuple[str, str]], body: bytes
) -> tuple[int, bytes, dict[str, str]]:
    path, _, query = target.partition("?")
    if path.startswith("/_admin/"):
        if path == "/_admin/config" and method == "POST":
            cfg = json.loads(body or b"{}")
            if "latency_ms" in cfg:
                state.latency_ms = float(cfg["latency_ms"])
            if "throttle_after" in cfg:
                state.throttle_after = cfg["throttle_after"]
            return _json(200, {"latency_ms": state.latency_ms, "throttle_after": state.throttle_after})
        if path == "/_admin/stats":
            return _json(200, {"stats": state.stats, "writes": state.writes})
        return _json(404, {"message": "Not Found"})
    route = f"{method} {path}"
    if state.keys is not None:
        host = next((v for n, v in headers if n.lower() == "host"), "")
        if state.domain and host.split(":")[0] != state.domain:
            state.count("403 host")
            return _json(403, {"message": "Forbidden"})
        try:
            verify(
                method=method,
                raw_path=path,
                raw_query=query,
                headers=headers,
                body=body,
                service="execute-api",
                region=state.region,
                secret_for=state.keys,
                now=_dt.datetime.now(_dt.UTC),
            )
        except SigV4Failure as exc:
            state.count(f"403 {exc.kind}")
            return _json(403, {"message": "Forbidden"})
    state.count(route)
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    if route == "POST /events":
        state.writes += 1
        if state.throttle_after is not None and state.writes > state.throttle_after:
            return _json(429, {"message": "Too Many Requests"}, {"Retry-After": "1"})
        item = json.loads(body)
        part = state.items.setdefault(item["date"], {})
        if item["time"] in part:
            return _json(409, {"message": "An event with this date and time already exists"})
        part[item["time"]] = item
        return _json(201, item)
    if route == "GET /events":
        date = params.get("date")
        items = sorted(state.items.get(date, {}).values(), key=lambda i: i["time"]) if date else []
        start = int(base64.urlsafe_b64decode(params["nextToken"] + "==")) if params.get("nextToken") else 0
        limit = int(params.get("limit", 25))
        page = items[start : start + limit]
        more = start + limit < len(items)
        token = base64.urlsafe_b64encode(str(start + limit).encode()).decode().rstrip("=") if more else None
        return _json(200, {"items": page, "nextToken": token})
    if route == "GET /search":
        return _json(200, {"suggestions": [{"term": params.get("q", "")}]})
    if route == "POST /search":
        return _json(200, {"hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}})
    return _json(404, {"message": "Not Found"})


REASONS = {200: "OK", 201: "Created", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 429: "Too Many Requests"}


class HttpProtocol(asyncio.Protocol):
    def __init__(self, state: State) -> None:
        self.state = state
        self.buf = b""
        self.transport: Any = None
        self.queue: asyncio.Queue[tuple[str, str, list[tuple[str, str]], bytes] | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.task = asyncio.get_running_loop().create_task(self.serve())

    def connection_lost(self, exc: Exception | None) -> None:
        self.queue.put_nowait(None)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            lines = self.buf[:head_end].decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines[1:])]
            length = next((int(v) for n, v in headers if n.lower() == "content-length"), 0)
            if len(self.buf) < head_end + 4 + length:
                return
            body = self.buf[head_end + 4 : head_end + 4 + length]
            self.buf = self.buf[head_end + 4 + length :]
            self.queue.put_nowait((method, target, headers, body))

    async def serve(self) -> None:
        while True:
            req = await self.queue.get()
            if req is None:
                return
            if self.state.latency_ms > 0:
                await asyncio.sleep(self.state.latency_ms / 1000.0)
            try:
                status, body, extra = handle(self.state, *req)
            except Exception as exc:  # noqa: BLE001 - a test server answers 500 and goes on
                status, body, extra = _json(500, {"message": f"{type(exc).__name__}: {exc}"})
            head = [
                f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
                "Content-Type: application/json",
                f"Content-Length: {len(body)}",
                f"apigw-requestid: {secrets.token_urlsafe(10)}",
            ]
            head += [f"{k}: {v}" for k, v in extra.items()]
            if not self.transport.is_closing():
                self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)


async def serve(args: argparse.Namespace) -> None:
    state_dir = Path(args.state)
    state_dir.mkdir(parents=True, exist_ok=True)
    keys = None
    if args.verify:
        creds = json.loads((state_dir / "credentials.json").read_text())
        keys = {c["access_key"]: (c["secret_key"], c.get("token")) for c in creds}
    state = State(domain=args.domain, region=args.region, keys=keys)
    ctx = None
    if args.tls:
        tls = issue_certificate(
            names=[args.domain],
            ca_file=state_dir / "ca.pem",
            cert_file=state_dir / "server.pem",
            key_file=state_dir / "server-key.pem",
        )
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(state), "127.0.0.1", args.port, ssl=ctx, backlog=512)
    port = server.sockets[0].getsockname()[1]
    write_ready_file(state_dir / "ready.json", port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()

    async def watch_parent() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(0.5)
        stop.set()

    watcher = loop.create_task(watch_parent())
    await stop.wait()
    watcher.cancel()
    server.close()


# --------------------------------------------------------------------------------------------
# Starting it from tests and the benchmark

TEST_DOMAIN = "events.loadcheck.test"
TEST_KEYS = {"access_key": "AKIDLOADCHECKTEST", "secret_key": "loadcheck/test/secret", "token": None}


@dataclass
class ServerHandle:
    proc: ServiceProcess
    port: int
    state_dir: Path
    domain: str | None
    tls: bool

    @property
    def ca_bundle(self) -> str | None:
        return str(self.state_dir / "ca.pem") if self.tls else None

    @property
    def url(self) -> str:
        return f"https://{self.domain}:{self.port}" if self.tls else f"http://127.0.0.1:{self.port}"

    def admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.ca_bundle)
            ctx.check_hostname = False  # admin calls go to 127.0.0.1; the certificate is still verified
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=ctx, timeout=10
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(
                "POST" if data is not None else "GET",
                path,
                body=data,
                headers={"Content-Type": "application/json"} if data else {},
            )
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def target(self, *, credentials_file: Path) -> Any:
        """A Target for this server (what ``loadcheck run`` would get from stack.json)."""
        credentials_file.write_text(
            "[loadcheck-requester]\n"
            f"aws_access_key_id = {TEST_KEYS['access_key']}\n"
            f"aws_secret_access_key = {TEST_KEYS['secret_key']}\n"
        )
        return Target(
            kind="local",
            region="us-east-1",
            account_id="123456789012",
            api_id="loadtest",
            domain=self.domain or "127.0.0.1",
            url=self.url,
            connect_address="127.0.0.1",
            connect_port=self.port,
            table_name="EventLog",
            access_log_group="-",
            lambda_log_groups={},
            function_names={},
            search_endpoint=None,
            search_index=None,
            ca_bundle=self.ca_bundle,
            credentials_file=str(credentials_file),
            caller_profile="loadcheck-requester",  # no roles: the load signs with these keys
        )


@contextmanager
def running_server(
    state_dir: Path, *, tls: bool = True, domain: str = TEST_DOMAIN, verify: bool = True, timeout_s: float = 30.0
) -> Iterator[ServerHandle]:
    """Start the server as a child process (own process group); stop it on exit."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "credentials.json").write_text(json.dumps([TEST_KEYS]))
    argv = [sys.executable, "-m", "loadcheck.bench.load_server", "--state", str(state_dir)]
    if tls:
        argv += ["--tls", "--domain", domain]
    if verify:
        argv += ["--verify"]
    proc = ServiceProcess("load test server", argv, ready_file=state_dir / "ready.json")
    try:
        port = proc.launch(timeout_s)
        yield ServerHandle(proc=proc, port=port, state_dir=state_dir, domain=domain if tls else None, tls=tls)
    finally:
        proc.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m loadcheck.bench.load_server")
    p.add_argument("--state", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls", action="store_true")
    p.add_argument("--domain", default=None)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--verify", action="store_true")
    args = p.parse_args(argv)
    if args.tls and not args.domain:
        p.error("--tls needs --domain")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
