"""Properties of the search handler: what it signs, what it refuses, what it forwards.

The sender is replaced by a recorder; signatures are checked with ``loadcheck.core.sigv4.verify``
(the same verifier the local search service uses) and recomputed with botocore's SigV4Auth.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import example, given, note
from hypothesis import strategies as st

from loadcheck.core.sigv4 import verify
from reference_stack.handlers import search
from reference_stack.testing import LambdaContext, check_v2_response, http_api_v2_event, http_api_v2_events

KEY, SECRET, TOKEN = "AKIASEARCHROLE000001", "search-secret/with+chars", "token-1"
REGION = "eu-central-1"
HITS = {"took": 1, "timed_out": False, "hits": {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []}}


class Recorder:
    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.status = 200
        self.payload: Any = HITS

    def __call__(self, prepared: Any) -> Any:
        self.requests.append(prepared)
        return type("Resp", (), {"status_code": self.status, "content": json.dumps(self.payload).encode()})()


@pytest.fixture(scope="module")
def sender() -> Iterator[Recorder]:
    mp = pytest.MonkeyPatch()
    mp.setenv("SEARCH_ENDPOINT", "https://search-loadcheck-abc.eu-central-1.es.amazonaws.com")
    mp.setenv("SEARCH_INDEX", "terms")
    mp.setenv("AWS_REGION", REGION)
    rec = Recorder()
    search.set_sender(rec)
    search.set_credentials(Credentials(KEY, SECRET, TOKEN))
    try:
        yield rec
    finally:
        search.set_sender(None)
        search.set_credentials(None)
        mp.undo()


def invoke(event: dict[str, Any]) -> Any:
    return check_v2_response(search.handler(event, LambdaContext(function_name="loadcheck-search")))


def _fresh(rec: Recorder, status: int = 200, payload: Any = HITS) -> Recorder:
    rec.requests.clear()
    rec.status, rec.payload = status, payload
    return rec


_prefixes = st.text(min_size=1, max_size=100).filter(str.strip)


@given(q=_prefixes, size=st.integers(1, 20))
@example(q="greek small letter al", size=5)
@example(q="ünïcödé & = ? / %20", size=1)
def test_autocomplete_requests_carry_a_sigv4_es_signature_that_verifies(sender: Recorder, q: str, size: int) -> None:
    rec = _fresh(sender)
    parsed = invoke(http_api_v2_event("GET", "/search", query={"q": [q], "size": [str(size)]}))
    assert parsed.status == 200
    (req,) = rec.requests
    parts = urlsplit(req.url)
    body = req.body if isinstance(req.body, bytes) else req.body.encode()
    assert json.loads(body)["query"]["multi_match"]["query"] == q
    verify(
        method=req.method,
        raw_path=parts.path,
        raw_query=parts.query,
        headers=[("host", parts.netloc), *req.headers.items()],
        body=body,
        service="es",
        region=REGION,
        secret_for={KEY: (SECRET, TOKEN)},
        now=_dt.datetime.now(_dt.UTC),
    )
    # and botocore, recomputing the signature over the captured request, gets the same one
    signed = req.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    again = AWSRequest(
        method=req.method, url=req.url, data=body, headers={k: v for k, v in req.headers.items() if k.lower() in signed}
    )
    again.context["timestamp"] = req.headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials(KEY, SECRET, TOKEN), "es", REGION)
    expected = auth.signature(auth.string_to_sign(again, auth.canonical_request(again)), again)
    assert req.headers["Authorization"].endswith(f"Signature={expected}")


# ----------------------------------------------------------------------------------------
# Bodies

_scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8)
_safe_keys = st.text(min_size=1, max_size=10).filter(lambda k: k not in search.FORBIDDEN_KEYS)
_trees = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_safe_keys, inner, max_size=3), max_leaves=10
)


def _allowed_bodies() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "query": st.dictionaries(_safe_keys, _trees, max_size=2),
            "size": st.integers(0, search.POST_SIZE_MAX),
            "from": st.integers(0, search.POST_FROM_MAX),
            "_source": _trees,
            "sort": _trees,
            "suggest": st.dictionaries(_safe_keys, _trees, max_size=2),
            "track_total_hits": st.booleans(),
        },
    )


_with_script = st.deferred(
    lambda: st.one_of(
        st.builds(lambda k, v: {k: v}, st.sampled_from(search.FORBIDDEN_KEYS), _trees),
        st.builds(
            lambda k, t, extra: {**extra, k: t},
            _safe_keys,
            _with_script,
            st.dictionaries(_safe_keys, _trees, max_size=2),
        ),
        st.builds(lambda t, before: [*before, t], _with_script, st.lists(_trees, max_size=2)),
    )
)


def _disallowed_bodies() -> st.SearchStrategy[Any]:
    scripted = st.builds(
        lambda base, key, t: {**base, key: t},
        _allowed_bodies(),
        st.sampled_from(["query", "suggest", "_source", "sort"]),
        _with_script,
    )
    unknown_key = st.builds(
        lambda base, key, v: {**base, key: v},
        _allowed_bodies(),
        _safe_keys.filter(lambda k: k not in search.ALLOWED_KEYS),
        _trees,
    )
    bad_size = st.builds(
        lambda base, key, v: {**base, key: v},
        _allowed_bodies(),
        st.sampled_from(["size", "from"]),
        st.integers(search.POST_FROM_MAX + 1)
        | st.integers(max_value=-1)
        | st.text()
        | st.booleans()
        | st.floats(allow_nan=False),
    )
    too_big = st.builds(lambda base, v: {**base, "size": v}, _allowed_bodies(), st.integers(search.POST_SIZE_MAX + 1))
    not_object = st.lists(_trees, max_size=3) | _scalars
    return st.one_of(scripted, unknown_key, bad_size, too_big, not_object)


@given(body=_disallowed_bodies())
@example(body={"query": {"bool": {"filter": [{"script": {"script": {"source": "1"}}}]}}})
@example(body={"query": {"match_all": {}}, "aggs": {"x": {"scripted_metric": {}}}})
@example(body={"size": 101})
def test_disallowed_bodies_never_reach_opensearch(sender: Recorder, body: Any) -> None:
    rec = _fresh(sender)
    parsed = invoke(http_api_v2_event("POST", "/search", json.dumps(body), content_type="application/json"))
    note(parsed.json)
    assert parsed.status == 400
    assert rec.requests == []


@given(body=_allowed_bodies(), status=st.sampled_from([200, 400, 403, 404, 429]))
def test_allowed_bodies_are_forwarded_unchanged_and_the_answer_returned_as_is(
    sender: Recorder, body: dict[str, Any], status: int
) -> None:
    answer = {"status": status, "echo": body}
    rec = _fresh(sender, status, answer)
    parsed = invoke(http_api_v2_event("POST", "/search", body))
    (req,) = rec.requests
    assert json.loads(req.body) == body
    assert urlsplit(req.url).path == "/terms/_search"
    assert (parsed.status, parsed.json) == (status, answer)


@given(
    event=http_api_v2_events(
        path=st.sampled_from(["/search", "/search/", "/events", "/"]),
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    )
)
def test_any_event_gets_a_well_formed_response_and_never_a_5xx(sender: Recorder, event: dict[str, Any]) -> None:
    _fresh(sender)
    parsed = invoke(event)
    assert parsed.status < 500, parsed.json
