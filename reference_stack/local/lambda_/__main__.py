"""``python -m reference_stack.local.lambda_ --config FILE``: the lambda service process.

Follows the service process contract of docs/internals.md: binds 127.0.0.1, writes
``ready_file`` (``{"port", "pid"}``) once listening, stops on SIGTERM/SIGINT (flush, stop
listening, kill every environment, exit 0 within 10 s), and exits by itself when the process
named by ``parent_pid`` is gone. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from loadcheck.core.errors import LoadcheckError
from loadcheck.core.state import write_json_atomic
from reference_stack.local.lambda_.config import load_config
from reference_stack.local.lambda_.service import LambdaService

log = logging.getLogger("loadcheck.lambda")

PARENT_POLL_S = 0.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reference_stack.local.lambda_",
        description="The local Lambda service (Invoke API + Runtime API).",
    )
    parser.add_argument("--config", required=True, help="the service config JSON (see docs/internals.md)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except LoadcheckError as exc:
        print(f"lambda: {exc}", file=sys.stderr)
        return exc.exit_status
    logging.basicConfig(
        level=getattr(logging, config.log_level, logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The SDK's debug chatter would drown the service's own lines (and may echo headers).
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    service = LambdaService(config=config)
    service.start()
    try:
        if config.ready_file is not None:
            write_json_atomic(config.ready_file, {"port": service.port, "pid": os.getpid()})
        while not stop.wait(PARENT_POLL_S):
            if config.parent_pid is not None and os.getppid() != config.parent_pid:
                log.info("parent %d is gone: stopping", config.parent_pid)
                break
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
