"""CloudWatch Logs filter patterns (reference_stack/local/aws/logs/patterns.py): the documented
examples, each kind of pattern, and the patterns AWS refuses."""

from __future__ import annotations

import json

import pytest

from reference_stack.local.aws.logs.errors import InvalidParameter
from reference_stack.local.aws.logs.patterns import parse

UNSTRUCTURED = [
    "[ERROR] A fatal exception has occurred",
    "Exiting with ERRORCODE: -1",
    "[WARN] Some errors occurred",
    "[INFO] Everything is fine",
]
ACCESS = json.dumps(
    {
        "requestId": "abc",
        "status": "503",
        "routeKey": "POST /events",
        "responseLatency": 12,
        "integrationErrorMessage": None,
        "user": {"id": 1, "email": "John.Doe@example.com"},
        "users": [{"id": 2, "email": "Jane@example.com"}],
        "coordinates": [[0, 1], [2, 3]],
        "ok": False,
        "ip": "123.123.9.1",
    }
)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("ERROR", [0, 1]),  # a substring: ERRORCODE matches too, as in AWS's example
        ("ERROR -Exiting", [0]),
        ("?ERROR ?WARN", [0, 1, 2]),
        ('"fatal exception"', [0]),
        ("error", [2]),  # case-sensitive
        ("-ERROR", [2, 3]),
        ("", [0, 1, 2, 3]),
        ("   ", [0, 1, 2, 3]),
        ("%^\\[ERROR\\]|^\\[WARN\\]%", [0, 2]),
        ("%CODE:%", [1]),
    ],
)
def test_terms(pattern: str, expected: list[int]) -> None:
    match = parse(pattern)
    assert [i for i, m in enumerate(UNSTRUCTURED) if match(m)] == expected


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("{ $.status = 503 }", True),
        ("{ $.status = 599 }", False),
        ("{ $.status >= 500 }", True),  # a string holding a number compares as a number (docs/fidelity.md)
        ("{ $.status < 500 }", False),
        ("{ $.status = 5* }", True),
        ('{ $.status = "5*" }', True),
        ('{ $.routeKey = "POST /events" }', True),
        ('{ $.routeKey = "post /events" }', False),
        ("{ $.routeKey != GET* }", True),
        ("{ $.ip != 123.123.* }", False),
        ("{ $.responseLatency > 10 && $.responseLatency <= 12 }", True),
        ("{ $.responseLatency > 12 || $.status = 503 }", True),
        ("{ ($.responseLatency > 12 || $.status = 200) && $.requestId = abc }", False),
        ("{ $.status = 200 || $.status = 503 && $.requestId = nope }", False),  # && binds tighter
        ('{ ($.user.id = 1) && ($.users[0].email = "Jane@example.com") }', True),
        ("{ $.coordinates[1][0] = 2 }", True),
        ("{ $.coordinates[5][0] = 2 }", False),
        ("{ $.integrationErrorMessage IS NULL }", True),
        ("{ $.requestId IS NULL }", False),
        ("{ $.nothing NOT EXISTS }", True),
        ("{ $.status NOT EXISTS }", False),
        ("{ $.ok IS FALSE }", True),
        ("{ $.ok IS TRUE }", False),
        ("{ $.nothing != 1 }", False),  # a missing selector makes every comparison false
        ("{ $.user = 1 }", False),  # an object equals no value
        ("{ $.status = * }", True),
        ("{ $.routeKey = %^POST% }", True),
        ("{ $.routeKey = %^GET% }", False),
    ],
)
def test_json(pattern: str, matches: bool) -> None:
    assert parse(pattern)(ACCESS) is matches


def test_json_patterns_never_match_text() -> None:
    assert not parse("{ $.status = * }")("status=503 not json")
    assert not parse("{ $.a NOT EXISTS }")("[1, 2]")


APACHE = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534'


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("[ip, user, username, timestamp, request, status_code, bytes]", True),
        ("[ip, user, username, timestamp, request, status_code, bytes, extra]", False),
        ("[ip, ..., status_code = 200, bytes]", True),
        ("[ip, ..., status_code = 4* || status_code = 5*, bytes]", False),
        ("[ip=127.0.0.1, user, ...]", True),
        ('[..., request = "GET /apache_pb.gif HTTP/1.0", status_code, bytes > 1000]', True),
        ("[..., bytes < 1000]", False),
        ("[ip, user, username, timestamp = *13:25*, ...]", True),
        ("[..., status_code >= 200 && status_code < 300, bytes]", True),
    ],
)
def test_space_delimited(pattern: str, matches: bool) -> None:
    assert parse(pattern)(APACHE) is matches


@pytest.mark.parametrize(
    "pattern",
    [
        "{ $.status = }",
        "{ $.status >= abc }",
        "{ status = 1 }",
        "{ $.a = 1",
        "{ $.a = 1 } trailing",
        "{ $.a IS MAYBE }",
        "{ ($.a = 1 }",
        "POST /events",  # non-alphanumeric characters need double quotes
        '"unterminated',
        "[a, b=]",
        "[a, b",
        "%a!b%",
        "%(ERROR|WARN)%",  # AWS supports no () in a regex
        "%a b%",
        "%[unbalanced%",
        "x" * 1025,
    ],
)
def test_refused_patterns(pattern: str) -> None:
    with pytest.raises(InvalidParameter) as exc:
        parse(pattern)
    assert exc.value.code == "InvalidParameterException"
    assert exc.value.body()["__type"] == "InvalidParameterException" and exc.value.message
