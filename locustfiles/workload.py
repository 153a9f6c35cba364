"""What the eventlog users send, without Locust: run-scoped keys, corpus terms, query encoding.

Kept free of Locust imports (Locust monkey-patches with gevent on import) so unit tests and
the CLI can use it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import random
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from loadcheck.core.errors import ConfigError

CORPUS_DIR = Path(__file__).resolve().parent.parent / "reference_stack" / "data"
BUILTIN_TERMS = (
    "lambda",
    "latency",
    "load",
    "ledger",
    "throttle",
    "throughput",
    "table",
    "token",
    "search",
    "signature",
    "gateway",
    "partition",
    "capacity",
    "burst",
    "request",
    "response",
    "dynamodb",
    "opensearch",
    "python",
    "percentile",
    "histogram",
    "worker",
    "master",
    "arrival",
    "event",
    "error",
    "region",
    "domain",
)
# The reference workload's default --mix weights (locustfiles/eventlog.py): writes-heavy, so that
# the default 16 arrivals/s outrun the reference table's 1 WCU and its burst within a 45 s run.
EVENTLOG_WEIGHTS = {"writes": 8, "reads": 1, "search": 1}
EVENT_TYPES = ("click", "view", "purchase", "signup", "login", "logout", "share", "search")
DATES_PER_WORKER = 4
FIRST_DAY = _dt.date(2100, 1, 1)
DAY_SPAN = (_dt.date(9999, 12, 31) - FIRST_DAY).days - 10_000  # room for workers' dates above the base


def load_terms(directory: Path = CORPUS_DIR) -> tuple[list[str], str]:
    """Corpus terms from ``reference_stack/data/*.jsonl`` (``{"term": ...}`` lines), else the built-in list."""
    terms: list[str] = []
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                term = json.loads(line).get("term")
            except (json.JSONDecodeError, AttributeError):
                continue
            if isinstance(term, str) and term.strip():
                terms.append(term.strip())
    if terms:
        return terms, f"{len(terms)} terms from {directory}"
    return list(BUILTIN_TERMS), f"built-in list of {len(BUILTIN_TERMS)} terms ({directory} has no corpus)"


class KeyMaker:
    """Run-scoped unique keys for one load process: the hash key a date (a few per worker, in years
    2100..9999 so they never meet real data), the range key a time of day ``HH:MM:SS.mmm`` from the
    process's write counter, so keys are unique within the run without coordination. The key
    attributes are named ``hash_key`` and ``range_key`` (the stack description's key schema)."""

    def __init__(
        self,
        *,
        run_id: str,
        worker_index: int,
        collisions: float,
        rng: random.Random,
        hash_key: str = "date",
        range_key: str = "time",
    ) -> None:
        self.hash_key, self.range_key = hash_key, range_key
        base = int(hashlib.sha256(run_id.encode()).hexdigest()[:12], 16) % DAY_SPAN
        first = FIRST_DAY + _dt.timedelta(days=base + worker_index * DATES_PER_WORKER)
        self.dates = [(first + _dt.timedelta(days=j)).isoformat() for j in range(DATES_PER_WORKER)]
        self.collisions = collisions
        self.rng = rng
        self.count = 0
        self.recent: list[dict[str, str]] = []

    def next_key(self) -> tuple[dict[str, str], bool]:
        """(key, collision): a fresh key, or with probability ``collisions`` one written before."""
        if self.recent and self.collisions > 0 and self.rng.random() < self.collisions:
            return dict(self.rng.choice(self.recent)), True
        n = self.count
        self.count += 1
        date = self.dates[n % DATES_PER_WORKER]
        ms = n // DATES_PER_WORKER
        if ms >= 86_400_000:
            raise ConfigError(
                "this load process wrote 345,600,000 events: its keys are used up",
                hint="use more workers (--workers) or a shorter run",
            )
        hh, rest = divmod(ms, 3_600_000)
        mm, rest = divmod(rest, 60_000)
        ss, mmm = divmod(rest, 1000)
        key = {self.hash_key: date, self.range_key: f"{hh:02d}:{mm:02d}:{ss:02d}.{mmm:03d}"}
        self.recent.append(key)
        if len(self.recent) > 200:
            self.recent.pop(0)
        return key, False


def encode_query(pairs: list[tuple[str, str]] | None) -> str:
    """RFC 3986 encoding, so the raw and the normalized canonical query are the same string."""
    if not pairs:
        return ""
    return _encode_pairs(tuple(pairs))


@lru_cache(maxsize=4096)
def _encode_pairs(pairs: tuple[tuple[str, str], ...]) -> str:
    # A run sends few distinct queries (dates and limits, typed prefixes): each is encoded once.
    return "&".join(f"{_quote(str(k))}={_quote(str(v))}" for k, v in pairs)


@lru_cache(maxsize=4096)
def _quote(text: str) -> str:
    # A run sends few distinct query values (dates, limits, prefixes); quoting each once saves
    # several microseconds per request on the load generator's hot path.
    return quote(text, safe="-_.~")
