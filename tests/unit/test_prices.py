"""The price table: every line sourced and dated, and the bill naming what rests on unconfirmed prices."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from loadcheck.bench.synthetic_reports import write_run
from loadcheck.cli import cli
from loadcheck.core.errors import ConfigError
from reports.costs import DEFAULT_PRICES, REQUIRED, load_prices, monthly_costs

DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


def _walk(node: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, value in node.items():
        if isinstance(value, dict) and "price" in value:
            yield ".".join((*path, name)), value
        elif isinstance(value, dict):
            yield from _walk(value, (*path, name))
        else:
            raise AssertionError(f"{'.'.join((*path, name))} is {value!r}, not a price line")


def _doc() -> dict[str, Any]:
    return json.loads(DEFAULT_PRICES.read_text())


def test_every_price_line_has_its_unit_region_source_date_and_confirmation() -> None:
    doc = _doc()
    assert doc["schema"] == 2 and DATE.match(doc["as_of"]) and doc["confirmed_means"]
    for region, table in doc["regions"].items():
        lines = dict(_walk(table))
        for key, line in lines.items():
            where = f"{region} {key}"
            assert isinstance(line["price"], (int, float)) and line["price"] > 0, where
            assert line["unit"].startswith("USD per "), where
            assert region in line["regions"], where
            assert line["source"].startswith("https://"), where
            assert DATE.match(line["as_of"]), where
            assert isinstance(line["confirmed"], bool), where
            assert line["source_kind"] in ("aws", "third-party"), where
            assert line["note"], where  # what the source says, or why it could not be confirmed
            if line["confirmed"]:
                # confirmed means a dated source of 2025 or later states the figure
                assert line["as_of_kind"] in ("shown", "read") and line["as_of"] >= "2025", where
            else:
                assert line["as_of_kind"] == "searched", where
            if "via" in line:
                assert line["via"].startswith("https://"), where
        # every line reaches the reader, and the reader finds every price the bill needs
        prices = load_prices(None, region)
        assert set(prices["lines"]) == set(lines)
        for service, keys in REQUIRED.items():
            assert all(f"{service}.{k}" in lines for k in keys), service


def _plan_run(tmp_path: Path, *extra: str) -> tuple[Path, str]:
    run = write_run(tmp_path / "r", steps=[0.5, 2, 4], step_duration_s=10, mix={"writes": 1}, burst_s=0, checks=None)
    result = CliRunner().invoke(cli, ["capacity", "--from-run", str(run), "--target-rate", "4", *extra])
    assert result.exit_code == 0, result.output
    return run, result.output


def _row_block(output: str, item: str) -> str:
    """The text printed for one bill row: its line and the indented lines under it."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(item))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("      "):
            break
        block.append(line)
    return "\n".join(block)


def test_the_bill_lists_every_line_resting_on_an_unconfirmed_price(tmp_path: Path) -> None:
    run, output = _plan_run(tmp_path)
    lines = load_prices(None, "us-east-1")["lines"]
    cost = json.loads((run / "capacity.json").read_text())["recommendation"]["cost"]
    *rows, total = cost["rows"]
    flagged = []
    for row in rows:
        expected = [k for k in row["prices"] if not lines[k]["confirmed"]]
        if row["provisioned"] == 0 and row["on_demand"] == 0:
            expected = []  # no usage: the figure does not depend on the price
        assert row["unconfirmed"] == expected, row["item"]
        block = _row_block(output, row["item"][:64])
        if expected:
            flagged.append(row)
            assert f"rests on unconfirmed price(s): {', '.join(expected)}" in block, block
        else:
            assert "unconfirmed" not in block, block
    assert flagged, "the default table has unconfirmed prices the default bill uses"
    assert total["unconfirmed"] == sorted({k for r in flagged for k in r["unconfirmed"]})
    assert cost["unconfirmed"] in output and f"{len(flagged)} of the {len(rows)} lines" in cost["unconfirmed"]
    assert {pl["key"] for pl in cost["price_lines"]} == set(total["prices"])
    auto = output.split("auto scaling (writes)")[1].splitlines()[0]
    wcu_unconfirmed = not lines["dynamodb.provisioned_wcu_hour"]["confirmed"]
    assert ("rests on unconfirmed price(s): dynamodb.provisioned_wcu_hour" in auto) == wcu_unconfirmed
    html = (run / "report.html").read_text()
    assert "unconfirmed prices" in html and 'class="unconfirmed"' in html
    for key in total["unconfirmed"]:
        assert key in html


def test_the_flags_follow_the_table(tmp_path: Path) -> None:
    """Confirm every line but two in a copy of the table: the bill flags exactly the rows using those two."""
    doc = _doc()
    for _key, line in _walk(doc["regions"]["us-east-1"]):
        line["confirmed"] = True
    table = doc["regions"]["us-east-1"]
    table["route53"]["hosted_zone_month"]["confirmed"] = False
    table["lambda"]["gb_second"]["confirmed"] = False
    custom = tmp_path / "prices.json"
    custom.write_text(json.dumps(doc))
    run, output = _plan_run(tmp_path, "--prices", str(custom))
    cost = json.loads((run / "capacity.json").read_text())["recommendation"]["cost"]
    flagged = {r["item"]: r["unconfirmed"] for r in cost["rows"] if r["unconfirmed"]}
    assert flagged == {
        "Lambda (requests + GB-seconds)": ["lambda.gb_second"],
        "Route 53 hosted zone loadcheck.test": ["route53.hosted_zone_month"],
        "total per month": ["lambda.gb_second", "route53.hosted_zone_month"],
    }
    assert "rests on unconfirmed price(s): route53.hosted_zone_month" in _row_block(output, "Route 53 hosted zone")
    assert cost["unconfirmed"].startswith("2 of the 12 lines rest on unconfirmed prices (Lambda, Route 53")
    assert "rests on unconfirmed" not in output.split("auto scaling (writes)")[1].splitlines()[0]
    for _key, line in _walk(table):
        line["confirmed"] = True
    custom.write_text(json.dumps(doc))
    run, output = _plan_run(tmp_path / "all", "--prices", str(custom))
    cost = json.loads((run / "capacity.json").read_text())["recommendation"]["cost"]
    assert not any(r["unconfirmed"] for r in cost["rows"]) and "rests on unconfirmed" not in output
    assert cost["unconfirmed"].startswith("Every price of this bill is confirmed")


def _flat(doc: dict[str, Any]) -> dict[str, Any]:
    """The table as schema 1 had it: plain numbers, no line metadata."""

    def strip(node: dict[str, Any]) -> dict[str, Any]:
        return {k: v["price"] if "price" in v else strip(v) for k, v in node.items()}

    return {**doc, "schema": 1, "regions": {r: strip(t) for r, t in doc["regions"].items()}}


def test_a_table_of_plain_numbers_reads_as_unconfirmed_lines(tmp_path: Path) -> None:
    custom = tmp_path / "old.json"
    custom.write_text(json.dumps(_flat(_doc())))
    old, new = load_prices(custom, "us-east-1"), load_prices(None, "us-east-1")
    assert set(old["lines"]) == set(new["lines"])
    for key, line in old["lines"].items():
        assert line["price"] == new["lines"][key]["price"] and not line["confirmed"], key
        assert "plain number" in line["note"] and str(custom) in line["note"], key
    assert old["lines"]["apigateway_http.requests_per_million_first_300m"]["source"].endswith("/api-gateway/pricing/")
    args: dict[str, Any] = {
        "wcu": 10,
        "rcu": 5,
        "wcu_per_s": 7,
        "rcu_per_s": 3,
        "requests_per_s": 10,
        "lambda_invocations_per_s": {"events": 10},
        "lambda_seconds": {"events": 0.1},
        "lambda_memory_mb": {"events": 256},
    }
    a, b = monthly_costs(prices=old, **args), monthly_costs(prices=new, **args)
    assert [(r["provisioned"], r["on_demand"]) for r in a["rows"]] == [
        (r["provisioned"], r["on_demand"]) for r in b["rows"]
    ]
    assert a["rows"][-1]["unconfirmed"] == a["rows"][-1]["prices"]  # nothing in it is confirmed


def test_a_price_line_without_a_number_is_named(tmp_path: Path) -> None:
    doc = _doc()
    doc["regions"]["us-east-1"]["s3"]["standard_gb_month"]["price"] = "0.023 USD"
    custom = tmp_path / "bad.json"
    custom.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"s3\.standard_gb_month") as err:
        load_prices(custom, "us-east-1")
    assert "0.023 USD" in str(err.value)
