"""The one registry of the local stack's faults: names, owning service, unit, range, example.

Every place that reads a fault goes through here: ``loadcheck run --fault``, ``loadcheck stack
up --fault``, ``loadcheck stack fault``, the supervisor, and each service's ``faults.py`` (which
keeps only the runtime behaviour: dropping writes, adding latency, failing invocations). A
value is accepted in its canonical JSON form (a number, or a field name) or as text in its unit,
so ``ddb-latency=200``, ``ddb-latency=200ms`` and ``ddb-latency=0.2s`` are the same fault, on the
command line and in a ``POST /_loadcheck/faults`` body alike. ``off`` (or JSON ``null``) clears a
fault; so does a value that means "no effect" (a rate, delay or count of 0, ``allow-denied=0``).

    parse_fault("ddb-latency=200ms")  -> ("ddb-latency", 200.0)
    validate("drop-writes", "10%")    -> 0.1
    format_value("ddb-latency", 200.0) -> "200ms"   (parse_fault(f"{name}={format_value(...)}")
                                                       gives the value back)

Every error is a ConfigError naming the fault, the bad value, the unit and a correct example::

    fault ddb-latency=abc: 'abc' is not a duration in milliseconds
      fix: give milliseconds from 0 to 60000, e.g. ddb-latency=200ms (200, 200ms and 0.2s are the same)

``active_faults(state_dir)`` asks each service of a running local stack what is active now.
"""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from loadcheck.core.errors import ConfigError
from loadcheck.core.state import admin_headers, resolve_state_dir

# Kinds of value; each has one text form and one canonical (JSON) form.
FRACTION = "fraction"  # float 0..1; text 0.1 or 10%
MILLISECONDS = "milliseconds"  # float ms; text 200, 200ms, 0.2s
SECONDS = "seconds"  # float s; text 3, 3s, 500ms, 1m
COUNT = "count"  # whole number; text 3
STATUS = "status"  # HTTP status code; text 500
SWITCH = "switch"  # 1 on, 0 off; text 1/0, on, true, yes / false, no
FIELD = "field"  # an access-log field name (a key of the configured format)

OFF_WORDS = ("off", "null", "none")
_ON = ("1", "on", "true", "yes")
_OFF = ("0", "false", "no")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_DURATION = re.compile(r"(?P<n>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)\s*(?P<unit>ms|s|m)?", re.IGNORECASE)
_MS_PER = {"ms": Decimal(1), "s": Decimal(1000), "m": Decimal(60_000)}


@dataclass(frozen=True, kw_only=True)
class FaultSpec:
    """One fault: who applies it, what its value means, and what a good value looks like."""

    name: str
    service: str  # the local service that applies it: aws, lambda or gateway
    kind: str  # FRACTION, MILLISECONDS, SECONDS, COUNT, STATUS, SWITCH or FIELD
    unit: str  # how the value reads to a person, e.g. "milliseconds"
    low: float | None = None
    high: float | None = None
    example: str  # a correct NAME=VALUE
    effect: str


FAULTS: dict[str, FaultSpec] = {
    spec.name: spec
    for spec in (
        FaultSpec(
            name="drop-writes",
            service="aws",
            kind=FRACTION,
            unit="fraction of PutItems",
            low=0,
            high=1,
            example="drop-writes=0.05",
            effect="that share of successful PutItems is acknowledged (and charged) but not stored",
        ),
        FaultSpec(
            name="phantom-writes",
            service="aws",
            kind=COUNT,
            unit="count of PutItems",
            low=0,
            high=1_000_000,
            example="phantom-writes=3",
            effect="the next N successful PutItems each also store an item no request wrote",
        ),
        FaultSpec(
            name="ddb-latency",
            service="aws",
            kind=MILLISECONDS,
            unit="milliseconds",
            low=0,
            high=60_000,
            example="ddb-latency=200ms",
            effect="every DynamoDB call is delayed this long before it is handled",
        ),
        FaultSpec(
            name="lambda-error",
            service="lambda",
            kind=FRACTION,
            unit="fraction of invocations",
            low=0,
            high=1,
            example="lambda-error=0.25",
            effect="that share of invocations fails as a function error without running the handler",
        ),
        FaultSpec(
            name="lambda-timeout",
            service="lambda",
            kind=FRACTION,
            unit="fraction of invocations",
            low=0,
            high=1,
            example="lambda-timeout=0.25",
            effect="that share of invocations runs into the function timeout",
        ),
        FaultSpec(
            name="drop-access-logs",
            service="gateway",
            kind=FRACTION,
            unit="fraction of access-log records",
            low=0,
            high=1,
            example="drop-access-logs=0.5",
            effect="that share of access-log records is never shipped",
        ),
        FaultSpec(
            name="blank-access-log-field",
            service="gateway",
            kind=FIELD,
            unit="access-log field name",
            example="blank-access-log-field=routeKey",
            effect="the access-log field renders as '-' in every record",
        ),
        FaultSpec(
            name="throttle-status",
            service="gateway",
            kind=STATUS,
            unit="HTTP status code",
            low=100,
            high=599,
            example="throttle-status=500",
            effect="a 429 from the integration reaches the client with this status instead",
        ),
        FaultSpec(
            name="log-delay",
            service="gateway",
            kind=SECONDS,
            unit="seconds",
            low=0,
            high=3600,
            example="log-delay=3s",
            effect="added to the access-log delivery delay",
        ),
        FaultSpec(
            name="allow-denied",
            service="gateway",
            kind=SWITCH,
            unit="switch",
            low=0,
            high=1,
            example="allow-denied=1",
            effect="the denied identity is evaluated with an allow-all policy",
        ),
    )
}
SERVICES_WITH_FAULTS = ("aws", "lambda", "gateway")


def names(service: str | None = None) -> tuple[str, ...]:
    """Every fault name, or those ``service`` applies."""
    return tuple(n for n, s in FAULTS.items() if service is None or s.service == service)


def owner(name: str) -> str:
    """The service that applies fault ``name``."""
    return spec(name).service


def spec(name: str, *, service: str | None = None) -> FaultSpec:
    """The registry entry of ``name``; ConfigError listing the known names if there is none."""
    found = FAULTS.get(name)
    if found is None or (service is not None and found.service != service):
        known = names(service)
        where = f" on the {service} service" if service else ""
        raise ConfigError(
            f"unknown fault {name!r}{where}",
            value=name,
            hint=f"known faults{where}: {', '.join(known) if known else 'none'}; e.g. {FAULTS[known[0]].example}"
            if known
            else f"the {service} service has no faults",
        )
    return found


# ------------------------------------------------------------------------------------------
# Values


def _num(x: float | None) -> str:
    """A number as people write it: 200, 0.05 (no trailing .0), exactly round-trippable."""
    if x is None:
        return "?"
    f = float(x)
    return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)


def _refuse(s: FaultSpec, raw: Any, problem: str) -> ConfigError:
    return ConfigError(
        f"fault {s.name}={_shown(raw)}: {problem}",
        value=raw,
        hint=_fix(s),
    )


def _jsonable(raw: Any) -> bool:
    try:
        json.dumps(raw)
    except (TypeError, ValueError):
        return False
    return True


def _fix(s: FaultSpec) -> str:
    tail = "; off clears it"
    if s.kind == FRACTION:
        return f"give a fraction from 0 to 1, e.g. {s.example} (10% also works){tail}"
    if s.kind == MILLISECONDS:
        return (
            f"give milliseconds from {_num(s.low)} to {_num(s.high)}, e.g. {s.example} "
            f"(200, 200ms and 0.2s are the same){tail}"
        )
    if s.kind == SECONDS:
        return (
            f"give seconds from {_num(s.low)} to {_num(s.high)}, e.g. {s.example} (3, 3s and 3000ms are the same){tail}"
        )
    if s.kind == COUNT:
        return f"give a whole number from {_num(s.low)} to {_num(s.high)}, e.g. {s.example}{tail}"
    if s.kind == STATUS:
        return f"give an HTTP status code from {_num(s.low)} to {_num(s.high)}, e.g. {s.example}{tail}"
    if s.kind == SWITCH:
        return f"give 1 (on) or 0 (off), e.g. {s.example}"
    return f"give a field name of the access-log format, e.g. {s.example}{tail}"


def _number(s: FaultSpec, raw: Any, what: str) -> Decimal:
    """A plain number (JSON number or text without a unit) as a Decimal."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise _refuse(s, raw, f"{_shown(raw)} is not {what}")
    try:
        d = Decimal(str(raw).strip())
    except InvalidOperation:
        raise _refuse(s, raw, f"{raw!r} is not {what}") from None
    if not d.is_finite():
        raise _refuse(s, raw, f"{raw!r} is not {what}")
    return d


def _shown(raw: Any) -> str:
    """A value as the user wrote it: text as is, anything else as JSON (``true``, ``[1]``)."""
    if isinstance(raw, str):
        return raw
    return json.dumps(raw) if _jsonable(raw) else repr(raw)


def _duration_ms(s: FaultSpec, raw: Any, default_unit: str) -> Decimal:
    what = "a duration in " + s.unit
    if isinstance(raw, str):
        m = _DURATION.fullmatch(raw.strip())
        if not m:
            raise _refuse(s, raw, f"{raw!r} is not {what}")
        return Decimal(m["n"]) * _MS_PER[(m["unit"] or default_unit).lower()]
    return _number(s, raw, what) * _MS_PER[default_unit]


def _in_range(s: FaultSpec, raw: Any, x: Decimal, shown: str) -> None:
    if s.low is not None and x < Decimal(str(s.low)) or s.high is not None and x > Decimal(str(s.high)):
        raise _refuse(s, raw, f"{shown} is outside {_num(s.low)}..{_num(s.high)} ({s.unit})")


def validate(name: str, value: Any, *, service: str | None = None, fields: tuple[str, ...] | None = None) -> Any:
    """``value`` of fault ``name`` in canonical form, ``None`` when it clears the fault.

    ``service`` restricts the names to that service's faults; ``fields`` (the gateway passes
    its access-log format's keys) is what ``blank-access-log-field`` may name.
    """
    s = spec(name, service=service)
    if value is None or (isinstance(value, str) and value.strip().lower() in OFF_WORDS):
        return None
    if s.kind == FRACTION:
        text = value.strip() if isinstance(value, str) else value
        percent = isinstance(text, str) and text.endswith("%")
        d = _number(s, text[:-1] if percent else text, "a fraction")
        if percent:
            d /= 100
        _in_range(s, value, d, value if isinstance(value, str) else _num(float(d)))
        out: Any = float(d)
    elif s.kind in (MILLISECONDS, SECONDS):
        ms = _duration_ms(s, value, "ms" if s.kind == MILLISECONDS else "s")
        amount = ms if s.kind == MILLISECONDS else ms / 1000
        _in_range(s, value, amount, value if isinstance(value, str) else _num(float(amount)))
        out = float(amount)
    elif s.kind in (COUNT, STATUS):
        d = _number(s, value, "a whole number" if s.kind == COUNT else "an HTTP status code")
        if d != d.to_integral_value():
            raise _refuse(s, value, f"{value!r} is not a whole number")
        _in_range(s, value, d, _num(float(d)))
        out = int(d)
    elif s.kind == SWITCH:
        word = str(value).strip().lower() if not isinstance(value, bool) else str(int(value))
        if word in _ON:
            out = 1
        elif word in _OFF:
            out = 0
        else:
            raise _refuse(s, value, f"{value!r} is not a switch")
    else:
        if not isinstance(value, str) or not _FIELD_NAME.fullmatch(value.strip()):
            raise _refuse(s, value, f"{value!r} is not a field name")
        out = value.strip()
        if fields is not None and out not in fields:
            raise ConfigError(
                f"fault {s.name}={value}: {out!r} is not a field of the access-log format",
                value=value,
                hint=f"name one of {', '.join(fields)}, e.g. {s.name}={fields[0] if fields else 'routeKey'}",
            )
    if s.kind != FIELD and s.kind != STATUS and out == 0:
        return None  # no effect: the same as off
    return out


def format_value(name: str, value: Any) -> str:
    """The text form of a canonical value (``off`` for ``None``); ``validate`` reads it back."""
    s = spec(name)
    if value is None:
        return "off"
    if s.kind == MILLISECONDS:
        return f"{_num(value)}ms"
    if s.kind == SECONDS:
        return f"{_num(value)}s"
    if s.kind == FIELD:
        return str(value)
    return _num(value)


def parse_fault(text: str, *, option: str = "--fault") -> tuple[str, Any]:
    """``NAME=VALUE`` -> (name, canonical value or ``None`` for ``off``), validated."""
    name, sep, raw = str(text).partition("=")
    name = name.strip()
    if not sep or not name or not raw.strip():
        raise ConfigError(
            f"{option}: {text!r} is not NAME=VALUE",
            value=text,
            hint=f"e.g. {option} ddb-latency=200ms (repeat for several); known faults: {', '.join(FAULTS)}",
        )
    return name, validate(name, raw.strip())


def parse_faults(items: list[str] | tuple[str, ...], *, option: str = "--fault") -> dict[str, Any]:
    """Several ``NAME=VALUE`` items -> {name: canonical value or None}; the last one of a name wins."""
    return dict(parse_fault(item, option=option) for item in items)


def validate_changes(service: str, changes: Any, *, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A ``POST /_loadcheck/faults`` body for ``service`` -> {name: canonical value or None}.

    Validates everything before anything changes, so a service can apply all or nothing.
    """
    if not isinstance(changes, dict):
        example = FAULTS[names(service)[0]].example.partition("=")[0] if names(service) else "name"
        raise ConfigError(
            f"faults must be a JSON object of NAME: VALUE, got {type(changes).__name__}",
            value=changes,
            hint=f"send e.g. {{{json.dumps(example)}: ...}}, or null as the value to clear a fault",
        )
    return {str(k): validate(str(k), v, service=service, fields=fields) for k, v in changes.items()}


def by_service(faults: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{name: value} -> {service: {name: value}} (names are checked)."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in faults.items():
        out.setdefault(owner(name), {})[name] = value
    return out


# ------------------------------------------------------------------------------------------
# What a running local stack has active


def active_faults_by_service(state_dir: Path | str | None) -> dict[str, dict[str, Any]]:
    """{service: {fault: value}} as each service of the running stack reports it now.

    ``{}`` when no stack runs for ``state_dir`` (no stack.json, or its services do not answer).
    A service that answers with an error is left out rather than guessed.
    """
    sdir = resolve_state_dir(state_dir)
    path = sdir / "stack.json"
    headers = admin_headers(sdir)
    try:
        stack = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    services = stack.get("services") or {}
    ca = stack.get("ca_bundle")
    out: dict[str, dict[str, Any]] = {}
    for service in SERVICES_WITH_FAULTS:
        url = (services.get(service) or {}).get("url")
        if not url:
            continue
        reply = _get_json(f"{url}/_loadcheck/faults", ca, headers=headers)
        if isinstance(reply, dict):
            out[service] = {k: v for k, v in reply.items() if v is not None}
    return out


def active_faults(state_dir: Path | str | None) -> dict[str, Any]:
    """{fault name: value} over every service of the running local stack; ``{}`` when none runs.

    Values are canonical (``format_value`` renders them): fractions 0..1, milliseconds and
    seconds as floats, counts and status codes as ints, field names as strings.
    """
    merged: dict[str, Any] = {}
    for faults in active_faults_by_service(state_dir).values():
        merged |= faults
    return merged


def _get_json(url: str, ca: str | None, timeout: float = 3.0, *, headers: dict[str, str] | None = None) -> Any:
    context = None
    if url.startswith("https"):
        context = ssl.create_default_context(cafile=ca) if ca and Path(ca).is_file() else ssl.create_default_context()
    try:
        request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback URL from stack.json
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:  # noqa: S310 - loopback URL from stack.json
            return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def describe_value(name: str, value: Any) -> str:
    """``ddb-latency=200ms``: a fault as a user would type it."""
    return f"{name}={format_value(name, value)}"


__all__ = [
    "FAULTS",
    "FaultSpec",
    "active_faults",
    "active_faults_by_service",
    "by_service",
    "describe_value",
    "format_value",
    "names",
    "owner",
    "parse_fault",
    "parse_faults",
    "spec",
    "validate",
    "validate_changes",
]
