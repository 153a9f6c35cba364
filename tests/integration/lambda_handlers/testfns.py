"""Tiny handlers the lambda service tests run inside real awslambdaric environments.

The task root is this folder; handlers are ``testfns.<name>``. ``INIT_MARK`` is printed once
per environment at import time so a test can count cold starts in the log stream.
"""

import os
import sys
import time

print("testfns: init", flush=True)

ENV_KEYS = (
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "TZ",
    "LANG",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "PYTHONPATH",
    "TABLE_NAME",
    "_X_AMZN_TRACE_ID",
)


def noop(event, context):
    return None


def echo(event, context):
    return event


def sleep(event, context):
    """Sleeps ``event["seconds"]``: the slow handler for concurrency and timeout tests."""
    time.sleep(float(event.get("seconds", 1)))
    return {"slept": event.get("seconds", 1), "pid": os.getpid()}


def crash(event, context):
    """With ``crash`` set, exits the runtime process mid-invocation (Lambda reports
    Runtime.ExitError); otherwise returns the environment's pid."""
    if event.get("crash"):
        sys.stdout.write("testfns: crashing now\n")
        os._exit(int(event.get("status", 3)))
    return {"pid": os.getpid()}


def fail(event, context):
    raise ValueError(f"failing on purpose: {event.get('why', 'no reason')}")


def print_(event, context):
    print("testfns: to stdout", event.get("tag", ""))
    print("testfns: to stderr", event.get("tag", ""), file=sys.stderr)
    return {"printed": 2, "pid": os.getpid()}


def environ(event, context):
    """The environment variables Lambda sets, plus what the context object knows."""
    return {
        "env": {k: os.environ.get(k) for k in ENV_KEYS},
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "function_arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "log_stream": context.log_stream_name,
        "memory": context.memory_limit_in_mb,
    }


def big(event, context):
    """A response of ``event["bytes"]`` bytes (as a JSON string): over 6 MB Lambda refuses it."""
    return "x" * int(event["bytes"])
