"""``python -m reference_stack.local.lambda_ --config FILE``: the lambda service process.

Runs under the service contract (:mod:`reference_stack.local.common.contract`): ready file once
listening; on SIGTERM/SIGINT or the parent's death it flushes, stops listening, kills every
execution environment and exits 0 within 10 s.
"""

from __future__ import annotations

import sys

from reference_stack.local.common import http11
from reference_stack.local.common.contract import Lifecycle, run_service
from reference_stack.local.lambda_.config import ServiceConfig, parse_config
from reference_stack.local.lambda_.service import LambdaService


def serve(config: ServiceConfig, lifecycle: Lifecycle) -> int:
    """The contract's ``serve``: start the Invoke and Runtime APIs, run until stopped."""
    http11.install()  # Invoke and Runtime API requests parsed without the email package
    service = LambdaService(config=config, admin_token=lifecycle.admin_token)
    service.start()
    try:
        lifecycle.ready(service.port)
        lifecycle.stop.wait()
    finally:
        service.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_service(
        name="lambda",
        description="The local Lambda service (Invoke API + Runtime API).",
        parse=parse_config,
        serve=serve,
        argv=argv,
        module="reference_stack.local.lambda_",
    )


if __name__ == "__main__":
    sys.exit(main())
