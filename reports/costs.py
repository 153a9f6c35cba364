"""Monthly cost at a target rate: DynamoDB provisioned vs on-demand, plus Lambda and API Gateway.

Prices come from ``reports/prices.json`` (dated; region shown in every output) or a file the
user passes (``--prices FILE``, same shape). Each price is a line with its unit, regions, source
URL, date and whether a source confirmed it (``confirmed``; see ``confirmed_means`` in the file);
a plain number (the shape of schema 1) is read too, as an unconfirmed line with no source.
Every row of the cost table names the price lines it rests on and which of them are
unconfirmed. Arithmetic, per month of ``hours_per_month`` hours:

- provisioned: recommended WCU x WCU-hour price + recommended RCU x RCU-hour price;
- on-demand: write request units (= WCU per write, 1 KB units) and read request units (= RCU,
  4 KB units, half for eventually consistent reads) per month x the per-million prices;
- Lambda: invocations x request price + invocations x billed seconds x memory GB x GB-second
  price (the Arm rate: reference_stack/terraform/lambda.tf deploys arm64; billed seconds
  estimated by the route's p50 latency, an upper bound: it includes the gateway and the
  network); free tier not deducted;
- API Gateway HTTP API: requests x the per-million price of the tier;
- every other billable resource of the stack (OpenSearch, CloudWatch Logs, DynamoDB storage and
  PITR, the S3 export bucket, Route 53): :mod:`reports.bill`, passed in as ``stack_lines``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadcheck.core.errors import ConfigError
from loadcheck.core.jsonfile import read_json_object

DEFAULT_PRICES = Path(__file__).resolve().parent / "prices.json"
REQUIRED = {
    "dynamodb": (
        "provisioned_wcu_hour",
        "provisioned_rcu_hour",
        "on_demand_write_request_units_per_million",
        "on_demand_read_request_units_per_million",
    ),
    "lambda": ("requests_per_million", "gb_second"),
    "apigateway_http": ("requests_per_million_first_300m", "requests_per_million_over_300m"),
    "opensearch": ("ebs_gp3_gb_month",),
    "cloudwatch_logs": ("ingestion_per_gb", "storage_gb_month"),
    "route53": ("hosted_zone_month",),
    "s3": ("standard_gb_month",),
}
BILL_DYNAMODB = ("storage_gb_month", "pitr_gb_month", "export_per_gb")
# Which service's page a line's fallback source is, when a plain number gives none.
_SOURCE_OF = {"apigateway_http": "apigateway"}


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _lines(
    node: dict[str, Any], path: tuple[str, ...], p: Path, doc: dict[str, Any], out: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """``node`` with every price line replaced by its number; each line's metadata into ``out``
    under its dotted key (``opensearch.instance_hour.t3.small.search``)."""
    numbers: dict[str, Any] = {}
    for name, value in node.items():
        key = ".".join((*path, name))
        if isinstance(value, dict) and "price" in value:
            if not _is_number(value["price"]):
                raise ConfigError(
                    f"{p}: price line {key} has no number in `price` ({value['price']!r})",
                    value=value["price"],
                    hint=f"see {DEFAULT_PRICES} for the shape of a price line",
                )
            confirmed = value.get("confirmed") is True
            out[key] = {
                "key": key,
                "price": float(value["price"]),
                "unit": str(value.get("unit", "")),
                "source": str(value.get("source", "")),
                "as_of": str(value.get("as_of", "")),
                "confirmed": confirmed,
                "note": str(value.get("note") or ("" if confirmed else f"`confirmed` is not true in {p}")),
            }
            numbers[name] = float(value["price"])
        elif isinstance(value, dict):
            numbers[name] = _lines(value, (*path, name), p, doc, out)
        elif _is_number(value):
            service = path[0] if path else name
            out[key] = {
                "key": key,
                "price": float(value),
                "unit": "",
                "source": str((doc.get("sources") or {}).get(_SOURCE_OF.get(service, service), "")),
                "as_of": str(doc.get("as_of", "")),
                "confirmed": False,
                "note": f"a plain number in {p}: no source or date of its own",
            }
            numbers[name] = value
        else:
            numbers[name] = value
    return numbers


def load_prices(path: str | Path | None, region: str) -> dict[str, Any]:
    """The price table for ``region`` (numbers, as the arithmetic reads them) plus ``as_of``,
    ``currency``, ``region``, ``source_file`` and ``lines``: each price line's metadata by key."""
    p = Path(path) if path else DEFAULT_PRICES
    doc = read_json_object(
        p,
        what="--prices:",
        hint=f"it must have the shape of {DEFAULT_PRICES}",
        missing_hint=f"copy {DEFAULT_PRICES} and edit it",
    )
    regions = doc.get("regions")
    if not isinstance(regions, dict) or region not in regions:
        known = ", ".join(sorted(regions or {})) or "none"
        raise ConfigError(
            f"no prices for region {region!r} in {p} (it has: {known})",
            value=region,
            hint=f"pass --region one of those, or --prices FILE with a copy of {DEFAULT_PRICES} "
            f"extended with {region} from the AWS pricing pages",
        )
    lines: dict[str, dict[str, Any]] = {}
    table = _lines(regions[region] if isinstance(regions[region], dict) else {}, (), p, doc, lines)
    for service, keys in {**REQUIRED, "dynamodb": REQUIRED["dynamodb"] + BILL_DYNAMODB}.items():
        missing = [k for k in keys if not _is_number((table.get(service) or {}).get(k))]
        if missing:
            raise ConfigError(
                f"{p}: regions.{region}.{service} lacks a number for {', '.join(missing)}",
                value=missing,
                hint=f"see {DEFAULT_PRICES} for the expected keys",
            )
    return {
        **table,
        "as_of": doc.get("as_of", "unknown"),
        "currency": doc.get("currency", "USD"),
        "region": region,
        "hours": float(doc.get("hours_per_month", 730)),
        "source_file": str(p),
        "note": doc.get("note", ""),
        "sources": dict(doc.get("sources") or {}),
        "lines": lines,
    }


def unconfirmed_of(prices: dict[str, Any], keys: list[str]) -> list[str]:
    """The keys among ``keys`` whose price line is not confirmed (a key the table lacks counts)."""
    lines = prices.get("lines") or {}
    return [k for k in keys if not (lines.get(k) or {}).get("confirmed")]


def monthly_costs(
    *,
    prices: dict[str, Any],
    wcu: float,
    rcu: float,
    wcu_per_s: float,
    rcu_per_s: float,
    requests_per_s: float,
    lambda_invocations_per_s: dict[str, float],
    lambda_seconds: dict[str, float],
    lambda_memory_mb: dict[str, int],
    stack_lines: list[dict[str, Any]] | None = None,
    excluded: str = "",
) -> dict[str, Any]:
    """A cost table: rows of {item, provisioned, on_demand, source, prices, unconfirmed} (the keys
    of the price lines a row rests on, and those of them not confirmed); ``stack_lines``
    (:func:`reports.bill.stack_bill`) are the same in both table modes. ``price_lines`` holds each
    price used with its source and date, ``unconfirmed`` says which lines rest on unconfirmed ones."""
    hours = prices["hours"]
    seconds = hours * 3600.0
    ddb, lam, api = prices["dynamodb"], prices["lambda"], prices["apigateway_http"]
    prov_w = wcu * ddb["provisioned_wcu_hour"] * hours
    prov_r = rcu * ddb["provisioned_rcu_hour"] * hours
    od_w = wcu_per_s * seconds / 1e6 * ddb["on_demand_write_request_units_per_million"]
    od_r = rcu_per_s * seconds / 1e6 * ddb["on_demand_read_request_units_per_million"]
    lam_total = 0.0
    for fn, inv in lambda_invocations_per_s.items():
        n = inv * seconds
        lam_total += n / 1e6 * lam["requests_per_million"]
        lam_total += n * lambda_seconds.get(fn, 0.1) * lambda_memory_mb.get(fn, 128) / 1024.0 * lam["gb_second"]
    req = requests_per_s * seconds
    first = min(req, 300e6)
    api_total = (
        first / 1e6 * api["requests_per_million_first_300m"]
        + max(0.0, req - 300e6) / 1e6 * api["requests_per_million_over_300m"]
    )
    src = prices.get("sources") or {}
    api_keys = ["apigateway_http.requests_per_million_first_300m"]
    if req > 300e6:
        api_keys.append("apigateway_http.requests_per_million_over_300m")
    rows = [
        _row(
            prices,
            f"DynamoDB writes ({wcu:g} WCU provisioned / {wcu_per_s:.2f} WRU/s on demand)",
            prov_w,
            od_w,
            src.get("dynamodb", ""),
            {
                "provisioned": ["dynamodb.provisioned_wcu_hour"],
                "on_demand": ["dynamodb.on_demand_write_request_units_per_million"],
            },
        ),
        _row(
            prices,
            f"DynamoDB reads ({rcu:g} RCU provisioned / {rcu_per_s:.2f} RRU/s on demand)",
            prov_r,
            od_r,
            src.get("dynamodb", ""),
            {
                "provisioned": ["dynamodb.provisioned_rcu_hour"],
                "on_demand": ["dynamodb.on_demand_read_request_units_per_million"],
            },
        ),
        _row(
            prices,
            "Lambda (requests + GB-seconds)",
            lam_total,
            lam_total,
            src.get("lambda", ""),
            {"both": ["lambda.requests_per_million", "lambda.gb_second"]},
        ),
        _row(
            prices,
            f"API Gateway HTTP API ({req / 1e6:,.1f} M requests)",
            api_total,
            api_total,
            src.get("apigateway", ""),
            {"both": api_keys},
        ),
    ]
    for line in stack_lines or []:
        row = _row(prices, line["item"], line["monthly"], line["monthly"], line["source"], {"both": line["prices"]})
        rows.append({**row, "basis": line["basis"]})
    total_p = sum(r["provisioned"] for r in rows)
    total_o = sum(r["on_demand"] for r in rows)
    used = sorted({k for r in rows for k in r["prices"]})
    flagged = sorted({k for r in rows for k in r["unconfirmed"]})
    rows.append(
        {
            "item": "total per month",
            "provisioned": total_p,
            "on_demand": total_o,
            "source": "",
            "prices": used,
            "unconfirmed": flagged,
        }
    )
    cheaper = "provisioned" if prov_w + prov_r <= od_w + od_r else "on-demand"
    return {
        "region": prices["region"],
        "as_of": prices["as_of"],
        "currency": prices["currency"],
        "rows": rows,
        "cheaper_table_mode": cheaper,
        "source_file": prices["source_file"],
        "excluded": excluded,
        "price_lines": [_line_of(prices, k) for k in used],
        "unconfirmed": _unconfirmed_note(prices, rows),
        "note": f"{prices['currency']} per month of {hours:g} h, price table of {prices['as_of']} for {prices['region']} "
        f"({prices['source_file']}); provisioned at the recommended capacity, on-demand at the target rate. "
        + prices["note"],
    }


def _row(
    prices: dict[str, Any],
    item: str,
    provisioned: float,
    on_demand: float,
    source: str,
    keys: dict[str, list[str]],
) -> dict[str, Any]:
    """A cost row with the price lines it rests on (``prices``) and the unconfirmed ones among them;
    a row of 0 in both modes (no usage) does not depend on its prices, so none is flagged."""
    used = list(dict.fromkeys(k for ks in keys.values() for k in ks))
    return {
        "item": item,
        "provisioned": provisioned,
        "on_demand": on_demand,
        "source": source,
        "prices": used,
        "unconfirmed": unconfirmed_of(prices, used) if provisioned or on_demand else [],
    }


def _line_of(prices: dict[str, Any], key: str) -> dict[str, Any]:
    return dict((prices.get("lines") or {}).get(key) or {"key": key, "confirmed": False, "note": "not in the table"})


def _unconfirmed_note(prices: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """One sentence naming the bill's lines that rest on unconfirmed prices, and those prices."""
    flagged = [r["item"].split(" (")[0] for r in rows[:-1] if r["unconfirmed"]]
    keys = rows[-1]["unconfirmed"]
    if not keys:
        return "Every price of this bill is confirmed by a dated source (prices.json)."
    return (
        f"{len(flagged)} of the {len(rows) - 1} lines rest on unconfirmed prices ({', '.join(flagged)}): "
        + ", ".join(f"{k} = {_line_of(prices, k).get('price', '?'):g}" for k in keys)
        + f"; see `note` of each in {prices['source_file']}."
    )
