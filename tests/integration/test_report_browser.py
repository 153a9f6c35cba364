"""report.html in headless Chromium: it loads from disk with no network, no console error, and shows
its plots; a full-page screenshot is kept in ``test-artifacts/``.

Chromium is driven over the DevTools protocol (websocket-client): console errors, uncaught
exceptions and every network request are collected while the page loads. A probe page with a
thrown error and a remote image proves the harness sees both (the test can fail).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from loadcheck.bench.synthetic_reports import sample_checks, write_run
from loadcheck.core.state import write_json_atomic
from reports import render_all
from reports.capacity import analyse_steps
from reports.plan import build_plan

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "chromium is not installed: the report browser test needs Debian's `chromium` package "
        "(`apt-get install -y chromium`, or `make browser`); .ci/run installs it"
    )


@dataclass
class PageLoad:
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    svg_count: int = 0
    title: str = ""
    height: int = 0
    screenshot: bytes = b""


class Browser:
    def __init__(self, tmp: Path) -> None:
        self.proc = subprocess.Popen(
            [chromium_path(), *FLAGS, f"--user-data-dir={tmp / 'profile'}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.ws_port = self._devtools_port(tmp / "profile")

    def _devtools_port(self, profile: Path) -> int:
        # Chromium writes the chosen port to DevToolsActivePort in the profile directory.
        deadline = time.monotonic() + 60
        marker = profile / "DevToolsActivePort"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"chromium exited with {self.proc.returncode}: {self.proc.stderr.read()[-2000:]}")
            if marker.is_file():
                text = marker.read_text().split()
                if text:
                    return int(text[0])
            time.sleep(0.05)
        raise AssertionError("chromium did not open its DevTools port within 60 s")

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()

    def load(self, path: Path, *, width: int = 1366) -> PageLoad:
        import websocket

        with urllib.request.urlopen(f"http://127.0.0.1:{self.ws_port}/json/list", timeout=10) as resp:  # noqa: S310
            pages = [p for p in json.load(resp) if p.get("type") == "page"]
        ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60)
        out = PageLoad()
        ids = iter(range(1, 10_000))

        def call(method: str, **params: Any) -> dict[str, Any]:
            mid = next(ids)
            ws.send(json.dumps({"id": mid, "method": method, "params": params}))
            while True:
                msg = json.loads(ws.recv())
                if msg.get("id") == mid:
                    if "error" in msg:
                        raise AssertionError(f"{method}: {msg['error']}")
                    return msg.get("result", {})
                event(msg)

        loaded = []

        def event(msg: dict[str, Any]) -> None:
            method, p = msg.get("method"), msg.get("params", {})
            if method == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.exceptions.append(str((d.get("exception") or {}).get("description") or d.get("text")))
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.console_errors.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", []))
                )
            elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.console_errors.append(
                    f"{p['entry'].get('source')}: {p['entry'].get('text')} {p['entry'].get('url', '')}"
                )
            elif method == "Network.requestWillBeSent":
                out.requests.append(p["request"]["url"])
            elif method == "Page.loadEventFired":
                loaded.append(True)

        try:
            for domain in ("Runtime", "Log", "Network", "Page"):
                call(f"{domain}.enable")
            call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
            call("Page.navigate", url=path.resolve().as_uri())
            deadline = time.monotonic() + 60
            while not loaded and time.monotonic() < deadline:
                event(json.loads(ws.recv()))
            assert loaded, f"{path} did not finish loading within 60 s"
            out.svg_count = call("Runtime.evaluate", expression="document.querySelectorAll('svg').length")["result"][
                "value"
            ]
            out.title = call("Runtime.evaluate", expression="document.title")["result"]["value"]
            metrics = call("Page.getLayoutMetrics")
            out.height = int(metrics["cssContentSize"]["height"])
            call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=min(out.height, 16000),
                deviceScaleFactor=1,
                mobile=False,
            )
            shot = call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            out.screenshot = base64.b64decode(shot["data"])
        finally:
            ws.close()
        return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(tmp_path_factory.mktemp("chromium"))
    try:
        yield b
    finally:
        b.close()


def _report_with_plan(tmp: Path) -> Path:
    run = write_run(tmp / "report-run", checks=sample_checks(failing=True), seconds=60, rate=12)
    steps = write_run(
        tmp / "step-run",
        steps=[0.5, 1, 2, 4],
        step_duration_s=15,
        mix={"writes": 3, "reads": 1, "search": 1},
        burst_s=0,
        checks=None,
    )
    plan = build_plan(
        run_dir=steps,
        knees=analyse_steps(steps, slos={"GET /search": 200.0}, provisioned_wcu=1.0),
        target_rate=50,
        mix={"writes": 8, "reads": 1, "search": 1},
        region="us-east-1",
        provisioned={"wcu": 1.0, "billing_mode": "PROVISIONED"},
    )
    write_json_atomic(run / "capacity.json", plan)
    render_all(run)
    return run / "report.html"


def test_report_renders_in_chromium_without_errors_or_network(browser: Browser, tmp_path: Path) -> None:
    report = _report_with_plan(tmp_path)
    page = browser.load(report)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report.png").write_bytes(page.screenshot)
    shutil.copy(report, ARTIFACTS / "report.html")
    assert page.exceptions == [] and page.console_errors == []
    remote = [u for u in page.requests if not u.startswith(("file:", "data:", "about:"))]
    assert remote == [], "the report must not touch the network"
    assert page.title.startswith("loadcheck ") and page.title.endswith("FAIL")
    # 5 run plots + 3 knee plots (POST /events, GET /events, GET /search) + the bill and the limits
    assert page.svg_count == 10
    assert page.screenshot[:8] == b"\x89PNG\r\n\x1a\n" and page.height > 2000


def test_harness_catches_errors_and_network(browser: Browser, tmp_path: Path) -> None:
    probe = tmp_path / "probe.html"
    probe.write_text(
        "<html><head><title>probe</title></head><body><svg></svg>"
        '<img src="http://127.0.0.1:9/x.png"><script>console.error("bad thing");'
        'throw new Error("boom")</script></body></html>'
    )
    page = browser.load(probe)
    assert any("boom" in e for e in page.exceptions)
    assert any("bad thing" in e for e in page.console_errors)
    assert any(re.match(r"http://127\.0\.0\.1:9/", u) for u in page.requests)
