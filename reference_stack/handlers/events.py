"""The ``events`` Lambda: ``GET /events`` and ``POST /events`` on the EventLog table.

Runs under API Gateway HTTP API payload format 2.0 (docs/aws-behaviour.md §3.1) and answers in the
2.0 response form (§3.2). Standard library and boto3/botocore only: deployed as it is.

Routes (the contract is ``reference_stack/openapi.yaml``):

``GET /events``
    ``?date=YYYY-MM-DD`` queries that partition (Query on the hash key ``date``, items in
    ``time`` order); without ``date`` a Scan. ``limit`` 1..100 (default 25) and an opaque
    ``nextToken`` (base64url of the LastEvaluatedKey as JSON) page through. 200
    ``{"items": [...], "nextToken": str | null}``. Pages are eventually consistent reads.
``POST /events``
    A JSON object with exactly ``date``, ``time``, ``userId``, ``eventType``. Stored with a
    conditional PutItem so a key that already exists is a 409 and never overwritten. 201 with
    the stored item, which is exactly the four fields sent.

Status codes: 400 bad input (the message names the field and what is expected), 404 unknown
path, 405 other methods (``Allow`` header), 409 key exists, 413 body over 16 KB, 415 not
``application/json``, 429 DynamoDB throttling that survived the SDK's retries (``Retry-After``),
500 ``{"message": "Internal server error"}`` for anything else, logged with the request id.

Retries are explicit: ``retries={"mode": DDB_RETRY_MODE or "standard", "max_attempts":
DDB_MAX_ATTEMPTS or 3}``. botocore's default mode is still ``legacy`` (docs/aws-behaviour.md §7.5),
which gives DynamoDB 10 attempts with exponential sleeps up to 12.8 s, about 25 s of sleeping
in the worst case: together with the calls themselves that overruns the function timeout and
the HTTP API's 30 s integration timeout (a 503 for the client, a write in an unknown state).
Note that botocore reads ``max_attempts`` inside ``retries`` as the number of *retries* after
the first call (it stores ``total_max_attempts = max_attempts + 1``; the ``AWS_MAX_ATTEMPTS``
variable, by contrast, counts the first call). So the default 3 means up to 4 calls, and
standard mode's backoff ``rand(0,1) * min(2^(n-1), 20) s`` sleeps at most 1 + 2 + 4 = 7 s:
a throttle that outlasts that becomes a prompt 429 the client can retry.

The client is created once per execution environment, lazily (so importing this module needs
no AWS configuration), honours ``AWS_ENDPOINT_URL`` as boto3 does, and can be replaced with
:func:`set_client` (tests, ``botocore.stub.Stubber``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import importlib
import json
import logging
import os
import re
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import ClientError

try:  # deployed: the handlers directory is the task root, so _http is a top-level module
    from . import _http
except ImportError:  # pragma: no cover - exercised under awslambdaric
    # The same module under its top-level name; import_module keeps mypy's view of it as one name.
    _http = importlib.import_module("_http")

HttpError = _http.HttpError

TABLE_NAME_ENV = "TABLE_NAME"
RETRY_MODE_ENV = "DDB_RETRY_MODE"
MAX_ATTEMPTS_ENV = "DDB_MAX_ATTEMPTS"
DEFAULT_RETRY_MODE = "standard"
DEFAULT_MAX_ATTEMPTS = 3

ROUTE_PATH = "/events"
ALLOWED_METHODS = ("GET", "POST")
MAX_BODY_BYTES = 16 * 1024
MAX_STRING_LENGTH = 256
LIMIT_DEFAULT, LIMIT_MIN, LIMIT_MAX = 25, 1, 100
FIELDS = ("date", "time", "userId", "eventType")
QUERY_PARAMS = ("date", "limit", "nextToken")
HASH_KEY, RANGE_KEY = "date", "time"
# Error codes botocore's standard retry mode treats as throttling (docs/aws-behaviour.md §7.4, §7.5).
THROTTLE_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})
RETRY_AFTER_SECONDS = "1"

DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TIME_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}")
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+={0,2}")

EXPECTED = {
    "date": "a real calendar date as YYYY-MM-DD, e.g. 2024-05-01",
    "time": "a time of day as HH:MM:SS.mmm (24-hour, milliseconds), e.g. 13:45:07.123",
    "userId": f"a non-empty string of at most {MAX_STRING_LENGTH} characters",
    "eventType": f"a non-empty string of at most {MAX_STRING_LENGTH} characters",
}

logger = logging.getLogger("events")
logger.setLevel(logging.INFO)

_client: Any = None
_deserializer = TypeDeserializer()


# ------------------------------------------------------------------------------------------
# The DynamoDB client


def retry_config() -> Config:
    """The explicit retry configuration, read from the environment when the client is made."""
    mode = os.environ.get(RETRY_MODE_ENV, DEFAULT_RETRY_MODE)
    if mode not in ("standard", "adaptive", "legacy"):
        raise ValueError(f"{RETRY_MODE_ENV}={mode!r} is not a botocore retry mode; use standard, adaptive or legacy")
    raw = os.environ.get(MAX_ATTEMPTS_ENV, str(DEFAULT_MAX_ATTEMPTS))
    try:
        attempts = int(raw)
    except ValueError:
        raise ValueError(f"{MAX_ATTEMPTS_ENV}={raw!r} is not a whole number; use e.g. 3") from None
    if attempts < 0:
        raise ValueError(f"{MAX_ATTEMPTS_ENV}={attempts} must be 0 or more (retries after the first call; 0 = none)")
    return Config(retries={"mode": mode, "max_attempts": attempts})


def get_client() -> Any:
    """The environment's DynamoDB client, made on first use."""
    global _client
    if _client is None:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        _client = boto3.client("dynamodb", region_name=region, config=retry_config())
    return _client


def set_client(client: Any) -> None:
    """Replace the DynamoDB client (``None`` makes the next call create a fresh one)."""
    global _client
    _client = client


def table_name() -> str:
    name = os.environ.get(TABLE_NAME_ENV)
    if not name:
        raise RuntimeError(f"{TABLE_NAME_ENV} is not set; set it in the function's environment to the table's name")
    return name


# ------------------------------------------------------------------------------------------
# Validation


def check_date(value: str, where: str) -> str:
    if not DATE_RE.fullmatch(value):
        raise HttpError(400, f"{where}: {value!r} is not {EXPECTED['date']}")
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        raise HttpError(400, f"{where}: {value!r} is not a real calendar date; expected {EXPECTED['date']}") from None
    return value


def check_time(value: str, where: str) -> str:
    if not TIME_RE.fullmatch(value):
        raise HttpError(400, f"{where}: {value!r} is not {EXPECTED['time']}")
    return value


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def validate_item(data: Any) -> dict[str, str]:
    """The item to store, or :class:`HttpError` 400 naming the first bad field."""
    if not isinstance(data, dict):
        raise HttpError(400, f"body must be a JSON object with the fields {', '.join(FIELDS)}; got {_describe(data)}")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise HttpError(400, f"body: unknown field {unknown[0]!r}; the allowed fields are {', '.join(FIELDS)}")
    item: dict[str, str] = {}
    for name in FIELDS:
        if name not in data:
            raise HttpError(400, f"body: field {name!r} is missing; expected {EXPECTED[name]}")
        value = data[name]
        if not isinstance(value, str):
            raise HttpError(400, f"body: field {name!r} is {_describe(value)}; expected {EXPECTED[name]}")
        where = f"body: field {name!r}"
        if name == "date":
            check_date(value, where)
        elif name == "time":
            check_time(value, where)
        elif not value:
            raise HttpError(400, f"{where} is empty; expected {EXPECTED[name]}")
        elif len(value) > MAX_STRING_LENGTH:
            raise HttpError(400, f"{where} is {len(value)} characters long; expected {EXPECTED[name]}")
        item[name] = value
    return item


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return LIMIT_DEFAULT
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not LIMIT_MIN <= int(raw) <= LIMIT_MAX:
        raise HttpError(
            400, f"limit: {raw!r} is not a whole number from {LIMIT_MIN} to {LIMIT_MAX}; e.g. limit={LIMIT_DEFAULT}"
        )
    return int(raw)


def encode_token(last_key: dict[str, Any]) -> str:
    """base64url (unpadded) of the LastEvaluatedKey as plain JSON."""
    plain = {k: _deserializer.deserialize(v) for k, v in last_key.items()}
    raw = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_token(token: str) -> dict[str, Any]:
    """The ExclusiveStartKey a ``nextToken`` stands for, or 400."""
    bad = HttpError(
        400,
        "nextToken: not a token this API issued; pass the nextToken of the previous page unchanged, "
        "or leave it out to start from the first page",
    )
    if len(token) > 4096 or not TOKEN_RE.fullmatch(token):
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token.rstrip("=") + "=" * (-len(token.rstrip("=")) % 4))
        key = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if (
        not isinstance(key, dict)
        or set(key) != {HASH_KEY, RANGE_KEY}
        or not all(isinstance(v, str) and v for v in key.values())
    ):
        raise bad
    return {k: {"S": v} for k, v in key.items()}


# ------------------------------------------------------------------------------------------
# Routes


def list_events(event: dict[str, Any]) -> dict[str, Any]:
    params = _http.query_params(event)
    unknown = sorted(set(params) - set(QUERY_PARAMS))
    if unknown:
        raise HttpError(
            400, f"unknown query parameter {unknown[0]!r}; the allowed parameters are {', '.join(QUERY_PARAMS)}"
        )
    limit = parse_limit(params.get("limit"))
    date = params.get("date")
    if date is not None:
        check_date(date, "date")
    start = decode_token(params["nextToken"]) if "nextToken" in params else None
    if start is not None and date is not None and start[HASH_KEY]["S"] != date:
        raise HttpError(
            400,
            "nextToken: this token belongs to a page of another date; pass the same date as the "
            "request that returned it",
        )
    kwargs: dict[str, Any] = {"TableName": table_name(), "Limit": limit}
    if start is not None:
        kwargs["ExclusiveStartKey"] = start
    client = get_client()
    try:
        if date is not None:
            page = client.query(
                KeyConditionExpression="#d = :d",
                ExpressionAttributeNames={"#d": HASH_KEY},
                ExpressionAttributeValues={":d": {"S": date}},
                **kwargs,
            )
        else:
            page = client.scan(**kwargs)
    except ClientError as exc:
        # DynamoDB rejects a start key that does not fit the table or the query; the token was bad.
        if start is not None and exc.response.get("Error", {}).get("Code") == "ValidationException":
            raise HttpError(
                400,
                "nextToken: DynamoDB rejected this token as a start key; pass the nextToken of "
                "the previous page unchanged",
            ) from exc
        raise
    items = [{k: _deserializer.deserialize(v) for k, v in item.items()} for item in page.get("Items", [])]
    last = page.get("LastEvaluatedKey")
    return _http.response(200, {"items": items, "nextToken": encode_token(last) if last else None})


def create_event(event: dict[str, Any]) -> dict[str, Any]:
    _http.require_json_content_type(event)
    item = validate_item(_http.parse_json_body(_http.body_bytes(event), limit=MAX_BODY_BYTES))
    try:
        get_client().put_item(
            TableName=table_name(),
            Item={k: {"S": v} for k, v in item.items()},
            ConditionExpression="attribute_not_exists(#d) AND attribute_not_exists(#t)",
            ExpressionAttributeNames={"#d": HASH_KEY, "#t": RANGE_KEY},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise HttpError(
                409,
                f"an event with date {item['date']!r} and time {item['time']!r} already exists; "
                "events are never overwritten, send it with another time",
            ) from exc
        raise
    return _http.response(201, item)


def route(event: dict[str, Any]) -> dict[str, Any]:
    path = _http.path_of(event)
    if path != ROUTE_PATH:
        raise HttpError(404, "Not Found")
    method = _http.method_of(event)
    if method == "GET":
        return list_events(event)
    if method == "POST":
        return create_event(event)
    raise HttpError(
        405,
        f"method {method or '(none)'} is not allowed on {ROUTE_PATH}; use GET or POST",
        headers={"allow": ", ".join(ALLOWED_METHODS)},
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (``events.handler``)."""
    rid = _http.request_id(context)
    try:
        return route(event)
    except HttpError as err:
        return _http.error_response(err)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in THROTTLE_CODES:
            logger.warning("request %s: DynamoDB throttled after retries (%s); answering 429", rid, code)
            return _http.response(
                429,
                {
                    "message": "Too many requests: the table's capacity is exhausted; retry "
                    f"after {RETRY_AFTER_SECONDS} s"
                },
                {"retry-after": RETRY_AFTER_SECONDS},
            )
        logger.exception("request %s: DynamoDB error %s", rid, code or "(no code)")
    except Exception:
        logger.exception("request %s: unexpected error", rid)
    return _http.response(500, {"message": "Internal server error"})
