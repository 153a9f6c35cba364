"""locustfiles/locust_compat.py: Locust's internals exist on the installed Locust, and the guard
names the supported range and the fix when one is missing.

Importing Locust monkey-patches the process with gevent, so everything that imports it runs in
one child process (as ``locust -f`` would); the stand-in classes are passed to the guard there,
Locust itself is never patched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, socket
from locust import FastHttpUser
from locust.env import Environment
from locust.contrib.fasthttp import FastHttpSession
from locust.runners import WorkerRunner
from geventhttpclient.client import HTTPClientPool

from loadcheck.core.errors import ConfigError
from locustfiles import locust_compat as c

out = {"supported": c.SUPPORTED_LOCUST, "tested": c.TESTED_LOCUST, "installed": c.installed_locust()}

def error_of(fn, *args):
    try:
        fn(*args)
    except ConfigError as exc:
        return {"text": str(exc), "value": exc.value}
    return None

# The real thing: the module imported (so check_locust() passed at import) and passes again.
out["real_check"] = error_of(c.check_locust)
out["real_methods"] = {f"{cls.__name__}.{name}": callable(getattr(cls, name, None)) for cls, name, _ in c.METHODS}

class User(FastHttpUser):  # a session made the way SigV4FastHttpUser gets its own
    host = "https://events.loadcheck.test:8443"

env = Environment(user_classes=[User])
session = User(env).client
send, base_url, fire = c.session_parts(session)
out["session"] = {
    "send_is_locusts": send.__func__ is FastHttpSession._send_request_safe_mode and send.__self__ is session,
    "base_url": base_url,
    "fire_is_request_event": fire == env.events.request.fire,
    "pool": isinstance(c.client_pool(session), HTTPClientPool),
}

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
master = Environment().create_master_runner("127.0.0.1", port)
try:
    out["master"] = {"check": error_of(c.check_master, master), "indexes": c.worker_indexes(master)}
finally:
    master.quit()

# Stand-ins for a Locust that renamed or narrowed what we call.
class RenamedWorkerRunner:
    def _send_stats_now(self): ...

class NarrowSession:
    def _send_request_safe_mode(self, method, url): ...

class SessionWithoutBaseUrl:
    request_event = client = None

out["missing_method"] = error_of(c.check_locust, [(RenamedWorkerRunner, "_send_stats", ())])
out["narrowed_method"] = error_of(c.check_locust, [(NarrowSession, "_send_request_safe_mode", ("payload", "headers"))])
out["missing_attribute"] = error_of(c.session_parts, SessionWithoutBaseUrl())
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def probe() -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_private_methods_exist_on_the_installed_locust(probe):
    assert probe["real_check"] is None
    assert probe["real_methods"] == {
        "FastHttpSession._send_request_safe_mode": True,
        "WorkerRunner._send_stats": True,
    }


def test_a_real_session_gives_its_own_send_url_and_request_event(probe):
    assert probe["session"] == {
        "send_is_locusts": True,
        "base_url": "https://events.loadcheck.test:8443",
        "fire_is_request_event": True,
        "pool": True,
    }


def test_a_real_master_has_worker_indexes(probe):
    assert probe["master"] == {"check": None, "indexes": {}}


def test_the_installed_locust_is_the_tested_one_and_inside_the_supported_range(probe):
    assert probe["installed"] == probe["tested"]
    assert Version(probe["installed"]) in Requirement("locust" + probe["supported"]).specifier


def test_the_supported_range_is_the_one_pyproject_declares(probe):
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (locust,) = [Requirement(d) for d in deps if Requirement(d).name == "locust"]
    assert str(locust.specifier) == str(Requirement("locust" + probe["supported"]).specifier)
    assert Version("3.0") not in locust.specifier  # bounded above


def _assert_names_range_and_fix(error: dict, what: str, probe: dict) -> None:
    assert error is not None, "the guard let an incompatible Locust through"
    text = error["text"]
    assert what in text
    assert f"locust {probe['installed']} is not supported" in text
    assert f"supported: locust{probe['supported']}" in text
    assert f'fix: pin locust: pip install "locust=={probe["tested"]}"' in text
    assert error["value"] == probe["installed"]


def test_a_missing_private_method_stops_with_the_range_and_the_fix(probe):
    _assert_names_range_and_fix(probe["missing_method"], "RenamedWorkerRunner._send_stats() is missing", probe)


def test_a_method_that_no_longer_takes_our_arguments_stops_too(probe):
    _assert_names_range_and_fix(
        probe["narrowed_method"], "NarrowSession._send_request_safe_mode() no longer takes payload, headers", probe
    )


def test_a_session_without_an_attribute_we_read_stops_too(probe):
    _assert_names_range_and_fix(probe["missing_attribute"], "SessionWithoutBaseUrl has no base_url", probe)
