"""The notes API's workload, on loadcheck's public load API (``locustfiles.api``) alone.

    bin/loadcheck stack up --detach --description examples/notes/terraform/stack.auto.tfvars.json
    bin/loadcheck run --description examples/notes/terraform/stack.auto.tfvars.json \\
        --locustfile examples/notes/workload.py --threshold 'GET /notes/{day}:p95<300ms'
"""

from __future__ import annotations

from typing import Any

from locustfiles.api import LoadcheckUser, Write, kind


class NotesUser(LoadcheckUser):
    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        # Run-scoped unique keys, named as the description's key schema names them.
        self.keys = self.table_keys(hash_key="day", range_key="at")

    @kind(weight=3)
    def write_note(self) -> None:
        key, collision = self.keys.next_key()
        note: dict[str, Any] = {**key, "author": f"{self.run_info.run_id}:u{self.user_no}", "text": "remember the milk"}
        if self.rng.random() < 0.5:
            note["tags"] = self.rng.sample(["home", "work", "errand", "later"], k=self.rng.randint(1, 3))
        if self.rng.random() < 0.3:
            note["pinned"] = True
        # The API stores the note exactly as sent: dynamodb_contents holds it to that.
        self.send("POST", "POST /notes", "/notes", json_body=note, write=Write(key, note, collision))

    @kind(weight=2)
    def read_day(self) -> None:
        day = self.rng.choice(self.keys.dates)
        self.send("GET", "GET /notes/{day}", f"/notes/{day}", query=[("limit", "20")])
