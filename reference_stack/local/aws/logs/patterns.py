"""CloudWatch Logs filter patterns: parse once, match many messages. Pure: no I/O, no moto.

The syntax is CloudWatch Logs' (docs/aws-behaviour.md §11.1,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html). The
first character of the pattern decides its kind:

- empty (or blank): every event;
- ``{ ... }`` JSON: ``$.a.b[0].c`` selectors compared with ``=``, ``!=``, ``<``, ``<=``, ``>``,
  ``>=`` to numbers, strings (quoted or bare, ``*`` a wildcard) or ``%regex%``; ``IS NULL``,
  ``NOT EXISTS``, ``IS TRUE``, ``IS FALSE``; joined with ``&&``, ``||`` and parentheses
  (``&&`` binds tighter);
- ``[ ... ]`` space-delimited: comma-separated named fields, ``...`` for any number of fields,
  conditions ``name=value`` (same operators, joined with ``&&``/``||`` inside one field); the
  message is split on spaces, ``"quoted"`` and ``[bracketed]`` runs count as one field;
- ``%regex%``: a regular expression searched in the message;
- otherwise terms: ``word``, ``"exact phrase"``, ``?either ?or``, ``-excluded``; case-sensitive
  substring matches (``ERROR`` matches ``ERRORCODE``, as AWS's own example shows).

:func:`parse` raises :class:`~.errors.InvalidParameter` (AWS's ``InvalidParameterException``)
for anything it cannot parse, never a pattern that matches everything.

Departures (docs/fidelity.md "CloudWatch Logs"): a numeric comparison also accepts a JSON string
holding a number (``"status": "503"`` matches ``$.status >= 500``; UNCONFIRMED: AWS documents
numbers only); a comparison on a missing selector is false, ``!=`` included; selectors take
``.name`` and ``[index]`` steps only (no ``[*]``, no quoted keys); the regex dialect is Python's
restricted to the characters AWS lists; the error messages are ours (only the exception type
is AWS's); metric-filter value extraction (``metricValue = $.x``) is not modelled.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reference_stack.local.aws.logs.errors import InvalidParameter

MAX_PATTERN = 1024  # FilterLogEvents.filterPattern length constraint
Matcher = Callable[[str], bool]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_BARE_TERM = re.compile(r"[^\W]+", re.UNICODE)  # letters, digits, underscore
# Characters a %regex% may hold (FilterAndPatternSyntax, "Supported regular expressions syntax").
_REGEX_CHARS = re.compile(r"[A-Za-z0-9:_#=@/;,\-^$?\[\]{}|\\*+.]*")
_OPERATORS = ("!=", "<=", ">=", "=", "<", ">")


def parse(pattern: str) -> Matcher:
    """A function telling whether a message matches ``pattern``; InvalidParameter if it does not parse."""
    if len(pattern) > MAX_PATTERN:
        raise InvalidParameter(f"filterPattern is longer than {MAX_PATTERN} characters")
    text = pattern.strip()
    if not text:
        return lambda _message: True
    if text[0] == "{":
        return _JsonParser(text).parse()
    if text[0] == "[":
        return _parse_delimited(text)
    if len(text) > 1 and text[0] == "%" and text[-1] == "%":
        regex = _regex(text[1:-1])
        return lambda message: regex.search(message) is not None
    return _parse_terms(text)


def _regex(body: str) -> re.Pattern[str]:
    if not body or not _REGEX_CHARS.fullmatch(body):
        bad = sorted({c for c in body if not _REGEX_CHARS.fullmatch(c)})
        raise InvalidParameter(f"Invalid regular expression %{body}%: unsupported character(s) {''.join(bad)!r}")
    try:
        return re.compile(body)
    except re.error as exc:
        raise InvalidParameter(f"Invalid regular expression %{body}%: {exc}") from None


# -- terms ----------------------------------------------------------------------------------------


def _parse_terms(text: str) -> Matcher:
    required: list[str] = []
    optional: list[str] = []
    excluded: list[str] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        bucket = required
        if text[i] in "?-":
            bucket = optional if text[i] == "?" else excluded
            i += 1
        if i < len(text) and text[i] == '"':
            term, i = _quoted(text, i)
        else:
            j = i
            while j < len(text) and not text[j].isspace():
                j += 1
            term, i = text[i:j], j
            if not _BARE_TERM.fullmatch(term):
                raise InvalidParameter(
                    f"Invalid character(s) in term '{term}': enclose terms with non-alphanumeric characters in double quotes"
                )
        bucket.append(term)

    def match(message: str) -> bool:
        return (
            all(t in message for t in required)
            and (not optional or any(t in message for t in optional))
            and not any(t in message for t in excluded)
        )

    return match


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The string starting with the quote at ``text[i]`` (``\\"`` and ``\\\\`` escapes) and the index after it."""
    out: list[str] = []
    j = i + 1
    while j < len(text):
        c = text[j]
        if c == "\\" and j + 1 < len(text):
            out.append(text[j + 1])
            j += 2
            continue
        if c == '"':
            return "".join(out), j + 1
        out.append(c)
        j += 1
    raise InvalidParameter(f"Unterminated quoted string at position {i}: {text[i : i + 40]}")


# -- values shared by JSON and space-delimited patterns ---------------------------------------------


@dataclass(frozen=True)
class _Value:
    """The right-hand side of a comparison: a number, a (wildcard) string or a regex."""

    number: float | None = None
    glob: re.Pattern[str] | None = None
    regex: re.Pattern[str] | None = None
    text: str = ""


def _value(token: str, quoted: bool) -> _Value:
    if not quoted and len(token) > 1 and token[0] == "%" and token[-1] == "%":
        return _Value(regex=_regex(token[1:-1]), text=token)
    if not quoted and _NUMBER.fullmatch(token):
        return _Value(number=float(token), text=token)
    glob = re.compile("".join(".*" if c == "*" else re.escape(c) for c in token), re.DOTALL)
    return _Value(glob=glob, text=token)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return None  # null, objects and arrays never equal a value


def _compare(actual: Any, op: str, value: _Value) -> bool:
    if op in ("<", "<=", ">", ">="):
        number = _as_number(actual)
        if number is None or value.number is None:
            return False
        return {"<": number < value.number, "<=": number <= value.number, ">": number > value.number}.get(
            op, number >= value.number
        )
    equal = _equals(actual, value)
    if equal is None:
        return False
    return equal if op == "=" else not equal


def _equals(actual: Any, value: _Value) -> bool | None:
    """Whether ``actual`` equals ``value``; None when ``actual`` is no scalar (neither = nor != holds)."""
    if value.number is not None:
        number = _as_number(actual)
        if number is not None:
            return math.isclose(number, value.number, rel_tol=0, abs_tol=1e-9)
    text = _as_text(actual)
    if text is None:
        return None
    if value.regex is not None:
        return value.regex.search(text) is not None
    if value.glob is not None:
        return value.glob.fullmatch(text) is not None
    return text == value.text


# -- JSON patterns --------------------------------------------------------------------------------

_JSON_TOKEN = re.compile(
    r"""\s*(?:
        (?P<punct>&&|\|\||[(){}])
      | (?P<op>!=|<=|>=|=|<|>)
      | (?P<str>")
      | (?P<word>[^\s(){}=<>!&|"]+)
    )""",
    re.VERBOSE,
)
_SELECTOR = re.compile(r"\$(?:\.[^\s.\[\]()=<>!&|\"{}]+|\[\d+\])+")
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()


class _JsonParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, bool]] = []  # (kind, text, quoted)
        i = 0
        while i < len(text):
            if text[i].isspace():
                i += 1
                continue
            m = _JSON_TOKEN.match(text, i)
            if m is None:
                raise InvalidParameter(f"Invalid filter pattern: unexpected {text[i : i + 20]!r} at position {i}")
            if m.group("str"):
                s, i = _quoted(text, m.start("str"))
                self.tokens.append(("value", s, True))
                continue
            kind = "punct" if m.group("punct") else "op" if m.group("op") else "value"
            self.tokens.append((kind, m.group(kind if kind != "value" else "word"), False))
            i = m.end()
        self.pos = 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, str, bool]:
        if self.pos >= len(self.tokens):
            raise InvalidParameter(f"Invalid filter pattern: {self.text!r} ends early")
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def _expect(self, text: str) -> None:
        kind, got, _ = self._take()
        if got != text or kind == "value":
            raise InvalidParameter(f"Invalid filter pattern: expected {text!r}, found {got!r} in {self.text!r}")

    def parse(self) -> Matcher:
        self._expect("{")
        expr = self._or()
        self._expect("}")
        if self.pos != len(self.tokens):
            raise InvalidParameter(f"Invalid filter pattern: unexpected {self._peek()!r} after '}}' in {self.text!r}")

        def match(message: str) -> bool:
            try:
                doc = json.loads(message)
            except ValueError:
                return False
            return isinstance(doc, dict) and expr(doc)

        return match

    def _or(self) -> Callable[[Any], bool]:
        parts = [self._and()]
        while self._peek() == "||":
            self.pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda doc: any(p(doc) for p in parts))

    def _and(self) -> Callable[[Any], bool]:
        parts = [self._unary()]
        while self._peek() == "&&":
            self.pos += 1
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else (lambda doc: all(p(doc) for p in parts))

    def _unary(self) -> Callable[[Any], bool]:
        if self._peek() == "(":
            self.pos += 1
            inner = self._or()
            self._expect(")")
            return inner
        return self._condition()

    def _condition(self) -> Callable[[Any], bool]:
        kind, selector, _ = self._take()
        if kind != "value" or not _SELECTOR.fullmatch(selector):
            raise InvalidParameter(
                f"Invalid filter pattern: expected a selector like $.field or $.list[0], found {selector!r} in {self.text!r}"
            )
        path = [int(i) if i else name for name, i in _STEP.findall(selector[1:])]
        kind, word, _ = self._take()
        if kind == "value" and word in ("IS", "NOT"):
            _, second, _ = self._take()
            test = {
                ("IS", "NULL"): lambda v: v is None,
                ("IS", "TRUE"): lambda v: v is True,
                ("IS", "FALSE"): lambda v: v is False,
                ("NOT", "EXISTS"): lambda v: v is _MISSING,
            }.get((word, second))
            if test is None:
                raise InvalidParameter(
                    f"Invalid filter pattern: {word} {second} (use IS NULL, IS TRUE, IS FALSE or NOT EXISTS)"
                )
            return lambda doc: test(_select(doc, path))
        if kind != "op":
            raise InvalidParameter(f"Invalid filter pattern: expected an operator after {selector}, found {word!r}")
        vkind, raw, quoted = self._take()
        if vkind != "value":
            raise InvalidParameter(f"Invalid filter pattern: expected a value after {selector} {word}, found {raw!r}")
        value = _value(raw, quoted)
        if word in ("<", "<=", ">", ">=") and value.number is None:
            raise InvalidParameter(f"Invalid filter pattern: {selector} {word} {raw}: {word} needs a number")
        op = word
        return lambda doc: (v := _select(doc, path)) is not _MISSING and _compare(v, op, value)


def _select(doc: Any, path: list[str | int]) -> Any:
    cur = doc
    for step in path:
        if isinstance(step, int):
            if not isinstance(cur, list) or step >= len(cur):
                return _MISSING
            cur = cur[step]
        else:
            if not isinstance(cur, dict) or step not in cur:
                return _MISSING
            cur = cur[step]
    return cur


# -- space-delimited patterns -----------------------------------------------------------------------

_FIELD_COND = re.compile(
    r"\s*(?P<name>[A-Za-z_][\w]*)\s*(?P<op>!=|<=|>=|=|<|>)\s*(?P<value>\"(?:[^\"\\]|\\.)*\"|[^\s&|]+)\s*"
)
_FIELD_NAME = re.compile(r"\s*[A-Za-z_]\w*\s*")


@dataclass(frozen=True)
class _Field:
    """One column of a space-delimited pattern: ``...``, a bare name, or conditions on a name."""

    ellipsis: bool = False
    test: Callable[[str], bool] | None = None


def _parse_delimited(text: str) -> Matcher:
    if not text.endswith("]"):
        raise InvalidParameter(f"Invalid filter pattern: a space-delimited pattern must end with ']': {text!r}")
    inner = text[1:-1]
    fields = [_parse_field(part, text) for part in _split_top(inner)]
    if not fields:
        raise InvalidParameter(f"Invalid filter pattern: no fields in {text!r}")

    def match(message: str) -> bool:
        return _match_fields(fields, _split_message(message))

    return match


def _split_top(inner: str) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    for c in inner:
        if c == '"':
            quoted = not quoted
        if c == "," and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(c)
    parts.append("".join(buf))
    return parts if any(p.strip() for p in parts) else []


def _parse_field(part: str, text: str) -> _Field:
    body = part.strip()
    if body == "...":
        return _Field(ellipsis=True)
    if _FIELD_NAME.fullmatch(body):
        return _Field()
    alternatives: list[list[Callable[[str], bool]]] = []
    for alt in re.split(r"\|\|", body):
        conj: list[Callable[[str], bool]] = []
        for cond in alt.split("&&"):
            m = _FIELD_COND.fullmatch(cond)
            if m is None:
                raise InvalidParameter(f"Invalid filter pattern: cannot parse field {body!r} in {text!r}")
            raw, op = m.group("value"), m.group("op")
            quoted = raw.startswith('"')
            value = _value(json.loads(raw) if quoted else raw, quoted)
            if op in ("<", "<=", ">", ">=") and value.number is None:
                raise InvalidParameter(f"Invalid filter pattern: {cond.strip()}: {op} needs a number")
            conj.append(_field_test(op, value))
        alternatives.append(conj)
    return _Field(test=lambda s: any(all(t(s) for t in conj) for conj in alternatives))


def _field_test(op: str, value: _Value) -> Callable[[str], bool]:
    return lambda s: _compare(s, op, value)


def _split_message(message: str) -> list[str]:
    """Fields of a message: space-separated; ``"..."`` and ``[...]`` runs are one field, delimiters dropped."""
    out: list[str] = []
    i, n = 0, len(message)
    while i < n:
        c = message[i]
        if c.isspace():
            i += 1
            continue
        close = {'"': '"', "[": "]"}.get(c)
        if close is not None:
            j = message.find(close, i + 1)
            if j != -1:
                out.append(message[i + 1 : j])
                i = j + 1
                continue
        j = i
        while j < n and not message[j].isspace():
            j += 1
        out.append(message[i:j])
        i = j
    return out


def _match_fields(fields: list[_Field], values: list[str]) -> bool:
    """Positional match with ``...`` taking any number of values (memoized backtracking)."""
    memo: dict[tuple[int, int], bool] = {}

    def go(fi: int, vi: int) -> bool:
        key = (fi, vi)
        if key in memo:
            return memo[key]
        if fi == len(fields):
            result = vi == len(values)
        elif fields[fi].ellipsis:
            result = any(go(fi + 1, k) for k in range(vi, len(values) + 1))
        elif vi == len(values):
            result = False
        else:
            test = fields[fi].test
            result = (test is None or test(values[vi])) and go(fi + 1, vi + 1)
        memo[key] = result
        return result

    return go(0, 0)
