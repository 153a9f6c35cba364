"""A seeded bug for test_gateway_hostile.py, never shipped: the gateway service, but each
malformed request it refuses leaves a thread behind (``python -m tests.integration.leaky_gateway
--config FILE``). The fuzzer's thread check must catch it.
"""

from __future__ import annotations

import sys
import threading

from reference_stack.local.gateway import __main__ as gateway_main
from reference_stack.local.gateway import server


class _LeakyHandler(server._Handler):
    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        threading.Thread(target=threading.Event().wait, name="leaked", daemon=True).start()
        super().send_error(code, message, explain)


if __name__ == "__main__":
    setattr(server, "_Handler", _LeakyHandler)  # noqa: B010 - GatewayServer looks its handler up here
    sys.exit(gateway_main.main())
