"""The gateway's identity store under concurrent first use: nobody may see it half-loaded."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from loadcheck.core.state import Identity, write_identities
from reference_stack.local.gateway import auth


def test_concurrent_first_requests_all_see_the_loaded_identities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "identities.json"
    write_identities(
        path,
        {
            "requester": Identity(
                name="requester",
                arn="arn:aws:iam::123456789012:user/r",
                principal_arn="arn:aws:iam::123456789012:user/r",
                user_id="AIDA1",
                access_key_id="AKIAREQUESTER",
                secret_access_key="s",
            )
        },
    )
    real_load = auth.load_identities

    def slow_load(p: str):  # type: ignore[no-untyped-def]
        time.sleep(0.2)  # a first load that takes a while, as on a busy host
        return real_load(p)

    monkeypatch.setattr(auth, "load_identities", slow_load)
    store = auth.IdentityStore(str(path))
    seen: list[bool] = []
    barrier = threading.Barrier(6)

    def first_request() -> None:
        barrier.wait()
        by_key, secrets = store.current()
        seen.append("AKIAREQUESTER" in by_key and "AKIAREQUESTER" in secrets)

    threads = [threading.Thread(target=first_request) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [True] * 6
