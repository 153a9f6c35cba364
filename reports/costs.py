"""Monthly cost at a target rate: DynamoDB provisioned vs on-demand, plus Lambda and API Gateway.

Prices come from ``reports/prices.json`` (dated; region shown in every output) or a file the
user passes (``--prices FILE``, same shape). Arithmetic, per month of ``hours_per_month`` hours:

- provisioned: recommended WCU x WCU-hour price + recommended RCU x RCU-hour price;
- on-demand: write request units (= WCU per write, 1 KB units) and read request units (= RCU,
  4 KB units, half for eventually consistent reads) per month x the per-million prices;
- Lambda: invocations x request price + invocations x billed seconds x memory GB x GB-second
  price (billed seconds estimated by the route's p50 latency, an upper bound: it includes the
  gateway and the network); free tier not deducted;
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


def load_prices(path: str | Path | None, region: str) -> dict[str, Any]:
    """The price table for ``region`` plus ``as_of``, ``currency``, ``region``, ``source_file``."""
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
    table = regions[region]
    for service, keys in {**REQUIRED, "dynamodb": REQUIRED["dynamodb"] + BILL_DYNAMODB}.items():
        missing = [k for k in keys if not isinstance((table.get(service) or {}).get(k), (int, float))]
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
    }


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
    """A cost table: rows of {item, provisioned, on_demand, source}; ``stack_lines``
    (:func:`reports.bill.stack_bill`) are the same in both table modes."""
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
    rows = [
        {
            "item": f"DynamoDB writes ({wcu:g} WCU provisioned / {wcu_per_s:.2f} WRU/s on demand)",
            "provisioned": prov_w,
            "on_demand": od_w,
            "source": src.get("dynamodb", ""),
        },
        {
            "item": f"DynamoDB reads ({rcu:g} RCU provisioned / {rcu_per_s:.2f} RRU/s on demand)",
            "provisioned": prov_r,
            "on_demand": od_r,
            "source": src.get("dynamodb", ""),
        },
        {
            "item": "Lambda (requests + GB-seconds)",
            "provisioned": lam_total,
            "on_demand": lam_total,
            "source": src.get("lambda", ""),
        },
        {
            "item": f"API Gateway HTTP API ({req / 1e6:,.1f} M requests)",
            "provisioned": api_total,
            "on_demand": api_total,
            "source": src.get("apigateway", ""),
        },
    ]
    for line in stack_lines or []:
        rows.append(
            {
                "item": line["item"],
                "provisioned": line["monthly"],
                "on_demand": line["monthly"],
                "source": line["source"],
                "basis": line["basis"],
            }
        )
    total_p = sum(r["provisioned"] for r in rows)
    total_o = sum(r["on_demand"] for r in rows)
    rows.append({"item": "total per month", "provisioned": total_p, "on_demand": total_o, "source": ""})
    cheaper = "provisioned" if prov_w + prov_r <= od_w + od_r else "on-demand"
    return {
        "region": prices["region"],
        "as_of": prices["as_of"],
        "currency": prices["currency"],
        "rows": rows,
        "cheaper_table_mode": cheaper,
        "source_file": prices["source_file"],
        "excluded": excluded,
        "note": f"{prices['currency']} per month of {hours:g} h, prices as of {prices['as_of']} for {prices['region']} "
        f"({prices['source_file']}); provisioned at the recommended capacity, on-demand at the target rate. "
        + prices["note"],
    }
