"""The fault registry: every fault's accepted and refused forms, and messages that say the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadcheck.core import faults
from loadcheck.core.errors import ConfigError
from loadcheck.core.state import stack_command

# (text after NAME=, canonical value) for each fault; None means the value clears the fault.
ACCEPTED = {
    "drop-writes": [("0.05", 0.05), ("1", 1.0), ("10%", 0.1), ("0", None), ("off", None)],
    "phantom-writes": [("3", 3), ("1000000", 1_000_000), ("0", None), ("3.0", 3)],
    "ddb-latency": [("200", 200.0), ("200ms", 200.0), ("0.2s", 200.0), ("1.5", 1.5), ("1m", 60_000.0), ("0", None)],
    "lambda-error": [("0.25", 0.25), ("1", 1.0), ("50%", 0.5), ("null", None)],
    "lambda-timeout": [("0.25", 0.25), (".5", 0.5), ("0", None)],
    "drop-access-logs": [("0.5", 0.5), ("100%", 1.0), ("0", None)],
    "blank-access-log-field": [("routeKey", "routeKey"), ("ip", "ip"), ("off", None)],
    "throttle-status": [("500", 500), ("503", 503), ("100", 100), ("599", 599), ("off", None)],
    "log-delay": [("3", 3.0), ("3s", 3.0), ("500ms", 0.5), ("1m", 60.0), ("0", None)],
    "allow-denied": [("1", 1), ("on", 1), ("true", 1), ("yes", 1), ("0", None), ("off", None)],
}
# (text after NAME=, words the message must hold)
REFUSED = {
    "drop-writes": [("1.5", "outside 0..1"), ("-0.1", "outside 0..1"), ("lots", "not a fraction"), ("nan", "")],
    "phantom-writes": [("2.5", "not a whole number"), ("-1", "outside 0..1000000"), ("x", "not a whole number")],
    "ddb-latency": [("abc", "not a duration in milliseconds"), ("100000", "outside 0..60000"), ("-5ms", "outside")],
    "lambda-error": [("-0.1", "outside 0..1"), ("2", "outside 0..1"), ("half", "not a fraction")],
    "lambda-timeout": [("1.01", "outside 0..1"), ("inf", "")],
    "drop-access-logs": [("101%", "outside 0..1"), ("some", "not a fraction")],
    "blank-access-log-field": [("no spaces", "not a field name"), ("3x", "not a field name")],
    "throttle-status": [("42", "outside 100..599"), ("600", "outside 100..599"), ("500.5", "not a whole number")],
    "log-delay": [("-1", "outside 0..3600"), ("2h", "not a duration in seconds"), ("soon", "not a duration")],
    "allow-denied": [("2", "not a switch"), ("maybe", "not a switch")],
}


def test_every_fault_is_covered_and_has_a_service_unit_and_valid_example() -> None:
    assert set(ACCEPTED) == set(faults.FAULTS) == set(REFUSED)
    for name, spec in faults.FAULTS.items():
        assert spec.service in faults.SERVICES_WITH_FAULTS and spec.unit and spec.effect
        example_name, value = faults.parse_fault(spec.example)
        assert example_name == name and value is not None


@pytest.mark.parametrize(("name", "text", "expected"), [(n, t, v) for n, cases in ACCEPTED.items() for t, v in cases])
def test_accepted_forms(name: str, text: str, expected: object) -> None:
    assert faults.parse_fault(f"{name}={text}") == (name, expected)
    assert faults.validate(name, text) == expected


@pytest.mark.parametrize(("name", "text", "words"), [(n, t, w) for n, cases in REFUSED.items() for t, w in cases])
def test_refused_forms_name_value_unit_and_a_correct_example(name: str, text: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        faults.parse_fault(f"{name}={text}")
    message = str(err.value)
    assert f"fault {name}={text}:" in message and words in message
    assert faults.FAULTS[name].example in err.value.hint  # type: ignore[operator]


def test_the_reported_messages() -> None:
    with pytest.raises(ConfigError) as err:
        faults.parse_fault("ddb-latency=abc")
    assert str(err.value) == (
        "fault ddb-latency=abc: 'abc' is not a duration in milliseconds\n"
        "  fix: give milliseconds from 0 to 60000, e.g. ddb-latency=200ms (200, 200ms and 0.2s are the same); "
        "off clears it"
    )
    with pytest.raises(ConfigError) as err:
        faults.parse_fault("lambda-error=-0.1")
    assert str(err.value).splitlines()[0] == "fault lambda-error=-0.1: -0.1 is outside 0..1 (fraction of invocations)"
    assert "{" not in str(err.value)  # a command-line example, not a JSON body


def test_json_values_are_validated_like_text() -> None:
    assert faults.validate("ddb-latency", 200) == 200.0
    assert faults.validate("allow-denied", True) == 1
    assert faults.validate("drop-writes", None) is None
    for name, bad in [
        ("drop-writes", True),
        ("ddb-latency", [200]),
        ("throttle-status", {"a": 1}),
        ("log-delay", False),
    ]:
        with pytest.raises(ConfigError, match=f"fault {name}="):
            faults.validate(name, bad)


def test_syntax_and_unknown_names() -> None:
    with pytest.raises(ConfigError, match=r"--fault: 'drop-writes' is not NAME=VALUE"):
        faults.parse_fault("drop-writes")
    with pytest.raises(ConfigError, match="is not NAME=VALUE"):
        faults.parse_fault("=0.1")
    with pytest.raises(ConfigError) as err:
        faults.parse_fault("drop-everything=1")
    assert "unknown fault 'drop-everything'" in str(err.value) and "ddb-latency" in str(err.value)
    with pytest.raises(ConfigError, match="unknown fault 'drop-writes' on the gateway service"):
        faults.validate("drop-writes", 0.1, service="gateway")


def test_field_names_are_checked_against_the_format_when_known() -> None:
    assert faults.validate("blank-access-log-field", "status", fields=("requestId", "status")) == "status"
    with pytest.raises(ConfigError) as err:
        faults.validate("blank-access-log-field", "ip", fields=("requestId", "status"))
    assert "'ip' is not a field of the access-log format" in str(err.value) and "requestId, status" in str(err.value)


def test_changes_are_all_validated_before_any_applies() -> None:
    assert faults.validate_changes("aws", {"drop-writes": "5%", "ddb-latency": None}) == {
        "drop-writes": 0.05,
        "ddb-latency": None,
    }
    with pytest.raises(ConfigError, match="JSON object"):
        faults.validate_changes("aws", [["drop-writes", 1]])
    with pytest.raises(ConfigError, match="lambda-error"):
        faults.validate_changes("aws", {"drop-writes": 0.1, "lambda-error": 1})


def test_by_service_and_describe() -> None:
    assert faults.by_service({"drop-writes": 0.1, "log-delay": 3.0, "lambda-error": None}) == {
        "aws": {"drop-writes": 0.1},
        "gateway": {"log-delay": 3.0},
        "lambda": {"lambda-error": None},
    }
    assert faults.describe_value("ddb-latency", 200.0) == "ddb-latency=200ms"
    assert faults.describe_value("log-delay", 0.5) == "log-delay=0.5s"
    assert faults.describe_value("drop-writes", None) == "drop-writes=off"


def test_no_stack_means_no_active_faults(tmp_path: Path) -> None:
    assert faults.active_faults(tmp_path / "nothing-here") == {}
    (tmp_path / "stack.json").write_text('{"services": {"aws": {"url": "http://127.0.0.1:9"}}}')
    assert faults.active_faults(tmp_path) == {}  # stale stack.json: the service does not answer


def test_stack_commands_keep_a_given_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOADCHECK_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert stack_command("status", None) == "loadcheck stack status"
    assert stack_command("status", tmp_path / ".loadcheck") == "loadcheck stack status"
    other = tmp_path / "my state"
    assert stack_command("down", other) == f"loadcheck stack down --state-dir '{other}'"
