"""The ``search`` Lambda: ``GET /search`` (autocomplete) and ``POST /search`` (a vetted ``_search``).

Payload format 2.0 in and out (docs/aws-behaviour.md §3.1, §3.2). Standard library and
boto3/botocore only (opensearch-py and requests are not in the Lambda runtime).

``GET /search?q=<prefix>&size=<n>``
    ``q`` 1..100 characters, ``size`` 1..20 (default 5). The index's ``term`` field is a
    ``search_as_you_type`` field, queried with ``multi_match`` of type ``bool_prefix`` over
    ``term``, ``term._2gram`` and ``term._3gram`` (docs/aws-behaviour.md §9.5), operator ``and``
    (every word typed must match, the last one as a prefix). Chosen over the
    alternatives in §9.5 because it matches words in any position ("letter alp" finds
    "greek small letter alpha"), needs no custom analyzer (edge n-grams would), no separate
    curated input field (the completion suggester would), and is cheaper at query time than
    ``match_phrase_prefix``. 200 ``{"suggestions": [{"term", "popularity", "category",
    "score"}]}`` in OpenSearch's relevance order.
``POST /search``
    The body is an OpenSearch ``_search`` body. Allowed top-level keys: ``query``, ``size``,
    ``from``, ``_source``, ``sort``, ``suggest``, ``track_total_hits``; ``size`` 0..100,
    ``from`` 0..10000; no ``script``, ``script_score`` or ``script_fields`` key anywhere in the
    tree. Anything else is a 400 naming the key, and never reaches OpenSearch. The response
    is OpenSearch's JSON as it is, and its status too when it is a 4xx.

OpenSearch unreachable or answering 5xx: 502 ``{"message": "Search backend unavailable"}``
(details only in the log, with the request id). Anything unexpected: 500
``{"message": "Internal server error"}``.

Requests to OpenSearch are signed with SigV4 for service ``es`` in ``AWS_REGION`` with the
function's own credentials (docs/aws-behaviour.md §9.1, §9.6): ``botocore.awsrequest.AWSRequest``
signed by ``botocore.auth.SigV4Auth`` and sent with ``botocore.httpsession.URLLib3Session``.
The seed used ``botocore.endpoint.BotocoreHTTPSession``, removed from botocore in 1.11.0
(2018), and forgot ``import os``. Credentials are frozen per request so a refresh cannot race
the signature (§9.6). Endpoint from ``SEARCH_ENDPOINT`` (``https://...`` on AWS,
``http://127.0.0.1:PORT`` locally), index from ``SEARCH_INDEX``; ``SEARCH_TIMEOUT_S`` (default
5) bounds each request, well inside the function's 10 s timeout, and nothing is retried.

The sender and the credentials are injectable: :func:`set_sender`, :func:`set_credentials`.
A sender is any callable taking the prepared request (``AWSPreparedRequest``: ``method``,
``url``, ``headers``, ``body``) and returning an object with ``status_code`` and ``content``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError
from botocore.httpsession import URLLib3Session

try:  # deployed: the handlers directory is the task root, so _http is a top-level module
    from . import _http
except ImportError:  # pragma: no cover - exercised under awslambdaric
    # The same module under its top-level name; import_module keeps mypy's view of it as one name.
    _http = importlib.import_module("_http")

HttpError = _http.HttpError

ENDPOINT_ENV = "SEARCH_ENDPOINT"
INDEX_ENV = "SEARCH_INDEX"
TIMEOUT_ENV = "SEARCH_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 5.0  # well inside the function's 10 s timeout
SIGNING_SERVICE = "es"

ROUTE_PATH = "/search"
ALLOWED_METHODS = ("GET", "POST")
MAX_BODY_BYTES = 16 * 1024
Q_MIN, Q_MAX = 1, 100
SIZE_DEFAULT, SIZE_MIN, SIZE_MAX = 5, 1, 20
QUERY_PARAMS = ("q", "size")
AUTOCOMPLETE_FIELDS = ("term", "term._2gram", "term._3gram")
SOURCE_FIELDS = ("term", "popularity", "category")

ALLOWED_KEYS = ("query", "size", "from", "_source", "sort", "suggest", "track_total_hits")
FORBIDDEN_KEYS = ("script", "script_score", "script_fields")
POST_SIZE_MAX = 100
POST_FROM_MAX = 10_000
MAX_DEPTH = 64  # a bound on the walk below; real queries nest a dozen levels at most
BACKEND_UNAVAILABLE = "Search backend unavailable"

logger = logging.getLogger("search")
logger.setLevel(logging.INFO)

Sender = Callable[[Any], Any]
_sender: Sender | None = None
_credentials: Any = None


# ------------------------------------------------------------------------------------------
# Talking to OpenSearch


def set_sender(sender: Sender | None) -> None:
    """Replace how signed requests are sent (``None``: URLLib3Session on next use)."""
    global _sender
    _sender = sender


def set_credentials(credentials: Any) -> None:
    """Replace the credentials source (botocore ``Credentials``; ``None``: the default chain)."""
    global _credentials
    _credentials = credentials


def _get_sender() -> Sender:
    global _sender
    if _sender is None:
        raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
        try:
            timeout = float(raw)
        except ValueError:
            raise ValueError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds; use e.g. 5") from None
        _sender = URLLib3Session(timeout=timeout).send
    return _sender


def _frozen_credentials() -> Any:
    global _credentials
    if _credentials is None:
        _credentials = botocore.session.Session().get_credentials()
        if _credentials is None:
            raise RuntimeError(
                "no AWS credentials found for signing OpenSearch requests; the function's role "
                "provides them on AWS (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN)"
            )
    return _credentials.get_frozen_credentials()


def _setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set; set it in the function's environment")
    return value


def signed_search_request(body: dict[str, Any]) -> Any:
    """The prepared, SigV4-signed ``POST <endpoint>/<index>/_search`` for ``body``."""
    endpoint = _setting(ENDPOINT_ENV).rstrip("/")
    index = _setting(INDEX_ENV)
    region = os.environ.get("AWS_REGION") or _setting("AWS_DEFAULT_REGION")
    url = f"{endpoint}/{quote(index, safe='')}/_search"
    data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    request = AWSRequest(method="POST", url=url, data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(_frozen_credentials(), SIGNING_SERVICE, region).add_auth(request)
    return request.prepare()


def call_opensearch(body: dict[str, Any], rid: str) -> tuple[int, Any]:
    """POST ``body`` to ``_search``; ``(status, json)`` for 2xx/4xx, 502 for anything else."""
    prepared = signed_search_request(body)
    try:
        resp = _get_sender()(prepared)
    except (BotoCoreError, OSError) as exc:
        logger.error("request %s: OpenSearch unreachable at %s: %s", rid, prepared.url, exc)
        raise HttpError(502, BACKEND_UNAVAILABLE) from None
    status = int(resp.status_code)
    content = resp.content or b""
    if status >= 500 or status < 200:
        logger.error("request %s: OpenSearch answered %d: %.500r", rid, status, content)
        raise HttpError(502, BACKEND_UNAVAILABLE)
    try:
        payload = json.loads(content)
    except ValueError:
        if status < 300:
            logger.error(
                "request %s: OpenSearch answered %d with a body that is not JSON: %.500r", rid, status, content
            )
            raise HttpError(502, BACKEND_UNAVAILABLE) from None
        payload = {"message": content.decode("utf-8", "replace")[:1000]}
    if 300 <= status < 400:
        logger.error("request %s: OpenSearch answered a redirect %d", rid, status)
        raise HttpError(502, BACKEND_UNAVAILABLE)
    return status, payload


# ------------------------------------------------------------------------------------------
# Validation


def find_forbidden(node: Any, path: str = "", depth: int = 0) -> str | None:
    """The path of the first forbidden (scripting) key in the tree, or ``None``."""
    if depth > MAX_DEPTH:
        raise HttpError(400, f"body: nested deeper than {MAX_DEPTH} levels at {path}; flatten the query")
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if key in FORBIDDEN_KEYS:
                return here
            found = find_forbidden(value, here, depth + 1)
            if found:
                return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = find_forbidden(value, f"{path}[{i}]", depth + 1)
            if found:
                return found
    return None


def _bounded_int(body: dict[str, Any], key: str, high: int) -> None:
    if key not in body:
        return
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise HttpError(400, f"body: {key} is {json.dumps(value)[:40]}; expected a whole number from 0 to {high}")


def validate_search_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise HttpError(
            400,
            "body must be a JSON object: an OpenSearch _search body such as "
            '{"query": {"match": {"term": "alpha"}}, "size": 10}',
        )
    unknown = [k for k in body if k not in ALLOWED_KEYS]
    if unknown:
        raise HttpError(
            400, f"body: key {unknown[0]!r} is not allowed; the allowed top-level keys are {', '.join(ALLOWED_KEYS)}"
        )
    forbidden = find_forbidden(body)
    if forbidden:
        raise HttpError(
            400,
            f"body: {forbidden} is not allowed; scripts ({', '.join(FORBIDDEN_KEYS)}) are refused anywhere in the body",
        )
    _bounded_int(body, "size", POST_SIZE_MAX)
    _bounded_int(body, "from", POST_FROM_MAX)
    return body


def parse_autocomplete(params: dict[str, str]) -> tuple[str, int]:
    unknown = sorted(set(params) - set(QUERY_PARAMS))
    if unknown:
        raise HttpError(
            400, f"unknown query parameter {unknown[0]!r}; the allowed parameters are {', '.join(QUERY_PARAMS)}"
        )
    q = params.get("q")
    if q is None or not q.strip():
        raise HttpError(
            400, f"q: missing or blank; pass the prefix to complete, {Q_MIN} to {Q_MAX} characters, e.g. ?q=gre"
        )
    if len(q) > Q_MAX:
        raise HttpError(400, f"q: {len(q)} characters long; expected {Q_MIN} to {Q_MAX} characters")
    raw = params.get("size")
    if raw is None:
        return q, SIZE_DEFAULT
    if not raw.isascii() or not raw.isdigit() or len(raw) > 3 or not SIZE_MIN <= int(raw) <= SIZE_MAX:
        raise HttpError(
            400, f"size: {raw!r} is not a whole number from {SIZE_MIN} to {SIZE_MAX}; e.g. size={SIZE_DEFAULT}"
        )
    return q, int(raw)


def autocomplete_body(q: str, size: int) -> dict[str, Any]:
    return {
        "size": size,
        "_source": list(SOURCE_FIELDS),
        # operator "and": every word typed must match. The default "or" ranks any term sharing
        # one word ("greek small letter beta" for "greek small letter al") among the suggestions.
        "query": {
            "multi_match": {"query": q, "type": "bool_prefix", "operator": "and", "fields": list(AUTOCOMPLETE_FIELDS)}
        },
    }


# ------------------------------------------------------------------------------------------
# Routes


def autocomplete(event: dict[str, Any], rid: str) -> dict[str, Any]:
    q, size = parse_autocomplete(_http.query_params(event))
    status, payload = call_opensearch(autocomplete_body(q, size), rid)
    if status >= 400:
        # Our own query was refused: a broken index or policy, not the client's fault.
        logger.error("request %s: OpenSearch refused the autocomplete query with %d: %.500r", rid, status, payload)
        raise HttpError(502, BACKEND_UNAVAILABLE)
    suggestions = []
    for hit in (payload.get("hits") or {}).get("hits") or []:
        source = hit.get("_source") or {}
        if "term" not in source:
            continue
        suggestion = {"term": source["term"], "score": hit.get("_score")}
        for key in ("popularity", "category"):
            if key in source:
                suggestion[key] = source[key]
        suggestions.append(suggestion)
    return _http.response(200, {"suggestions": suggestions})


def search(event: dict[str, Any], rid: str) -> dict[str, Any]:
    _http.require_json_content_type(event)
    body = validate_search_body(_http.parse_json_body(_http.body_bytes(event), limit=MAX_BODY_BYTES))
    status, payload = call_opensearch(body, rid)
    headers = {"retry-after": "1"} if status == 429 else None
    return _http.response(status, payload, headers)


def route(event: dict[str, Any], rid: str) -> dict[str, Any]:
    if _http.path_of(event) != ROUTE_PATH:
        raise HttpError(404, "Not Found")
    method = _http.method_of(event)
    if method == "GET":
        return autocomplete(event, rid)
    if method == "POST":
        return search(event, rid)
    raise HttpError(
        405,
        f"method {method or '(none)'} is not allowed on {ROUTE_PATH}; use GET or POST",
        headers={"allow": ", ".join(ALLOWED_METHODS)},
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (``search.handler``)."""
    rid = _http.request_id(context)
    try:
        return route(event, rid)
    except HttpError as err:
        return _http.error_response(err)
    except Exception:
        logger.exception("request %s: unexpected error", rid)
    return _http.response(500, {"message": "Internal server error"})
