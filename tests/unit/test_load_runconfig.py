"""Run options: parsing, validation, and messages that name the value and the fix."""

from __future__ import annotations

import json

import pytest

from loadcheck.core.errors import ConfigError, TargetError
from loadcheck.core.runconfig import (
    LoadConfig,
    RunOptions,
    check_routes,
    parse_duration,
    parse_fault,
    parse_mix,
    parse_route_ms,
    parse_steps,
    parse_think_time,
)
from locustfiles.workload import EVENTLOG_WEIGHTS


@pytest.mark.parametrize(
    "text,seconds",
    [("45s", 45), ("2m", 120), ("1m30s", 90), ("1h", 3600), ("250ms", 0.25), ("90", 90), (" 10 s ", 10), (12, 12)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["60 sec", "abc", "", "1x", "-5s", "0", "s"])
def test_bad_duration_names_value_and_fix(text):
    with pytest.raises(ConfigError) as err:
        parse_duration(text)
    assert repr(text) in str(err.value) and "fix:" in str(err.value)


def test_mix():
    assert parse_mix("writes=6,reads=3,search=1") == {"writes": 6, "reads": 3, "search": 1}
    assert parse_mix("writes=1") == {"writes": 1}
    # Kinds are the workload's: any name parses here, the workload refuses one it lacks.
    assert parse_mix("orders=2,lookups=1") == {"orders": 2, "lookups": 1}


@pytest.mark.parametrize(
    "text,needle",
    [
        ("writes=6,de letes=1", "'de letes'"),
        ("writes=x", "'x'"),
        ("writes", "no weight"),
        ("writes=0", "weight 0"),
        ("reads=-1", "below zero"),
    ],
)
def test_bad_mix(text, needle):
    with pytest.raises(ConfigError) as err:
        parse_mix(text)
    assert needle in str(err.value) and "--mix" in str(err.value) and "fix:" in str(err.value)


def test_faults():
    assert parse_fault("drop-writes=0.1") == ("drop-writes", 0.1)
    assert parse_fault("throttle-status=500") == ("throttle-status", 500)
    assert parse_fault("blank-access-log-field=ip") == ("blank-access-log-field", "ip")
    with pytest.raises(ConfigError, match="unknown fault 'drop-everything'") as err:
        parse_fault("drop-everything=1")
    assert "drop-writes" in str(err.value)  # the fix lists the known ones
    with pytest.raises(ConfigError, match="not NAME=VALUE"):
        parse_fault("drop-writes")


def test_route_thresholds():
    assert parse_route_ms("POST /events=500") == ("POST /events", 500.0)
    assert parse_route_ms("ALL=800") == ("all", 800.0)
    assert parse_route_ms("GET /events/{date}=300") == ("GET /events/{date}", 300.0)
    with pytest.raises(ConfigError, match="'FETCH /events' is not a route key"):
        parse_route_ms("FETCH /events=5")
    # Which routes exist is the stack description's to say.
    routes = ("GET /events", "GET /events/{date}")
    check_routes(["GET /events/{date}", "all"], routes)
    with pytest.raises(ConfigError, match="'PUT /events' is not a route of the stack description") as err:
        check_routes(["PUT /events"], routes)
    assert "GET /events/{date}" in str(err.value)
    with pytest.raises(ConfigError, match="'soon' is not a number"):
        parse_route_ms("GET /events=soon")


def test_steps_and_think_time():
    assert parse_steps("1,2,5,10") == (1.0, 2.0, 5.0, 10.0)
    with pytest.raises(ConfigError, match="'two'"):
        parse_steps("1,two")
    assert parse_think_time("0.5-2") == (0.5, 2.0)
    with pytest.raises(ConfigError, match="MIN <= MAX"):
        parse_think_time("3-1")


def test_option_combinations_are_checked():
    with pytest.raises(ConfigError, match="--rate"):
        RunOptions(shape="constant-rate", rate=0)
    with pytest.raises(ConfigError, match="--users"):
        RunOptions(shape="ramp", rate=None, users=None)
    with pytest.raises(ConfigError, match="--steps and --step-duration"):
        RunOptions(shape="step", steps=(1.0,))
    with pytest.raises(ConfigError, match="'mars'"):
        RunOptions(target="mars")


def test_rate_schedule():
    step = RunOptions(shape="step", rate=None, steps=(1, 2, 5), step_duration_s=10)
    assert step.total_duration_s == 30
    assert step.segments() == [(0, 10, 1), (10, 20, 2), (20, 30, 5)]
    const = RunOptions(rate=8, duration_s=5)
    assert const.segments() == [(0, 5, 8)]
    assert const.pool_size() == 32 and RunOptions(rate=8, users=3).pool_size() == 3


def test_defaults_outrun_one_wcu_and_a_full_burst_bucket():
    """make run's defaults must show throttling: writes beyond 1 WCU x duration + 300 s burst."""
    opts = RunOptions()
    assert opts.mix == {}  # the workload's own weights: the reference workload's
    mix = EVENTLOG_WEIGHTS
    writes_per_s = opts.rate * mix["writes"] / sum(mix.values())
    assert writes_per_s * opts.duration_s > 300 + 1 * opts.duration_s


def test_load_config_round_trip(tmp_path):
    opts = RunOptions(rate=3, steps=(), mix={"writes": 1, "reads": 2, "search": 0}, thresholds=("p95<5ms",))
    cfg = LoadConfig(run_id="r", run_dir=str(tmp_path), options=opts, target={"url": "https://x"})
    path = tmp_path / "c.json"
    path.write_text(cfg.to_json())
    assert LoadConfig.read(path) == cfg
    data = json.loads(path.read_text())
    data["options"]["bogus"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="unknown keys: bogus"):
        LoadConfig.read(path)
    with pytest.raises(ConfigError, match="does not exist"):
        LoadConfig.read(tmp_path / "missing.json")


def test_aws_target_from_an_outputs_file(tmp_path):
    from loadcheck.commands.run_steps import aws_target
    from tests.unit.test_aws_target import tf_outputs

    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(tf_outputs()))
    # The caller assumes the requester role before any load starts: a wrong --profile stops the run.
    with pytest.raises(TargetError, match="--profile 'no-such-profile' is not a configured profile") as err:
        aws_target(str(path), None, "no-such-profile")
    assert "--profile names the caller" in (err.value.hint or "")


def test_cli_options_become_run_options():
    from loadcheck.commands.run import build_options

    kw = dict(
        target="local",
        duration="30s",
        rate=None,
        users=None,
        spawn_rate=None,
        shape=None,
        steps=None,
        step_duration=None,
        mix="writes=1",
        workers=0,
        seed=None,
        faults=(),
        collisions="0",
        think_time="0.5-1.5",
    )
    assert build_options(**kw).shape == "constant-rate" and build_options(**kw).rate == 16
    assert build_options(**{**kw, "users": 5}).shape == "ramp"
    step = build_options(**{**kw, "steps": "1,2", "step_duration": "5s"})
    assert (step.shape, step.total_duration_s) == ("step", 10)
    opts = build_options(
        **{
            **kw,
            "faults": ("drop-writes=0.1", "throttle-status=500"),
            "max_p95_ms": ("all=900",),
            "max_error_rate": "0.05",
        }
    )
    assert opts.faults == {"drop-writes": 0.1, "throttle-status": 500}
    # The deprecated spellings become thresholds that fail where they always failed (above the limit).
    assert opts.thresholds == ("p95<=900ms", "error_rate<=5%", "server_error_rate<=1%")
