"""dynamodb_contents: every acknowledged write is in the table, unchanged, and nothing else is.

Expected (from the ledger), for every item key a write request of this run named:

- a 2xx write: the item is stored and its digest (``loadcheck.core.ledger.item_digest`` of the stored
  item as plain JSON, :func:`loadcheck.core.plain_items.plain_item`) equals the digest of what was sent;
  missing = **lost**, different = **altered**;
- a 4xx write (409 conflict, 400, 429 throttled...): the service refused it, so it must not be
  what is stored (a refused write that landed = **rejected_landed**); a 409 implies the key was
  taken, so an absent item under a 409 is lost too (**conflict_without_item**);
- a write whose outcome the client never learned (status 0, timeout, connection error, 5xx):
  **indeterminate**, reported with whether it landed; never a failure by itself; those inside
  an outage (run.json ``outages``: a killed service) are counted as ``indeterminate_in_outage``;
  writes acknowledged outside (and inside) outages are held to the table all the same;
- forced collisions (several writes, one key): first writer wins; exactly one 2xx, whose item is
  the stored one, the others refused (409). Two 2xx for one key = **double_acknowledged**.

Seen (from the table): every item in the run's partitions (the hash-key values the run wrote).
When the table has point-in-time recovery and the target names an export bucket, they are read
from DynamoDB's export to S3 as of the run's end (``checks.table_export``), which consumes none of
the table's capacity: ``rcu_consumed_by_check`` is 0 and ``source`` is ``export``. Otherwise
(``source`` ``query``, and the evidence says why: no bucket, PITR off, the export refused or
failed) they are read by Query per partition, strongly consistent (an eventually consistent read may miss a write
acknowledged a moment ago, DDB:HowItWorks.ReadConsistency), paginated, with
``ReturnConsumedCapacity=TOTAL`` summed and reported as the check's own RCU. An item no request
wrote = **phantom**. Reads back off on ProvisionedThroughputExceededException (a 1-RCU table
throttles a check reading thousands of items) and report how long they waited; running out of
budget is ``error``, never a pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from checks import table_export
from checks.framework import (
    BackoffStats,
    Budget,
    BudgetExceeded,
    CheckContext,
    budget_note,
    call_with_backoff,
    is_write,
    key_str,
)
from loadcheck.core.ledger import item_digest, outcome
from loadcheck.core.plain_items import plain_item
from loadcheck.core.results import CheckResult

NAME = "dynamodb_contents"
PAGE_LIMIT = 400  # items per Query page: ~40 KB of our items, ~10 RCU strong; keeps debt small
FAIL_KINDS = ("lost", "altered", "phantom", "double_acknowledged", "rejected_landed", "conflict_without_item")
PER_KIND_EVIDENCE = 5


@dataclass(slots=True)
class Attempt:
    outcome: str  # ok | rejected | unknown
    status: int
    error: str | None
    digest: str
    request_id: str | None
    seq: tuple[str, int]
    in_outage: bool = False


@dataclass
class LedgerWrites:
    attempts: dict[str, list[Attempt]] = field(default_factory=dict)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # key string -> the key, by attribute
    partitions: set[str] = field(default_factory=set)
    records: int = 0
    last_key: dict[str, Any] = field(default_factory=dict)  # partition -> the greatest range-key value written

    def expected(self) -> dict[str, set[str]]:
        """Digests that may legitimately be stored under each key (acknowledged or indeterminate)."""
        return {ks: {a.digest for a in atts if a.outcome != "rejected"} for ks, atts in self.attempts.items()}


def collect_writes(ctx: CheckContext, hash_key: str) -> LedgerWrites:
    out = LedgerWrites()
    for rec in ctx.ledger():
        out.records += 1
        if not is_write(rec):
            continue
        key = rec["item_key"]
        ks = key_str(key)
        digest = rec.get("item_digest") or (item_digest(rec["item"]) if rec.get("item") is not None else "")
        out.attempts.setdefault(ks, []).append(
            Attempt(
                outcome=outcome(rec),
                status=int(rec.get("status") or 0),
                error=rec.get("error"),
                digest=digest,
                request_id=rec.get("request_id"),
                seq=(str(rec.get("worker")), int(rec.get("seq", 0))),
                in_outage=ctx.outage_of(rec) is not None,
            )
        )
        out.keys.setdefault(ks, key)
        if hash_key in key:
            part = str(key[hash_key])
            out.partitions.add(part)
            rng = next((v for k, v in key.items() if k != hash_key), None)
            if rng is not None and (part not in out.last_key or str(rng) > str(out.last_key[part])):
                out.last_key[part] = rng
    return out


@dataclass
class TableRead:
    items: dict[str, str] = field(default_factory=dict)  # key string -> digest
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # key string -> the key
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)  # a few stored items, for evidence
    rcu: float = 0.0
    pages: int = 0
    backoff: BackoffStats = field(default_factory=BackoffStats)
    source: str = "query"  # or "export"
    keep_keys: bool = True  # keys are needed only to tell a cut ledger's tail from phantoms
    notes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, raw: dict[str, Any], hash_key: str, range_key: str | None, expected: dict[str, set[str]]) -> None:
        """One stored item (DynamoDB JSON): its digest, its key, and the item itself as evidence
        when it is not what the ledger expects there (at most 50)."""
        item = plain_item(raw)
        key = {hash_key: item.get(hash_key)}
        if range_key:
            key[range_key] = item.get(range_key)
        ks = key_str(key)
        digest = item_digest(item)
        self.items[ks] = digest
        if self.keep_keys:
            self.keys[ks] = key
        if digest not in expected.get(ks, ()) and len(self.samples) < 50:
            self.samples[ks] = item


def read_export(
    items: Iterator[dict[str, Any]],
    hash_key: str,
    range_key: str | None,
    partitions: set[str],
    *,
    expected: dict[str, set[str]],
    out: TableRead,
) -> TableRead:
    """Keep the export's items that lie in the run's partitions (the scope the Query path reads)."""
    for raw in items:
        h = raw.get(hash_key)
        if not isinstance(h, dict) or str(next(iter(h.values()), "")) not in partitions:
            continue
        out.add(raw, hash_key, range_key, expected)
    return out


def read_partitions(
    ctx: CheckContext,
    table: str,
    hash_key: str,
    range_key: str | None,
    partitions: set[str],
    *,
    budget: Any,
    expected: dict[str, set[str]],
) -> TableRead:
    """Query every partition; keep each item's digest, and the item itself when it is not what
    the ledger expects there (evidence for altered/phantom, at most 50)."""
    client = ctx.client("dynamodb")
    out = TableRead()
    for n, part in enumerate(sorted(partitions), 1):
        start_key: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": table,
                "KeyConditionExpression": "#h = :h",
                "ExpressionAttributeNames": {"#h": hash_key},
                "ExpressionAttributeValues": {":h": {"S": part}},
                "ConsistentRead": True,
                "ReturnConsumedCapacity": "TOTAL",
                "Limit": int(ctx.options.get("dynamodb_page_limit", PAGE_LIMIT)),
            }
            if start_key:
                kwargs["ExclusiveStartKey"] = start_key
            query_kwargs = dict(kwargs)

            def query(kw: dict[str, Any] = query_kwargs) -> dict[str, Any]:
                return dict(client.query(**kw))

            page: dict[str, Any] = call_with_backoff(
                query,
                budget=budget,
                stats=out.backoff,
                on_throttle=lambda k, w: ctx.say(f"{NAME}: table throttled our read ({k}x), waiting {w:.1f}s"),
            )
            out.pages += 1
            if out.pages % 10 == 0:  # a large partition on a 1-RCU table takes minutes: show it moving
                ctx.say(
                    f"{NAME}: {len(out.items)} items read in {out.pages} pages, {out.rcu:g} RCU, "
                    f"{out.backoff.waited_s:.0f}s waited on throttling"
                )
            out.rcu += float((page.get("ConsumedCapacity") or {}).get("CapacityUnits") or 0.0)
            for raw in page.get("Items", []):
                out.add(raw, hash_key, range_key, expected)
            start_key = page.get("LastEvaluatedKey")
            if not start_key:
                break
            if budget.expired:
                raise BudgetExceeded(f"read {len(out.items)} items; partition {part!r} not finished")
        ctx.say(f"{NAME}: partition {n}/{len(partitions)} read, {len(out.items)} items, {out.rcu:g} RCU")
    return out


def _key_schema(ctx: CheckContext) -> tuple[str, str | None]:
    try:
        desc = ctx.client("dynamodb").describe_table(TableName=ctx.target.table_name)["Table"]
        schema = {k["KeyType"]: k["AttributeName"] for k in desc["KeySchema"]}
        return schema["HASH"], schema.get("RANGE")
    except Exception:  # noqa: BLE001 - fall back to the description; the Query will report a real problem
        return ctx.description.table.hash_key, ctx.description.table.range_key


def run(ctx: CheckContext) -> CheckResult:
    budget = ctx.budget()
    table = ctx.target.table_name
    hash_key, range_key = _key_schema(ctx)
    writes = collect_writes(ctx, hash_key)
    if not writes.attempts:
        return CheckResult(
            NAME,
            "skipped",
            "the run sent no writes: nothing to reconcile",
            reason="no write requests in the ledger",
            figures={"ledger_records": writes.records},
        )
    if ctx.stack_note:
        return CheckResult(NAME, "error", f"cannot read the run's items: {ctx.stack_note}", reason=ctx.stack_note)
    try:
        seen = read_table(ctx, table, hash_key, range_key, writes, budget)
    except BudgetExceeded as exc:
        return CheckResult(
            NAME,
            "error",
            f"could not read the run's partitions of {table} within the budget: {exc}",
            reason=f"budget {budget.seconds:.0f}s exhausted; raise it with --check-budget",
            figures={"partitions": len(writes.partitions)},
        )
    except Exception as exc:  # noqa: BLE001 - any failure to read is an error, never a pass
        return CheckResult(NAME, "error", f"could not read table {table}: {exc}", reason=str(exc))
    return reconcile(writes, seen, table=table, budget=budget, tail_unknown=ctx.ledger_tail_unknown, hash_key=hash_key)


def read_table(
    ctx: CheckContext, table: str, hash_key: str, range_key: str | None, writes: LedgerWrites, budget: Budget
) -> TableRead:
    """From the export when it can be used (no table capacity), else by Query with backoff."""
    expected = writes.expected()
    plan = table_export.export_plan(ctx, table)
    why = plan
    if isinstance(plan, table_export.ExportPlan):
        try:
            desc = table_export.run_export(ctx, plan, budget, name=NAME)
            opener = table_export.s3_opener(ctx.client("s3"), plan.bucket)
            files = table_export.export_files(opener, desc["ExportManifest"])
            out = TableRead(source="export", keep_keys=ctx.ledger_tail_unknown, pages=len(files))
            out.notes.append(
                {
                    "kind": "note",
                    "detail": f"read from export {desc['ExportArn']} as of {desc.get('ExportTime')} "
                    f"(s3://{plan.bucket}/{plan.prefix}/, {desc.get('ItemCount')} items in the table): "
                    "no table capacity consumed",
                }
            )
            items = table_export.export_items(opener, files)
            return read_export(items, hash_key, range_key, writes.partitions, expected=expected, out=out)
        except table_export.ExportFailed as exc:
            why = f"the export failed ({exc})"
    ctx.say(f"{NAME}: reading {len(writes.partitions)} partition(s) of {table} by Query ({budget_note(budget)})")
    seen = read_partitions(ctx, table, hash_key, range_key, writes.partitions, budget=budget, expected=expected)
    seen.notes.append({"kind": "note", "detail": f"read by Query, consuming table capacity: {why}"})
    return seen


def _after_cut(writes: LedgerWrites, key: dict[str, Any] | None, hash_key: str) -> bool:
    """True for a key beyond the last one the ledger recorded in its partition: the load
    generator's keys grow within a partition, so an item there was written after the cut."""
    if not key or hash_key not in key:
        return False
    part = str(key[hash_key])
    rng = next((v for k, v in key.items() if k != hash_key), None)
    return part in writes.last_key and rng is not None and str(rng) > str(writes.last_key[part])


def reconcile(
    writes: LedgerWrites,
    seen: TableRead,
    *,
    table: str,
    budget: Any,
    tail_unknown: bool = False,
    hash_key: str = "date",
) -> CheckResult:
    """Ledger against table. ``tail_unknown``: the ledger was cut by a killed writer, so items
    beyond its last key in a partition are the unrecorded tail, not phantoms."""
    found: dict[str, list[dict[str, Any]]] = {k: [] for k in FAIL_KINDS}
    indeterminate: list[dict[str, Any]] = []
    fig: dict[str, Any] = {
        "acknowledged": 0,
        "found": 0,
        "lost": 0,
        "altered": 0,
        "phantom": 0,
        "indeterminate_landed": 0,
        "indeterminate_not_landed": 0,
        "indeterminate_in_outage": 0,
        "collisions": 0,
        "collisions_resolved": 0,
        "rejected": 0,
        "double_acknowledged": 0,
        "rejected_landed": 0,
        "conflict_without_item": 0,
    }

    def bad(kind: str, ks: str, a: Attempt | None, detail: str) -> None:
        fig[kind] = fig.get(kind, 0) + 1
        if len(found[kind]) < PER_KIND_EVIDENCE:
            found[kind].append(
                {
                    "kind": kind,
                    "key": ks,
                    # By attribute name, as the table's key schema names them.
                    "item_key": writes.keys.get(ks) or seen.keys.get(ks),
                    "request_id": a.request_id if a else None,
                    "status": a.status if a else None,
                    "detail": detail,
                    **({"stored": seen.samples[ks]} if ks in seen.samples else {}),
                }
            )

    for ks, attempts in writes.attempts.items():
        stored = seen.items.get(ks)
        acks = [a for a in attempts if a.outcome == "ok"]
        refused = [a for a in attempts if a.outcome == "rejected"]
        unknown = [a for a in attempts if a.outcome == "unknown"]
        fig["rejected"] += len(refused)
        if len(attempts) > 1:
            fig["collisions"] += 1
        fig["acknowledged"] += len(acks)
        if len(acks) > 1:
            bad(
                "double_acknowledged",
                ks,
                acks[1],
                f"{len(acks)} writes to one key were acknowledged (first writer must win, the rest get 409): "
                + ", ".join(str(a.request_id) for a in acks[:4]),
            )
        winner = acks[0] if acks else None
        if winner is not None:
            if stored is None:
                bad("lost", ks, winner, f"acknowledged with {winner.status} but not in {table}")
            elif stored != winner.digest:
                bad("altered", ks, winner, f"stored digest {stored[:12]} != sent {winner.digest[:12]}")
            else:
                fig["found"] += 1
                if len(attempts) > 1 and len(acks) == 1:
                    fig["collisions_resolved"] += 1
        for a in unknown:
            landed = stored is not None and stored == a.digest
            fig["indeterminate_landed" if landed else "indeterminate_not_landed"] += 1
            fig["indeterminate_in_outage"] += int(a.in_outage)
            if len(indeterminate) < PER_KIND_EVIDENCE:
                indeterminate.append(
                    {
                        "kind": "indeterminate",
                        "key": ks,
                        "request_id": a.request_id,
                        "status": a.status,
                        "error": a.error,
                        "landed": landed,
                    }
                )
        if winner is None and stored is not None:
            if any(stored == a.digest for a in unknown):
                pass  # an indeterminate write landed: allowed, counted above
            elif any(stored == a.digest for a in refused):
                a = next(a for a in refused if stored == a.digest)
                bad("rejected_landed", ks, a, f"answered {a.status} (refused) yet the item is stored")
            else:
                bad("altered", ks, attempts[0], "stored item matches no write of this run")
        if stored is None and winner is None and any(a.status == 409 for a in refused):
            a = next(a for a in refused if a.status == 409)
            bad("conflict_without_item", ks, a, "answered 409 (key taken) but no item has that key")
    unrecorded = 0
    for ks in seen.items.keys() - writes.attempts.keys():
        if tail_unknown and _after_cut(writes, seen.keys.get(ks), hash_key):
            unrecorded += 1
            continue
        bad("phantom", ks, None, f"in {table} but no request of this run wrote it")
    if unrecorded:
        indeterminate.insert(
            0,
            {
                "kind": "note",
                "detail": f"{unrecorded} item(s) beyond the ledger's cut: writes the killed load generator sent but "
                "never recorded (their outcome is unknown; not phantoms)",
            },
        )

    fig.update(
        {
            "partitions": len(writes.partitions),
            "items_read": len(seen.items),
            "pages": seen.pages,
            "rcu_consumed_by_check": round(seen.rcu, 2),
            "read_throttles": seen.backoff.throttles,
            "backoff_s": round(seen.backoff.waited_s, 2),
            "budget_s": budget.seconds,
            "unrecorded_after_ledger_cut": unrecorded,
            "source": seen.source,
        }
    )
    failures = {k: fig[k] for k in FAIL_KINDS if fig.get(k)}
    evidence = [e for kind in FAIL_KINDS for e in found[kind]] + indeterminate + seen.notes
    how = "its export to S3" if seen.source == "export" else "Query"
    where = f"table {table} read by {how}, {len(writes.partitions)} partition(s)"
    if failures:
        what = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in failures.items())
        return CheckResult(
            NAME, "fail", f"{what} ({fig['acknowledged']} acknowledged writes; {where})", figures=fig, evidence=evidence
        )
    if not fig["acknowledged"]:
        return CheckResult(
            NAME,
            "skipped",
            f"no write of this run was acknowledged ({len(writes.attempts)} key(s) written, none answered 2xx): "
            f"nothing to read back ({where})",
            reason="no acknowledged write to verify",
            figures=fig,
            evidence=evidence,
        )
    summary = (
        f"all {fig['acknowledged']} acknowledged writes stored unchanged, no phantoms; "
        f"{fig['indeterminate_landed']} indeterminate landed, {fig['indeterminate_not_landed']} not; "
        f"{fig['collisions']} collisions resolved first-writer-wins ({where}, {fig['rcu_consumed_by_check']:g} RCU)"
    )
    return CheckResult(NAME, "pass", summary, figures=fig, evidence=evidence)
