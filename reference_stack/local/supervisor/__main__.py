"""``python -m reference_stack.local.supervisor``: the detached supervisor daemon that
``loadcheck stack up --detach`` starts (:func:`~.control.start_detached`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reference_stack.local.supervisor.admin import parse_faults
from reference_stack.local.supervisor.control import run_foreground


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reference_stack.local.supervisor")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--description")
    p.add_argument("--burst-start", default="full", choices=("full", "empty"))
    p.add_argument("--port", action="append", default=[])
    p.add_argument("--fault", action="append", default=[])
    p.add_argument("--no-corpus", action="store_true")
    a = p.parse_args(argv)
    ports = {k: int(v) for k, _, v in (x.partition("=") for x in a.port)}
    try:
        return run_foreground(
            Path(a.state_dir),
            description=a.description,
            ports=ports,
            faults=parse_faults(a.fault),
            burst_start=a.burst_start,
            load_corpus=not a.no_corpus,
            progress=lambda m: print(m, flush=True),
        )
    except Exception as exc:  # noqa: BLE001 - the parent reads supervisor.error
        print(f"error: {exc}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
