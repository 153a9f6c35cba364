"""Least privilege that holds under AWS's evaluation: the reference Terraform's identity and
resource policies, parsed from the .tf files, decided *together* by the project's IAM evaluator
(loadcheck/core/iam.py) for every role and every action the handlers and loadcheck use.

Within one account IAM allows a request when the identity-based policy *or* the resource-based
policy allows it (docs/aws-behaviour.md §9.3), so a narrow role policy means nothing if the
OpenSearch domain policy is broad. Each case below is (role, action, resource, expected); the
seeded test puts the domain policy back on ``<domain>/*`` and proves the matrix catches it.
The same matrix is then held against the local stack's policies (reference_stack/local/provision.py),
which come from the same description values.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import pytest

from loadcheck.core import iam
from loadcheck.core.description import StackDescription, parse_description
from reference_stack.local import provision
from tests.unit.terraform_hcl import TF_DIR, Module, load_description, statements

ACCOUNT = "111122223333"
API_ID = "a1b2c3d4e5"


@dataclass(frozen=True)
class Role:
    name: str  # the Terraform role name
    session: str  # the caller ARN of a session of it


@pytest.fixture(scope="module")
def tf() -> Module:
    return Module(TF_DIR)


@pytest.fixture(scope="module")
def desc() -> StackDescription:
    return parse_description(load_description())


def roles(desc: StackDescription) -> dict[str, Role]:
    def role(name: str) -> Role:
        return Role(name, f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/session")

    return {
        "events": role(desc.functions["events"].role_name),
        "search": role(desc.functions["search"].role_name),
        "requester": role(f"{desc.name_prefix}-requester"),
        "denied": role(f"{desc.name_prefix}-denied"),
        "search-admin": role(f"{desc.name_prefix}-search-admin"),
    }


def role_arn(role: Role) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{role.name}"


# ---------------------------------------------------------------------------------------------
# Rendering the Terraform's policy documents


class Renderer:
    """Turns ``aws_iam_policy_document`` blocks into IAM JSON, resolving the references they use.

    Only the references listed in ``refs`` (and ``local.*`` built from them) resolve; anything else
    fails the test, so a new reference in the policies is a deliberate change here too.
    """

    def __init__(self, tf: Module, refs: dict[str, Any]) -> None:
        self.tf = tf
        self.refs = refs

    def value(self, expr: Any) -> Any:
        if isinstance(expr, list):
            out: list[Any] = []
            for item in expr:
                resolved = self.value(item)
                out.extend(resolved if isinstance(resolved, list) else [resolved])
            return out
        if not isinstance(expr, str):
            return expr
        whole = re.fullmatch(r"\$\{([^${}]+)\}", expr)
        if whole:
            return self.ref(whole.group(1))
        return re.sub(r"\$\{([^${}]+)\}", lambda m: str(self.ref(m.group(1))), expr)

    def ref(self, name: str) -> Any:
        if name in self.refs:
            return self.refs[name]
        if name.startswith("local.") and name[6:] in self.tf.locals:
            return self.value(self.tf.locals[name[6:]])
        raise AssertionError(f"the policy test does not know the reference {name!r}: add it to refs")

    def document(self, address: str, *, each_key: str | None = None) -> dict[str, Any]:
        refs = dict(self.refs)
        if each_key is not None:
            refs["aws_cloudwatch_log_group.lambda[each.key].arn"] = (
                f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/{each_key}"
            )
        renderer = Renderer(self.tf, refs)
        out = []
        for st in statements(self.tf.datasource(address)):
            rendered: dict[str, Any] = {
                "Effect": st.get("effect", "Allow"),
                "Action": renderer.value(st["actions"]),
                "Resource": renderer.value(st["resources"]),
            }
            if st.get("principals"):
                rendered["Principal"] = {p["type"]: renderer.value(p["identifiers"]) for p in st["principals"]}
            for cond in st.get("condition", []):
                rendered.setdefault("Condition", {}).setdefault(cond["test"], {})[cond["variable"]] = renderer.value(
                    cond["values"]
                )
            out.append(rendered)
        return {"Version": "2012-10-17", "Statement": out}


def terraform_refs(desc: StackDescription) -> dict[str, Any]:
    r = roles(desc)
    return {
        "aws_opensearch_domain.search.arn": desc.search_domain_arn(ACCOUNT),
        "var.search.index": desc.search.index,
        'aws_iam_role.function["search"].arn': role_arn(r["search"]),
        "aws_iam_role.search_admin.arn": role_arn(r["search-admin"]),
        "aws_dynamodb_table.events.arn": desc.table_arn(ACCOUNT),
        # The for-expression over route_parts: the same ARNs, checked against real Terraform in
        # test_terraform.py::test_derived_names_match_the_local_stack.
        "local.route_arns": [desc.route_arn(ACCOUNT, API_ID, rk) for rk in desc.routes],
    }


@dataclass
class Policies:
    """Identity-based policies by role key, and the search domain's resource policy."""

    identity: dict[str, list[dict[str, Any]]]
    domain: dict[str, Any]


def terraform_policies(tf: Module, desc: StackDescription) -> Policies:
    render = Renderer(tf, terraform_refs(desc))
    functions = {
        key: [render.document("aws_iam_policy_document.function_logs", each_key=key)] for key in ("events", "search")
    }
    functions["events"].append(render.document("aws_iam_policy_document.events_data"))
    functions["search"].append(render.document("aws_iam_policy_document.search_data"))
    # What each role policy attaches: function roles get function_logs + their data policy
    # (source_policy_documents), the others their own document; denied gets nothing
    # (test_terraform_resources.py::test_denied_role_has_no_permissions).
    assert tf.locals["function_data_policies"] == {
        "events": "${data.aws_iam_policy_document.events_data.json}",
        "search": "${data.aws_iam_policy_document.search_data.json}",
    }
    assert tf.resource("aws_iam_role_policy.requester")["policy"] == "${data.aws_iam_policy_document.requester.json}"
    assert tf.resource("aws_iam_role_policy.search_admin")["policy"] == (
        "${data.aws_iam_policy_document.search_admin.json}"
    )
    assert tf.resource("aws_opensearch_domain_policy.search")["access_policies"] == (
        "${data.aws_iam_policy_document.search_domain_access.json}"
    )
    return Policies(
        identity={
            "events": functions["events"],
            "search": functions["search"],
            "requester": [render.document("aws_iam_policy_document.requester")],
            "denied": [],
            "search-admin": [render.document("aws_iam_policy_document.search_admin")],
        },
        domain=render.document("aws_iam_policy_document.search_domain_access"),
    )


# ---------------------------------------------------------------------------------------------
# The matrix: every role x every action the handlers and loadcheck use, and the ones they must not


def cases(desc: StackDescription) -> list[tuple[str, str, str, bool]]:
    """(role, action, resource, allowed)."""
    domain, index = desc.search_domain_arn(ACCOUNT), desc.search.index
    table = desc.table_arn(ACCOUNT)
    es = [
        # The search function only POSTs <index>/_search (reference_stack/handlers/search.py).
        ("search", "es:ESHttpPost", f"{domain}/{index}/_search", True),
        ("search", "es:ESHttpGet", f"{domain}/{index}/_search", False),
        ("search", "es:ESHttpPost", f"{domain}/_bulk", False),
        ("search", "es:ESHttpPost", f"{domain}/{index}/_bulk", False),
        ("search", "es:ESHttpPost", f"{domain}/{index}/_doc", False),
        ("search", "es:ESHttpPut", f"{domain}/{index}/_doc/1", False),
        ("search", "es:ESHttpPost", f"{domain}/{index}/_delete_by_query", False),
        ("search", "es:ESHttpDelete", f"{domain}/{index}", False),
        ("search", "es:ESHttpPost", f"{domain}/other/_search", False),
        # Corpus loading: create the index, bulk-load it, refresh, count, reload.
        ("search-admin", "es:ESHttpHead", f"{domain}/{index}", True),
        ("search-admin", "es:ESHttpPut", f"{domain}/{index}", True),
        ("search-admin", "es:ESHttpPost", f"{domain}/{index}/_bulk", True),
        ("search-admin", "es:ESHttpPost", f"{domain}/{index}/_refresh", True),
        ("search-admin", "es:ESHttpGet", f"{domain}/{index}/_count", True),
        ("search-admin", "es:ESHttpDelete", f"{domain}/{index}", True),
        ("search-admin", "es:ESHttpPost", f"{domain}/_bulk", False),  # could write any index
        ("search-admin", "es:ESHttpPut", f"{domain}/other", False),
        ("search-admin", "es:ESHttpDelete", f"{domain}/_all", False),
        ("events", "es:ESHttpPost", f"{domain}/{index}/_search", False),
        ("requester", "es:ESHttpPost", f"{domain}/{index}/_search", False),
        ("denied", "es:ESHttpPost", f"{domain}/{index}/_search", False),
    ]
    ddb = [
        *[("events", f"dynamodb:{a}", table, True) for a in ("Query", "Scan", "GetItem", "PutItem")],
        *[("events", f"dynamodb:{a}", table, False) for a in ("DeleteItem", "UpdateItem", "BatchWriteItem")],
        ("events", "dynamodb:PutItem", f"{table}-other", False),
        ("search", "dynamodb:Query", table, False),
        ("requester", "dynamodb:GetItem", table, False),
    ]
    routes = [desc.route_arn(ACCOUNT, API_ID, rk) for rk in desc.routes]
    api = [
        *[("requester", "execute-api:Invoke", arn, True) for arn in routes],
        ("requester", "execute-api:Invoke", desc.route_arn(ACCOUNT, API_ID, "DELETE /events"), False),
        ("requester", "execute-api:Invoke", desc.route_arn(ACCOUNT, "otherapi01", "GET /events"), False),
        *[("denied", "execute-api:Invoke", arn, False) for arn in routes],
        ("search-admin", "execute-api:Invoke", routes[0], False),
    ]
    return es + ddb + api


def violations(policies: Policies, desc: StackDescription, callers: dict[str, iam.Principal]) -> list[str]:
    """Every case whose combined decision differs from what it should be."""
    identity = {
        key: [iam.Policy.parse(d, kind=iam.PolicyKind.IDENTITY, where=f"{key} identity") for d in docs]
        for key, docs in policies.identity.items()
    }
    domain = iam.Policy.parse(policies.domain, kind=iam.PolicyKind.RESOURCE, where="domain policy")
    out = []
    for role, action, resource, expected in cases(desc):
        decision = iam.evaluate(
            iam.Request(action=action, resource=resource, principal=callers[role]),
            identity_policies=identity[role],
            resource_policy=domain if action.startswith("es:") else None,
            resource_account=ACCOUNT,
        )
        if (decision is iam.Decision.ALLOW) != expected:
            out.append(f"{role} {action} {resource}: {decision.value}, expected {'allow' if expected else 'deny'}")
    return out


def terraform_callers(desc: StackDescription) -> dict[str, iam.Principal]:
    return {key: iam.Principal(arn=r.session, principal_arn=role_arn(r)) for key, r in roles(desc).items()}


def test_every_role_and_action_holds_under_combined_evaluation(tf: Module, desc: StackDescription) -> None:
    assert violations(terraform_policies(tf, desc), desc, terraform_callers(desc)) == []


def test_the_matrix_fails_when_the_domain_policy_goes_back_to_the_whole_domain(
    tf: Module, desc: StackDescription
) -> None:
    """The seeded fault: opensearch.tf's statements on `<domain arn>/*`, as before issue 19."""
    policies = terraform_policies(tf, desc)
    broad = copy.deepcopy(policies)
    for st in broad.domain["Statement"]:
        st["Resource"] = [f"{desc.search_domain_arn(ACCOUNT)}/*"]
    found = violations(broad, desc, terraform_callers(desc))
    for path in ("/_bulk:", f"/{desc.search.index}/_doc:", f"/{desc.search.index}/_delete_by_query:"):
        assert any(v.startswith("search es:") and path in v for v in found), (path, found)


def test_the_matrix_fails_when_the_role_policy_alone_is_broad(tf: Module, desc: StackDescription) -> None:
    """The identity side counts as well: a search role policy on the whole domain is caught."""
    policies = terraform_policies(tf, desc)
    broad = copy.deepcopy(policies)
    broad.identity["search"][1]["Statement"][0]["Resource"] = [f"{desc.search_domain_arn(ACCOUNT)}/*"]
    assert any(
        v.startswith("search es:ESHttpPost") and "_bulk" in v for v in violations(broad, desc, terraform_callers(desc))
    )


def test_no_role_is_left_out_of_the_matrix(tf: Module, desc: StackDescription) -> None:
    """Every aws_iam_role of the Terraform has a row in the matrix."""
    declared = {a for a in tf.resources if a.startswith("aws_iam_role.")}
    assert declared == {
        "aws_iam_role.function",
        "aws_iam_role.requester",
        "aws_iam_role.denied",
        "aws_iam_role.search_admin",
    }
    assert {role for role, *_ in cases(desc)} == set(roles(desc))


# ---------------------------------------------------------------------------------------------
# The local stack: the same description values, the same decisions for the search function


def test_the_local_stack_decides_the_search_function_as_aws_does(desc: StackDescription) -> None:
    ids = provision.make_identities(desc, API_ID, ACCOUNT)
    roles = provision.make_roles(desc, API_ID, ACCOUNT)

    def session(key: str) -> iam.Principal:
        # A caller that assumed the role: policies name the role, the caller is its session.
        role = roles[key]
        return iam.Principal(arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.name}/loadcheck", principal_arn=role.arn)

    local = Policies(
        identity={
            "search": ids["search-role"].policies,
            "events": ids["events-role"].policies,
            "requester": roles["requester"].policies,
            "denied": roles["denied"].policies,
            "search-admin": roles["search-admin"].policies,
        },
        domain=provision.search_access_policy(desc, ids, roles, ACCOUNT),
    )
    callers = {
        "search": ids["search-role"].principal,
        "events": ids["events-role"].principal,
        "requester": session("requester"),
        "denied": session("denied"),
        "search-admin": session("search-admin"),
    }
    # The requester's routes are those of the local API id, which make_identities was given.
    found = violations(local, desc, callers)
    assert found == []
    statement = local.domain["Statement"][0]
    assert statement["Resource"] == [f"{desc.search_domain_arn(ACCOUNT)}/{desc.search.index}/_search"]
