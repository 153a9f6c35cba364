"""Route matching as API Gateway does it (docs/aws-behaviour.md §6): most specific route wins,
path variables bind one segment, greedy ``{proxy+}`` the rest; ``pathParameters`` in the 2.0 event."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadcheck.core.description import route_path_problem
from reference_stack.local.gateway.routing import Router

# AWS's own example (AGW:http-api-develop-routes, "Routing API requests"), plus the reference stack.
ROUTES = {
    "GET /pets/dog/1": "a",
    "GET /pets/dog/{id}": "b",
    "GET /pets/{proxy+}": "c",
    "ANY /{proxy+}": "d",
    "GET /events": "events",
    "POST /events": "events",
    "GET /events/{date}": "events",
}


@pytest.mark.parametrize(
    ("method", "path", "route", "params"),
    [
        ("GET", "/pets/dog/1", "GET /pets/dog/1", {}),  # a full match beats a variable
        ("GET", "/pets/dog/2", "GET /pets/dog/{id}", {"id": "2"}),  # a variable beats a greedy route
        ("GET", "/pets/cat/1", "GET /pets/{proxy+}", {"proxy": "cat/1"}),  # longer greedy prefix wins
        ("POST", "/pets/dog/1", "ANY /{proxy+}", {"proxy": "pets/dog/1"}),  # ANY catches other methods
        ("GET", "/events", "GET /events", {}),
        ("GET", "/events/2100-01-02", "GET /events/{date}", {"date": "2100-01-02"}),
        ("GET", "/events/a%20b", "GET /events/{date}", {"date": "a b"}),  # parameters are decoded
        ("DELETE", "/events/x/y", "ANY /{proxy+}", {"proxy": "events/x/y"}),
    ],
)
def test_most_specific_route_wins(method: str, path: str, route: str, params: dict[str, str]) -> None:
    assert Router(ROUTES).resolve(method, path) == (route, params)


def test_no_route_and_empty_segments() -> None:
    router = Router({"GET /events": "e", "GET /events/{date}": "e"})
    assert router.resolve("GET", "/events/") is None  # a variable never binds an empty segment
    assert router.resolve("GET", "/events/a/b") is None
    assert router.resolve("POST", "/events") is None
    assert Router({"GET /a/{proxy+}": "x"}).resolve("GET", "/a") is None  # greedy needs one segment


@given(st.permutations(list(ROUTES)))
def test_the_order_of_the_description_does_not_change_the_match(order: list[str]) -> None:
    router = Router({k: ROUTES[k] for k in order})
    assert router.match("GET", "/pets/dog/2") == "GET /pets/dog/{id}"
    assert router.match("GET", "/pets/dog/1") == "GET /pets/dog/1"


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/events/{date}", None),
        ("/{proxy+}", None),
        ("/events/x{date}", "not a whole path variable"),
        ("/{proxy+}/x", "must be the last segment"),
        ("/{a}/{a}", "appears twice"),
    ],
)
def test_route_paths_the_description_accepts(path: str, problem: str | None) -> None:
    found = route_path_problem(path)
    assert (found is None) if problem is None else (found is not None and problem in found)
