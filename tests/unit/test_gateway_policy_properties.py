"""Property tests: IAM wildcard matching and the policy decision (gateway auth.py)."""

from __future__ import annotations

from functools import cache

from hypothesis import example, given
from hypothesis import strategies as st

from reference_stack.local.gateway.auth import evaluate, wildcard_match

ALPHABET = "ab/$:*?.-"
text = st.text(alphabet="ab/$:.-", max_size=8)
pattern = st.text(alphabet=ALPHABET, max_size=8)


def reference_match(p: str, v: str) -> bool:
    """Textbook recursive glob: * = any run (also empty, also "/"), ? = exactly one character."""

    @cache
    def m(i: int, j: int) -> bool:
        if i == len(p):
            return j == len(v)
        if p[i] == "*":
            return m(i + 1, j) or (j < len(v) and m(i, j + 1))
        if j < len(v) and (p[i] == "?" or p[i] == v[j]):
            return m(i + 1, j + 1)
        return False

    return m(0, 0)


@given(pattern, text)
@example("a*", "a/b:c")
@example("?", "")
@example("a.b", "aXb")
@example("$default/*", "$default/GET/x")
def test_wildcard_match_agrees_with_a_reference_glob(p: str, v: str) -> None:
    assert wildcard_match(p, v) is reference_match(p, v)


@given(st.lists(st.tuples(st.sampled_from(["Allow", "Deny"]), pattern), max_size=4), text)
def test_decision_is_deny_if_any_deny_matches_else_allow_if_any_allow_matches(
    stmts: list[tuple[str, str]], resource: str
) -> None:
    policies = [{"Statement": [{"Effect": e, "Action": "execute-api:Invoke", "Resource": r} for e, r in stmts]}]
    denied = any(e == "Deny" and reference_match(r, resource) for e, r in stmts)
    allowed = any(e == "Allow" and reference_match(r, resource) for e, r in stmts)
    expected = "deny" if denied else "allow" if allowed else "implicit"
    assert evaluate(policies, action="execute-api:Invoke", resource=resource) == expected
