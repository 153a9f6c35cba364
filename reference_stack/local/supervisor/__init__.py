"""The local stack's supervisor: starts, watches and stops the four service processes.

    stack.py      Supervisor: the start order, each service's config, stack.json, the stop order
    control.py    run_foreground / start_detached / stop_stack / running_stack
    admin.py      the admin client: faults, flush, prewarm, table capacity, status
    chaos.py      kill a service or a Lambda environment; wait for the supervisor to restart it
    __main__.py   the detached daemon's command line

Each service runs in its own session (process group), and its children (Lambda execution
environments) stay in that group, so killing the group leaves nothing behind even when the
service itself crashed. Services also exit on their own when the supervisor dies.
"""

from reference_stack.local.supervisor.admin import (
    capacity,
    clear_faults,
    ensure_stack,
    flush,
    parse_faults,
    prewarm,
    set_faults,
    status,
)
from reference_stack.local.supervisor.chaos import kill, wait_restarted
from reference_stack.local.supervisor.control import (
    pid_alive,
    require_stack,
    run_foreground,
    running_stack,
    start_detached,
    stop_stack,
)
from reference_stack.local.supervisor.stack import FAULT_OWNERS, SERVICES, Supervisor

__all__ = [
    "FAULT_OWNERS",
    "SERVICES",
    "Supervisor",
    "capacity",
    "clear_faults",
    "ensure_stack",
    "flush",
    "kill",
    "parse_faults",
    "pid_alive",
    "prewarm",
    "require_stack",
    "run_foreground",
    "running_stack",
    "set_faults",
    "start_detached",
    "status",
    "stop_stack",
    "wait_restarted",
]
