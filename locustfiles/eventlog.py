"""The reference workload: signed writers, readers and searchers against the EventLog API,
written on the public load API (:mod:`locustfiles.api`) alone.

Run it through ``loadcheck run`` (which passes ``--loadcheck-config runs/<id>/loadconfig.json``)
or plainly::

    locust -f locustfiles/eventlog.py --headless -u 10 -r 2 -t 60s \\
        --host https://events.example.com --aws-profile myprofile --region us-east-1 \\
        [--resolve events.example.com:443:203.0.113.7] [--ca-bundle ca.pem] \\
        [--rate 16] [--mix writes=6,reads=3,search=1] [--collisions 0.05] [--run-dir runs/x]

One user class, ``EventLogUser``; each action is one signed request of a kind drawn by the
``--mix`` weights (default ``writes=8,reads=1,search=1``: writes-heavy, so that at the default 16
arrivals/s, 12.8 writes/s outrun the reference table's 1 WCU plus its full 300 s burst bucket
within a 45 s run, docs/aws-behaviour.md §7.3, and the throttling path is exercised):

- writes: ``POST /events`` with run-scoped unique keys. ``date`` is derived from the run id and
  the worker (a few dates per worker, in years 2100..9999 so they never meet real data), ``time``
  (HH:MM:SS.mmm) from the process's write counter, so keys are unique within the run without
  coordination; ``userId`` carries the run id. ``--collisions F`` makes a fraction F of writes
  reuse a key written earlier (with another eventType): the API must answer 409 and keep the
  first item.
- reads: ``GET /events?date=D`` for dates this run writes, following ``nextToken`` one page per
  action; one read in ten is an unfiltered scan page.
- search: types a corpus term prefix by prefix (one keystroke per action, as a person types:
  ``GET /search?q=p``, ``?q=pr``, ...); one in five is a ``POST /search`` body instead.

Closed model (``--shape ramp`` / plain locust without ``--rate``): users act, then think
(``--think-time``). Open model (``constant-rate``, ``step``, or ``--rate``): users wait
for arrivals from :class:`locustfiles.shapes.ArrivalScheduler`.
"""

from __future__ import annotations

import json

from locustfiles.api import LoadcheckUser, Write, kind
from locustfiles.workload import EVENT_TYPES, EVENTLOG_WEIGHTS, load_terms

PAGE = "25"


class EventLogUser(LoadcheckUser):
    """Writers, readers and searchers in one class; the kind of each action comes from ``--mix``."""

    def __init__(self, environment: object) -> None:
        super().__init__(environment)
        self.keys = self.table_keys(hash_key="date", range_key="time")
        self.terms: list[str] = self.shared("terms", lambda: load_terms()[0])
        self.user_id = f"{self.run_info.run_id}:{self.run_info.worker}:u{self.user_no}"
        self._typing: tuple[str, int] | None = None
        self._reading: tuple[str, str] | None = None  # (date, nextToken)

    @kind(weight=EVENTLOG_WEIGHTS["writes"])
    def writes(self) -> None:
        key, collision = self.keys.next_key()
        item = {**key, "userId": self.user_id, "eventType": self.rng.choice(EVENT_TYPES)}
        self.send("POST", "POST /events", "/events", json_body=item, write=Write(key, item, collision))

    @kind(weight=EVENTLOG_WEIGHTS["reads"])
    def reads(self) -> None:
        if self._reading is None and self.rng.random() < 0.1:
            query = [("limit", PAGE)]
        elif self._reading is not None:
            date, token = self._reading
            query = [("date", date), ("limit", PAGE), ("nextToken", token)]
        else:
            query = [("date", self.rng.choice(self.keys.dates)), ("limit", PAGE)]
        resp = self.send("GET", "GET /events", "/events", query=query)
        self._reading = None
        content = resp.content or b""
        # Parse only when there is a next page: most pages of a run's dates are the last.
        if (
            resp.status_code == 200
            and query[0][0] == "date"
            and b'"nextToken"' in content
            and b'"nextToken":null' not in content
        ):
            try:
                next_token = json.loads(content).get("nextToken")
            except (ValueError, AttributeError):
                next_token = None
            if next_token:
                self._reading = (query[0][1], str(next_token))

    @kind(weight=EVENTLOG_WEIGHTS["search"])
    def search(self) -> None:
        if self._typing is None:
            self._typing = (self.rng.choice(self.terms), 1)
        term, n = self._typing
        prefix = term[:n]
        self._typing = (term, n + 1) if n < min(len(term), 12) else None
        if self.rng.random() < 0.2:
            body = {
                "query": {
                    "multi_match": {
                        "query": prefix,
                        "type": "bool_prefix",
                        "fields": ["term", "term._2gram", "term._3gram"],
                    }
                },
                "size": 5,
            }
            self.send("POST", "POST /search", "/search", json_body=body)
        else:
            self.send("GET", "GET /search", "/search", query=[("q", prefix), ("size", "5")])
