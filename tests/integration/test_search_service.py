"""The search service as a real process on 127.0.0.1, over HTTP, with real SigV4 clients."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.credentials import Credentials
from opensearchpy import (
    AuthorizationException,
    AWSV4SignerAuth,
    NotFoundError,
    OpenSearch,
    RequestError,
    RequestsHttpConnection,
    helpers,
)
from requests_aws4auth import AWS4Auth

from loadcheck.core.state import Identity, write_identities

pytestmark = pytest.mark.integration

ACCT = "123456789012"
REGION = "us-east-1"
DOMAIN_ARN = f"arn:aws:es:{REGION}:{ACCT}:domain/loadcheck-search"
ROLE_ARN = f"arn:aws:iam::{ACCT}:role/loadcheck-search-role"
REPO = Path(__file__).resolve().parents[2]
MAPPING = {
    "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}},
    "mappings": {
        "properties": {
            "term": {"type": "search_as_you_type"},
            "popularity": {"type": "integer"},
            "category": {"type": "keyword"},
            "suggest": {"type": "completion"},
        }
    },
}
TERMS = [
    ("new york", 90, "city"),
    ("new york city hotels", 40, "travel"),
    ("newark airport", 30, "travel"),
    ("the new yorker", 20, "media"),
    ("york minster", 10, "church"),
    ("apple pie", 50, "food"),
    ("apple", 80, "food"),
    ("pineapple", 5, "food"),
    ("application form", 15, "office"),
    ("big apple", 60, "city"),
]
SAYT = ["term", "term._2gram", "term._3gram"]


def make_identities(path: Path) -> dict[str, Identity]:
    ids = {
        "admin": Identity(
            name="admin",
            arn=f"arn:aws:iam::{ACCT}:user/loadcheck-admin",
            principal_arn=f"arn:aws:iam::{ACCT}:user/loadcheck-admin",
            user_id="AIDAADMINX",
            access_key_id="AKIAADMINTEST0001",
            secret_access_key="admin-secret-key",  # noqa: S106 - a test key
            policies=[{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}],
        ),
        "requester": Identity(
            name="requester",
            arn=f"arn:aws:iam::{ACCT}:user/loadcheck-requester",
            principal_arn=f"arn:aws:iam::{ACCT}:user/loadcheck-requester",
            user_id="AIDAREQX",
            access_key_id="AKIAREQTEST000001",
            secret_access_key="requester-secret-key",  # noqa: S106 - a test key
            policies=[
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "execute-api:Invoke",
                            "Resource": f"arn:aws:execute-api:{REGION}:{ACCT}:abc123/$default/GET/search",
                        }
                    ],
                }
            ],
        ),
        "search-role": Identity(
            name="search-role",
            arn=f"arn:aws:sts::{ACCT}:assumed-role/loadcheck-search-role/loadcheck-search",
            principal_arn=ROLE_ARN,
            user_id="AROASEARCHX:loadcheck-search",
            access_key_id="ASIASEARCHTEST001",
            secret_access_key="search-role-secret",  # noqa: S106 - a test key
            session_token="session-token-search",  # noqa: S106 - a test key
        ),
    }
    write_identities(path, ids, ACCT)
    return ids


def write_config(tmp: Path, **extra: Any) -> Path:
    config = {
        "service": "search",
        "host": "127.0.0.1",
        "port": 0,
        "ready_file": str(tmp / "search.ready"),
        "parent_pid": os.getpid(),
        "region": REGION,
        "account_id": ACCT,
        "identities_file": str(tmp / "identities.json"),
        "faults": {},
        "log_level": "INFO",
        "domain_arn": DOMAIN_ARN,
        "data_dir": str(tmp / "data"),
        "access_policy": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [ROLE_ARN]},
                    "Action": "es:ESHttp*",
                    "Resource": f"{DOMAIN_ARN}/*",
                }
            ],
        },
        **extra,
    }
    path = tmp / "search.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def start(config: Path) -> subprocess.Popen[bytes]:
    ready = Path(json.loads(config.read_text())["ready_file"])
    ready.unlink(missing_ok=True)
    log = open(config.parent / "search.log", "ab")  # noqa: SIM115 (the process owns it)
    return subprocess.Popen(
        [sys.executable, "-m", "reference_stack.local.search", "--config", str(config)],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(config: Path, process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    ready = Path(json.loads(config.read_text())["ready_file"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"search exited with {process.returncode}: {(config.parent / 'search.log').read_text()[-2000:]}"
            )
        if ready.exists():
            return int(json.loads(ready.read_text())["port"])
        time.sleep(0.05)
    raise AssertionError("search service did not become ready in time")


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise AssertionError("search did not exit within 10 s of SIGTERM") from None
    return process.returncode


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("search")
    ids = make_identities(tmp / "identities.json")
    config = write_config(tmp)
    process = start(config)
    try:
        port = wait_ready(config, process)
        yield {"port": port, "url": f"http://127.0.0.1:{port}", "ids": ids, "tmp": tmp, "process": process}
    finally:
        stop(process)


def os_client(port: int, ident: Identity) -> OpenSearch:
    creds = Credentials(ident.access_key_id, ident.secret_access_key, ident.session_token)
    return OpenSearch(
        hosts=[{"host": "127.0.0.1", "port": port}],
        http_auth=AWSV4SignerAuth(creds, REGION, "es"),
        use_ssl=False,
        connection_class=RequestsHttpConnection,
        timeout=10,
    )


def aws4auth(ident: Identity) -> AWS4Auth:
    return AWS4Auth(ident.access_key_id, ident.secret_access_key, REGION, "es", session_token=ident.session_token)


@pytest.fixture(scope="module")
def loaded(service: dict[str, Any]) -> dict[str, Any]:
    """The fixture index, created and bulk-loaded with opensearch-py as the admin identity."""
    admin = os_client(service["port"], service["ids"]["admin"])
    admin.indices.create(index="terms", body=MAPPING)
    actions = [
        {
            "_index": "terms",
            "_id": str(i),
            "term": t,
            "popularity": p,
            "category": c,
            "suggest": {"input": [t], "weight": p},
        }
        for i, (t, p, c) in enumerate(TERMS)
    ]
    ok, errors = helpers.bulk(admin, actions, refresh=True)
    assert (ok, errors) == (len(TERMS), [])
    return service


def role_search(service: dict[str, Any], body: dict[str, Any], path: str = "/terms/_search") -> requests.Response:
    """The way the search Lambda calls the domain: POST with requests-aws4auth as its role."""
    return requests.post(service["url"] + path, json=body, auth=aws4auth(service["ids"]["search-role"]), timeout=10)


def terms_of(resp: requests.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [h["_source"]["term"] for h in resp.json()["hits"]["hits"]]


# -- service contract ------------------------------------------------------------------------


def test_admin_endpoints(service: dict[str, Any]) -> None:
    url = service["url"]
    assert requests.get(url + "/_loadcheck/health", timeout=5).json() == {"status": "ok", "service": "search"}
    assert requests.get(url + "/_loadcheck/faults", timeout=5).json() == {}
    bad = requests.post(url + "/_loadcheck/faults", json={"drop-writes": 0.5}, timeout=5)
    assert bad.status_code == 400 and "drop-writes" in bad.json()["error"]
    assert requests.post(url + "/_loadcheck/flush", timeout=5).status_code == 200
    pretty = requests.get(url + "/?pretty", auth=aws4auth(service["ids"]["admin"]), timeout=5)
    assert pretty.status_code == 200 and pretty.text.startswith("{\n")
    ready = json.loads((service["tmp"] / "search.ready").read_text())
    assert ready == {"port": service["port"], "pid": service["process"].pid}


# -- SigV4 and the access policy ---------------------------------------------------------------


def test_opensearch_py_with_admin_identity_works_unchanged(loaded: dict[str, Any]) -> None:
    admin = os_client(loaded["port"], loaded["ids"]["admin"])
    assert admin.info()["version"]["distribution"] == "opensearch"
    assert admin.indices.exists(index="terms")
    assert admin.count(index="terms")["count"] == len(TERMS)
    assert admin.get(index="terms", id="6")["_source"]["term"] == "apple"
    res = admin.search(index="terms", body={"query": {"term": {"category": "food"}}}, params={"size": 5})
    assert {h["_source"]["term"] for h in res["hits"]["hits"]} == {"apple", "apple pie", "pineapple"}


def test_requester_identity_is_refused(loaded: dict[str, Any]) -> None:
    requester = os_client(loaded["port"], loaded["ids"]["requester"])
    with pytest.raises(AuthorizationException) as err:
        requester.search(index="terms", body={"query": {"match_all": {}}})
    assert err.value.status_code == 403
    assert err.value.info == {
        "Message": f"User: arn:aws:iam::{ACCT}:user/loadcheck-requester is not authorized to "
        "perform: es:ESHttpPost on resource: loadcheck-search"
    }


def test_unsigned_request_is_refused(loaded: dict[str, Any]) -> None:
    resp = requests.post(loaded["url"] + "/terms/_search", json={}, timeout=5)
    assert resp.status_code == 403
    assert resp.json() == {
        "Message": "User: anonymous is not authorized to perform: es:ESHttpPost because no "
        "resource-based policy allows the es:ESHttpPost action"
    }
    assert (
        requests.get(loaded["url"] + "/", timeout=5)
        .json()["Message"]
        .endswith("no resource-based policy allows the es:ESHttpGet action")
    )


def test_tampered_request_is_refused(loaded: dict[str, Any]) -> None:
    session = requests.Session()
    req = requests.Request(
        "POST",
        loaded["url"] + "/terms/_search",
        json={"query": {"match_all": {}}},
        auth=aws4auth(loaded["ids"]["search-role"]),
    )
    prepared = session.prepare_request(req)
    prepared.body = json.dumps({"query": {"term": {"category": "food"}}}).encode()
    prepared.headers["Content-Length"] = str(len(prepared.body))
    resp = session.send(prepared, timeout=5)
    assert resp.status_code == 403
    # requests-aws4auth also sends x-amz-content-sha256, so the body hash check catches it first.
    assert resp.json()["message"] in (
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
        "Access Key and signing method. Consult the service documentation for details.",
    )
    # Tampering with a signed header instead of the body: the signature itself no longer matches.
    prepared = session.prepare_request(req)
    prepared.headers["X-Amz-Date"] = prepared.headers["X-Amz-Date"][:-3] + "00Z"
    resp = session.send(prepared, timeout=5)
    assert resp.status_code == 403 and resp.json()["message"].startswith(
        "The request signature we calculated does not match"
    )
    wrong_secret = AWS4Auth(
        loaded["ids"]["search-role"].access_key_id,
        "not-the-secret",
        REGION,
        "es",
        session_token=loaded["ids"]["search-role"].session_token,
    )
    resp = requests.post(loaded["url"] + "/terms/_search", json={}, auth=wrong_secret, timeout=5)
    assert resp.status_code == 403 and "signature we calculated does not match" in resp.json()["message"]


def test_search_role_is_allowed_by_the_domain_policy(loaded: dict[str, Any]) -> None:
    assert role_search(loaded, {"query": {"match_all": {}}}).json()["hits"]["total"] == {"value": 10, "relation": "eq"}


# -- autocomplete and queries ------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("n", {"new york", "new york city hotels", "newark airport", "the new yorker"}),
        ("ne", {"new york", "new york city hotels", "newark airport", "the new yorker"}),
        ("newa", {"newark airport"}),
        ("a", {"apple pie", "apple", "application form", "big apple", "newark airport"}),
        ("appli", {"application form"}),
        ("pi", {"apple pie", "pineapple"}),
    ],
)
def test_autocomplete_prefix_by_prefix(loaded: dict[str, Any], typed: str, expected: set[str]) -> None:
    body = {"size": 10, "query": {"multi_match": {"query": typed, "type": "bool_prefix", "fields": SAYT}}}
    assert set(terms_of(role_search(loaded, body))) == expected


def test_autocomplete_ranks_in_order_and_whole_term_prefixes_first(loaded: dict[str, Any]) -> None:
    def top(typed: str) -> list[str]:
        body = {"size": 10, "query": {"multi_match": {"query": typed, "type": "bool_prefix", "fields": SAYT}}}
        return terms_of(role_search(loaded, body))

    assert top("new yo")[0] == "new york"
    # OR semantics as in OpenSearch: "a" also finds the apples, but the in-order match leads.
    assert top("newark a")[0] == "newark airport" and "apple" in top("newark a")
    assert top("new york ci")[0] == "new york city hotels"
    assert top("app")[-1] == "big apple"
    assert top("york")[0] == "york minster"


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"match": {"term": "apple"}}, ["apple", "apple pie", "big apple"]),
        ({"match_phrase_prefix": {"term": "new yo"}}, None),
        ({"match_bool_prefix": {"term": "airport newa"}}, ["newark airport"]),
        ({"multi_match": {"query": "apple", "fields": ["term", "category"]}}, None),
        ({"prefix": {"category": "tra"}}, None),
        ({"term": {"category": "church"}}, ["york minster"]),
        ({"terms": {"category": ["church", "media"]}}, None),
        (
            {
                "bool": {
                    "must": {"match": {"term": "apple"}},
                    "filter": {"range": {"popularity": {"gte": 55}}},
                    "must_not": {"term": {"category": "city"}},
                }
            },
            ["apple"],
        ),
        (
            {
                "bool": {
                    "should": [{"term": {"category": "food"}}, {"term": {"category": "city"}}],
                    "minimum_should_match": 1,
                }
            },
            None,
        ),
        ({"match_all": {}}, None),
    ],
)
def test_query_types_over_http(loaded: dict[str, Any], query: dict[str, Any], expected: list[str] | None) -> None:
    expected_sets = {
        "match_phrase_prefix": {"new york", "new york city hotels", "the new yorker"},
        "multi_match": {"apple", "apple pie", "big apple", "pineapple"} - {"pineapple"},
        "prefix": {"new york city hotels", "newark airport"},
        "terms": {"york minster", "the new yorker"},
        "bool": {"apple", "apple pie", "pineapple", "new york", "big apple"},
        "match_all": {t for t, _, _ in TERMS},
    }
    got = terms_of(role_search(loaded, {"query": query, "size": 20}))
    if expected is not None:
        assert got == expected
    else:
        assert set(got) == expected_sets[next(iter(query))]


def test_size_from_source_and_total(loaded: dict[str, Any]) -> None:
    body = {"query": {"match_all": {}}, "size": 3, "from": 2, "_source": ["term"], "track_total_hits": True}
    res = role_search(loaded, body).json()
    assert res["hits"]["total"] == {"value": 10, "relation": "eq"}
    assert len(res["hits"]["hits"]) == 3
    assert all(set(h["_source"]) == {"term"} and h["_index"] == "terms" for h in res["hits"]["hits"])
    assert set(res) == {"took", "timed_out", "_shards", "hits"} and res["timed_out"] is False


def test_completion_suggest_over_http(loaded: dict[str, Any]) -> None:
    body = {"suggest": {"autocomplete": {"prefix": "app", "completion": {"field": "suggest", "size": 3}}}}
    res = role_search(loaded, body).json()
    assert res["hits"]["max_score"] is None and res["hits"]["total"]["value"] == 0
    options = res["suggest"]["autocomplete"][0]["options"]
    assert [(o["text"], o["_score"]) for o in options] == [
        ("apple", 80.0),
        ("apple pie", 50.0),
        ("application form", 15.0),
    ]


def test_count_over_http(loaded: dict[str, Any]) -> None:
    resp = requests.get(loaded["url"] + "/terms/_count", auth=aws4auth(loaded["ids"]["search-role"]), timeout=5)
    assert resp.json()["count"] == 10


def test_errors_over_http(loaded: dict[str, Any]) -> None:
    resp = role_search(loaded, {"query": {"regexp": {"term": "a.*"}}})
    assert resp.status_code == 400
    body = resp.json()
    assert body["status"] == 400 and body["error"]["type"] == "parsing_exception"
    assert body["error"]["root_cause"][0]["reason"].startswith("unknown query [regexp]")
    resp = role_search(loaded, {}, path="/missing/_search")
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "index_not_found_exception"
    admin = os_client(loaded["port"], loaded["ids"]["admin"])
    with pytest.raises(NotFoundError):
        admin.get(index="terms", id="no-such-id")
    with pytest.raises(RequestError) as err:
        admin.indices.create(index="terms", body=MAPPING)
    assert err.value.error == "resource_already_exists_exception"


def test_payload_over_the_limit_is_refused_unread(service: dict[str, Any]) -> None:
    body = b'{"term": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    resp = requests.post(
        service["url"] + "/big/_doc/1",
        data=body,
        auth=aws4auth(service["ids"]["admin"]),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert resp.status_code == 413
    assert resp.json() == {"Message": "Request size exceeded 10485760 bytes"}
    assert requests.get(service["url"] + "/_loadcheck/health", timeout=5).status_code == 200


def test_writes_become_visible_within_the_refresh_interval(loaded: dict[str, Any]) -> None:
    admin = os_client(loaded["port"], loaded["ids"]["admin"])
    admin.index(index="terms", id="late", body={"term": "zebra crossing", "popularity": 1, "category": "road"})
    deadline = time.monotonic() + 10  # refresh_interval is 1 s; allow for a loaded machine
    hits: list[str] = []
    while time.monotonic() < deadline:
        hits = terms_of(role_search(loaded, {"query": {"prefix": {"term": "zeb"}}}))
        if hits:
            break
        time.sleep(0.1)
    assert hits == ["zebra crossing"]
    admin.delete(index="terms", id="late", params={"refresh": "true"})
    assert terms_of(role_search(loaded, {"query": {"prefix": {"term": "zeb"}}})) == []


def test_reference_mapping_and_corpus(service: dict[str, Any]) -> None:
    """The reference stack's own mapping and corpus (reference_stack/data) load and autocomplete."""
    spec = json.loads((REPO / "reference_stack/data/mapping.json").read_text())
    lines = (REPO / "reference_stack/data/corpus.jsonl").read_text().splitlines()
    docs = [json.loads(line) for line in lines]
    admin = os_client(service["port"], service["ids"]["admin"])
    admin.indices.create(index="corpus", body=spec)
    actions = [{"_index": "corpus", "_id": d.pop("id"), **d} for d in docs]
    ok, errors = helpers.bulk(admin, actions, refresh=True, chunk_size=1000)
    assert (ok, errors) == (len(docs), [])
    some = docs[len(docs) // 2]["term"]
    typed = some[: max(2, len(some) // 2)]
    body = {"size": 20, "query": {"multi_match": {"query": typed, "type": "bool_prefix", "fields": SAYT}}}
    got = terms_of(role_search(service, body, path="/corpus/_search"))
    assert some in got, (typed, got)
    admin.indices.delete(index="corpus")


# -- lifecycle -------------------------------------------------------------------------------


def test_sigterm_exits_zero_and_data_survives_a_restart(tmp_path: Path) -> None:
    ids = make_identities(tmp_path / "identities.json")
    config = write_config(tmp_path)
    process = start(config)
    try:
        port = wait_ready(config, process)
        admin = os_client(port, ids["admin"])
        admin.indices.create(index="terms", body=MAPPING)
        admin.index(index="terms", id="1", body={"term": "kept"})  # not refreshed: SIGTERM must commit it
    finally:
        assert stop(process) == 0
    process = start(config)
    try:
        port = wait_ready(config, process)
        resp = requests.post(
            f"http://127.0.0.1:{port}/terms/_search",
            json={"query": {"match": {"term": "kept"}}},
            auth=aws4auth(ids["search-role"]),
            timeout=5,
        )
        assert terms_of(resp) == ["kept"]
    finally:
        assert stop(process) == 0


def test_exits_when_its_parent_dies(tmp_path: Path) -> None:
    make_identities(tmp_path / "identities.json")
    config = write_config(tmp_path)
    # An intermediate parent that records itself as parent_pid, starts the service, then waits to be killed.
    launcher = (
        "import json, os, subprocess, sys, time\n"
        "cfg = json.load(open(sys.argv[1])); cfg['parent_pid'] = os.getpid()\n"
        "open(sys.argv[1], 'w').write(json.dumps(cfg))\n"
        "subprocess.Popen([sys.executable, '-m', 'reference_stack.local.search', '--config', sys.argv[1]])\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", launcher, str(config)], cwd=REPO, start_new_session=True)
    child_pid = None
    try:
        deadline = time.monotonic() + 30
        ready = tmp_path / "search.ready"
        while time.monotonic() < deadline and not ready.exists():
            time.sleep(0.05)
        child_pid = json.loads(ready.read_text())["pid"]
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(child_pid):
            time.sleep(0.05)
        assert not _alive(child_pid), "search kept running after its parent died"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child_pid and _alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_bad_config_is_named_and_exits_2(tmp_path: Path, service: dict[str, Any]) -> None:
    make_identities(tmp_path / "identities.json")
    taken = write_config(tmp_path, port=service["port"])  # the module's service holds this port
    run = subprocess.run(
        [sys.executable, "-m", "reference_stack.local.search", "--config", str(taken)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert f"cannot listen on 127.0.0.1:{service['port']}" in run.stderr and "fix:" in run.stderr
    bad_policy = write_config(tmp_path, access_policy={"Statement": [{"Effect": "Allow", "Principal": "me"}]})
    run = subprocess.run(
        [sys.executable, "-m", "reference_stack.local.search", "--config", str(bad_policy)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "access_policy: Statement[0]: Principal" in run.stderr
