"""A changed copy of a stack description, never the tracked one in place.

    write_copy(source, out, changes) -> unified diff (str)

``loadcheck capacity --write-description FILE`` applies its plan with this: each change is a
path of keys into the description's JSON and the value to set. The copy is validated by
:func:`loadcheck.core.description.parse_description` before it is written, keeps pointing at the
source's handlers (``handlers_dir`` made absolute: the copy lives elsewhere), and is refused
inside the Terraform directory, where Terraform would load any ``*.auto.tfvars.json`` and the
tracked description would be replaced.
"""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Any

from loadcheck.core.description import DEFAULT_DESCRIPTION, DEFAULT_HANDLERS_DIR, parse_description
from loadcheck.core.errors import ConfigError
from loadcheck.core.jsonfile import read_json_object
from loadcheck.core.state import write_json_atomic


def apply_changes(data: dict[str, Any], changes: list[tuple[list[str], Any]]) -> dict[str, Any]:
    """A deep copy of ``data`` with each ``(path, value)`` set; a missing object on the path is an error."""
    out = copy.deepcopy(data)
    for path, value in changes:
        node = out
        for key in path[:-1]:
            nxt = node.get(key)
            if not isinstance(nxt, dict):
                raise ConfigError(
                    f"the description has no object at {'.'.join(path[:-1])}",
                    value=".".join(path),
                    hint="the plan was made for another description: rerun `loadcheck capacity` with it",
                )
            node = nxt
        node[path[-1]] = value
    return out


def write_copy(source: str | Path, out: str | Path, changes: list[tuple[list[str], Any]]) -> str:
    """Write ``source`` with ``changes`` to ``out``; the unified diff of the two."""
    src, dst = Path(source).resolve(), Path(out).resolve()
    tracked_dir = DEFAULT_DESCRIPTION.parent.resolve()
    if dst == src or dst.parent == tracked_dir:
        raise ConfigError(
            f"--write-description {out} would replace the description it copies or sit in the Terraform directory ({src})",
            value=str(out),
            hint="write the copy elsewhere (e.g. runs/<id>/stack.json) and pass it to `loadcheck run --description`",
        )
    data = read_json_object(src, what="stack description", hint="pass the description the plan was made with")
    changed = apply_changes(data, changes)
    rel = str(data.get("handlers_dir") or DEFAULT_HANDLERS_DIR)
    changed["handlers_dir"] = str((src.parent / rel).resolve())
    parse_description(changed, str(dst), base_dir=dst.parent)  # the copy must be a valid description
    write_json_atomic(dst, changed, sort_keys=False)
    before = json.dumps(data, indent=2).splitlines()
    after = json.dumps(changed, indent=2).splitlines()
    return "\n".join(difflib.unified_diff(before, after, str(src), str(dst), lineterm=""))
