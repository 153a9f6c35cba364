"""Local security of the stack (issue 15 item 5): file modes, the admin token, loopback-only binds.

The admin token is proven able to fail both ways: without it (or with a wrong one) every
service answers 403 on ``/_loadcheck/*``; with it, 200. Binds are checked twice: each service's
listening sockets (psutil) are on 127.0.0.1, and a connection to each of the machine's other
addresses on the service's port is refused.
"""

from __future__ import annotations

import socket
import stat
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from loadcheck.core.faults import active_faults
from loadcheck.core.state import ADMIN_TOKEN_HEADER, admin_headers

pytestmark = pytest.mark.integration

SERVICES = ("aws", "search", "lambda", "gateway")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_directory_is_private_and_secret_files_are_0600(local_stack: dict[str, Any]) -> None:
    sd = Path(local_stack["state_dir"])
    assert mode(sd) == 0o700
    for name in ("credentials", "identities.json", "admin-token"):
        assert mode(sd / name) == 0o600, name
    for config in (sd / "services").glob("*.json"):
        assert mode(config) == 0o600, config


def _admin_get(stack: dict[str, Any], service: str, headers: dict[str, str]) -> requests.Response:
    url = stack["services"][service]["url"]
    return requests.get(f"{url}/_loadcheck/faults", headers=headers, verify=stack["ca_bundle"], timeout=10)


@pytest.mark.parametrize("service", SERVICES)
def test_admin_paths_need_the_stacks_token(local_stack: dict[str, Any], service: str) -> None:
    sd = Path(local_stack["state_dir"])
    assert _admin_get(local_stack, service, {}).status_code == 403
    wrong = _admin_get(local_stack, service, {ADMIN_TOKEN_HEADER: "not-the-token"})
    assert wrong.status_code == 403 and ADMIN_TOKEN_HEADER in wrong.text
    url = local_stack["services"][service]["url"]
    refused_post = requests.post(
        f"{url}/_loadcheck/flush", json={}, verify=local_stack["ca_bundle"], timeout=10
    )  # a flush (or a fault) from another local process is refused
    assert refused_post.status_code == 403
    assert _admin_get(local_stack, service, admin_headers(sd)).status_code == 200


def test_active_faults_reads_through_the_token(local_stack: dict[str, Any]) -> None:
    assert active_faults(Path(local_stack["state_dir"])) == {}


def _other_addresses() -> list[tuple[int, str]]:
    out = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                out.append((socket.AF_INET, a.address))
            elif a.family == socket.AF_INET6 and a.address != "::1" and "%" not in a.address:
                out.append((socket.AF_INET6, a.address))
    return out


def test_every_service_listens_on_loopback_only(local_stack: dict[str, Any]) -> None:
    ports = {name: int(svc["url"].rsplit(":", 1)[1]) for name, svc in local_stack["services"].items()}
    pids = {name: int(svc["pid"]) for name, svc in local_stack["services"].items()}
    for name, pid in pids.items():
        proc = psutil.Process(pid)
        listening = [c for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening, name
        assert {c.laddr.ip for c in listening} == {"127.0.0.1"}, (name, listening)
    tried = 0
    for family, address in _other_addresses():
        for name, port in ports.items():
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                assert s.connect_ex((address, port)) != 0, f"{name} answers on {address}:{port}"
                tried += 1
    print(f"\nFIGURE binds: {len(ports)} services, {tried} connection(s) to non-loopback addresses, all refused")
