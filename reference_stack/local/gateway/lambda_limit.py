"""The Lambda synchronous-invoke payload limit, as the HTTP API answers it (docs/aws-behaviour.md §3.4).

An HTTP API accepts request bodies up to 10 MB, but it invokes the function synchronously and
Lambda refuses a request payload (the whole 2.0 event, body included) over 6 MB with 413
``RequestTooLargeException``. A body between the two limits therefore never reaches the handler.
:func:`answer_for` is the rule in one place: given what the Invoke API said, it returns the
client's answer, or None when the limit was not what failed. ``app.Gateway`` calls it once, on
every integration result, before any other failure mapping.

Departure from AWS (docs/fidelity.md, gateway): the answer, 413 ``{"message":"Request Entity
Too Large"}`` with ``error.responseType`` ``REQUEST_TOO_LARGE``, is what AWS's own Lambda Test Tool
emulates for HTTP APIs; no AWS documentation page or public capture of an HTTP API confirms it:
UNCONFIRMED (§10.11). REST APIs are reported to answer 413 ``{"message": "Request Too Long"}``.
"""

from __future__ import annotations

from dataclasses import dataclass

# The Invoke API's only 413: RequestTooLargeException (docs/aws-behaviour.md §8.4, 6 MB).
LAMBDA_TOO_LARGE_STATUS = 413


@dataclass(frozen=True)
class LimitAnswer:
    """What the client gets, and what the access log records about why."""

    status: int
    message: str  # the body's "message" and $context.error.message
    response_type: str  # $context.error.responseType
    integration_error: str  # $context.integrationErrorMessage


def answer_for(invoke_status: int | None, lambda_message: str) -> LimitAnswer | None:
    """The answer when the Invoke API refused the event as too large; None otherwise.

    ``lambda_message`` is the Invoke API's own message (it names the byte limit); it goes to the
    access log's ``integrationErrorMessage`` so the record says why the request failed.
    """
    if invoke_status != LAMBDA_TOO_LARGE_STATUS:
        return None
    return LimitAnswer(
        status=413,
        message="Request Entity Too Large",
        response_type="REQUEST_TOO_LARGE",
        integration_error=f"Lambda Invoke answered 413: {lambda_message} (the synchronous invocation payload limit)",
    )
