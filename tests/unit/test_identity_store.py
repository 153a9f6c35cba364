"""The identity store shared by the gateway, search and Lambda services (loadcheck/core/state.py):
reloads identities.json when it changes, never shows a half-loaded set, refuses bad policies."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

from loadcheck.core import state
from loadcheck.core.errors import ConfigError
from loadcheck.core.state import Identity, IdentityStore, write_identities


def _identity(name: str, key: str, policies: list[dict] | None = None) -> Identity:
    return Identity(
        name=name,
        arn=f"arn:aws:iam::123456789012:user/{name}",
        principal_arn=f"arn:aws:iam::123456789012:user/{name}",
        user_id=f"AIDA{name.upper()}",
        access_key_id=key,
        secret_access_key=f"secret-{name}",
        policies=policies or [],
    )


@pytest.fixture
def identities_file(tmp_path: Path) -> Path:
    path = tmp_path / "identities.json"
    write_identities(path, {"requester": _identity("requester", "AKIAREQUESTER")})
    return path


def test_concurrent_first_requests_all_see_the_loaded_identities(
    identities_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_load = state.load_identities_and_roles

    def slow_load(p: str):  # type: ignore[no-untyped-def]
        time.sleep(0.2)  # a first load that takes a while, as on a busy host
        return real_load(p)

    monkeypatch.setattr(state, "load_identities_and_roles", slow_load)
    store = IdentityStore(str(identities_file))
    seen: list[bool] = []
    barrier = threading.Barrier(6)

    def first_request() -> None:
        barrier.wait()
        ids = store.current()
        seen.append("AKIAREQUESTER" in ids.by_key and "AKIAREQUESTER" in ids.secrets)

    threads = [threading.Thread(target=first_request) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [True] * 6


def test_identities_file_is_rechecked_at_most_every_interval(identities_file: Path) -> None:
    now = [0.0]
    store = IdentityStore(str(identities_file), recheck_s=0.5, clock=lambda: now[0])
    assert "AKIAREQUESTER" in store.current().by_key
    write_identities(identities_file, {"new": _identity("new", "AKIANEW")})
    now[0] = 0.4
    assert "AKIAREQUESTER" in store.current().by_key  # not looked at yet
    now[0] = 0.6
    assert set(store.current().by_key) == {"AKIANEW"}


def test_policies_are_parsed_when_the_file_is_loaded(identities_file: Path) -> None:
    allow = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    write_identities(identities_file, {"admin": _identity("admin", "AKIAADMIN", [allow])})
    ids = IdentityStore(identities_file, recheck_s=0).current()
    assert [len(p.statements) for p in ids.policies["admin"]] == [1]


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (None, "does not exist"),
        ("{not json", "is not valid"),
        (
            {
                "identities": {
                    "x": {**_identity("x", "AKIAX").__dict__, "policies": [{"Statement": [{"Effect": "Allow"}]}]}
                }
            },
            "x.policies[0]: Statement[0]: a statement needs exactly one of Action and NotAction",
        ),
    ],
)
def test_a_bad_first_load_is_a_config_error(tmp_path: Path, content: object, named: str) -> None:
    path = tmp_path / "identities.json"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_text(json.dumps(content))
    with pytest.raises(ConfigError) as err:
        IdentityStore(path).current()
    assert named in err.value.message
    assert str(path) in err.value.message
    assert err.value.hint


def test_a_bad_reload_keeps_the_last_good_set_and_says_so(
    identities_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = IdentityStore(identities_file, recheck_s=0)
    assert "AKIAREQUESTER" in store.current().by_key
    bad = {
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Foo": {"aws:SourceIp": "x"}}}]
    }
    write_identities(identities_file, {"new": _identity("new", "AKIANEW", [bad])})
    with caplog.at_level(logging.ERROR, logger="loadcheck.identities"):
        assert set(store.current().by_key) == {"AKIAREQUESTER"}
    assert "condition operator 'Foo'" in caplog.text and "keeping the identities loaded before" in caplog.text
    write_identities(identities_file, {"new": _identity("new", "AKIANEW")})
    assert set(store.current().by_key) == {"AKIANEW"}
