"""The notes API, a user's handler: ``POST /notes`` stores a note, ``GET /notes/{day}`` lists a day's.

Contract: ``../openapi.yaml``. Table: hash key ``day`` (YYYY-MM-DD), range key ``at``
(HH:MM:SS.mmm), from ``TABLE_NAME``. A note is ``day``, ``at``, ``author``, ``text`` and optionally
``tags`` (up to 5) and ``pinned``; a note whose key exists is a 409 and is never overwritten.
Errors are ``{"message": ...}`` naming the field: 400 bad input, 404 unknown route, 409, 415 not
JSON, 500 anything unexpected.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import re
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

LOG = logging.getLogger("notes")
LOG.setLevel(logging.INFO)
REQUIRED = ("day", "at", "author", "text")
OPTIONAL = ("tags", "pinned")
TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}")
_client: Any = None


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def set_client(client: Any) -> None:
    """Use ``client`` for DynamoDB (tests: the mocked table's client)."""
    global _client
    _client = client


def get_client() -> Any:
    global _client
    if _client is None:
        _client = boto3.client("dynamodb", region_name=os.environ.get("AWS_REGION", "us-east-1"))
    return _client


def _json(status: int, body: Any) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def _day(value: Any, name: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise BadRequest(f"{name!r} must be a date YYYY-MM-DD, got {value!r}")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name!r} must be a real calendar date, got {value!r}") from None
    return value


def _text(note: dict[str, Any], name: str, longest: int) -> None:
    value = note[name]
    if not isinstance(value, str) or not 1 <= len(value) <= longest:
        raise BadRequest(f"{name!r} must be a string of 1 to {longest} characters")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _note(event: dict[str, Any]) -> dict[str, Any]:
    content_type = (event.get("headers") or {}).get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise BadRequest("send the body as application/json", 415)
    raw = event.get("body") or ""
    data = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    try:
        note = json.loads(data, parse_constant=_refuse_constant)
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(note, dict):
        raise BadRequest("the body must be a JSON object")
    for name in note:
        if name not in REQUIRED + OPTIONAL:
            raise BadRequest(f"unknown field {name!r}; a note has {', '.join(REQUIRED + OPTIONAL)}")
    for name in REQUIRED:
        if name not in note:
            raise BadRequest(f"field {name!r} is missing")
    _day(note["day"], "day")
    if not isinstance(note["at"], str) or not TIME.fullmatch(note["at"]):
        raise BadRequest(f"'at' must be a time HH:MM:SS.mmm, got {note['at']!r}")
    _text(note, "author", 64)
    _text(note, "text", 500)
    tags = note.get("tags", [])
    if not isinstance(tags, list) or len(tags) > 5 or not all(isinstance(t, str) and 1 <= len(t) <= 20 for t in tags):
        raise BadRequest("'tags' must be a list of at most 5 strings of 1 to 20 characters")
    if not isinstance(note.get("pinned", False), bool):
        raise BadRequest("'pinned' must be true or false")
    return note


def _create(event: dict[str, Any]) -> dict[str, Any]:
    note = _note(event)
    item = TypeSerializer().serialize(note)["M"]
    try:
        get_client().put_item(
            TableName=os.environ["TABLE_NAME"],
            Item=item,
            ConditionExpression="attribute_not_exists(#d) AND attribute_not_exists(#a)",
            ExpressionAttributeNames={"#d": "day", "#a": "at"},
        )
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return _json(409, {"message": f"a note at {note['day']} {note['at']} exists; it was left unchanged"})
        raise
    tags = note.get("tags")
    primary = tags[0] if tags else None
    LOG.info(json.dumps({"stored": [note["day"], note["at"]], "primary_tag": primary}))
    return _json(201, note)


def _list(event: dict[str, Any]) -> dict[str, Any]:
    day = _day((event.get("pathParameters") or {}).get("day"), "day")
    query = event.get("queryStringParameters") or {}
    for name in query:
        if name != "limit":
            raise BadRequest(f"unknown query parameter {name!r}; use 'limit'")
    text = query.get("limit", "20")
    if not re.fullmatch(r"[0-9]{1,3}", text) or not 1 <= int(text) <= 50:
        raise BadRequest(f"'limit' must be an integer 1 to 50, got {text!r}")
    page = get_client().query(
        TableName=os.environ["TABLE_NAME"],
        KeyConditionExpression="#d = :d",
        ExpressionAttributeNames={"#d": "day"},
        ExpressionAttributeValues={":d": {"S": day}},
        Limit=int(text),
    )
    deserialize = TypeDeserializer().deserialize
    return _json(200, {"notes": [{k: deserialize(v) for k, v in i.items()} for i in page.get("Items", [])]})


ROUTES = {"POST /notes": _create, "GET /notes/{day}": _list}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    route = ROUTES.get(event.get("routeKey", ""))
    if route is None:
        return _json(404, {"message": f"no route {event.get('routeKey')!r}"})
    try:
        return route(event)
    except BadRequest as e:
        return _json(e.status, {"message": str(e)})
    except Exception:
        LOG.exception("request %s failed", getattr(context, "aws_request_id", "?"))
        return _json(500, {"message": "Internal server error"})
