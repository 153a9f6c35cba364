"""The reference stack's Terraform parsed with python-hcl2, for tests/unit/test_terraform*.py.

:class:`Module` holds every block of the ``.tf`` files keyed the way Terraform addresses them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
TF_DIR = REPO / "reference_stack" / "terraform"
TFVARS = TF_DIR / "stack.auto.tfvars.json"
CHECKOV = REPO / ".venv-tools" / "bin" / "checkov"

_HCL_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


class Module:
    """Every block of the .tf files, keyed the way Terraform addresses them."""

    def __init__(self, tf_dir: Path) -> None:
        self.files = {p.name: p.read_text(encoding="utf-8") for p in sorted(tf_dir.glob("*.tf"))}
        self.resources: dict[str, dict[str, Any]] = {}
        self.data: dict[str, dict[str, Any]] = {}
        self.variables: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.locals: dict[str, Any] = {}
        self.terraform: list[dict[str, Any]] = []
        self.providers: dict[str, Any] = {}
        self.expressions: dict[str, list[str]] = {}  # file -> every string in it, comments left out
        for name, text in self.files.items():
            doc = hcl2.loads(text, serialization_options=_HCL_OPTIONS)
            self.expressions[name] = list(_strings(doc))
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for block in doc.get(kind, []):
                    for rtype, named in block.items():
                        for rname, body in named.items():
                            address = f"{rtype}.{rname}"
                            assert address not in target, f"{kind} {address} declared twice ({name})"
                            target[address] = body
            for kind, target in (("variable", self.variables), ("output", self.outputs)):
                for block in doc.get(kind, []):
                    target.update(block)
            for block in doc.get("locals", []):
                self.locals.update(block)
            for block in doc.get("provider", []):
                self.providers.update(block)
            self.terraform.extend(doc.get("terraform", []))

    def code(self, *, exclude: str | None = None) -> str:
        """Every expression and string of the module (not its comments), one a line."""
        return "\n".join(e for name, exprs in self.expressions.items() if name != exclude for e in exprs)

    def resource(self, address: str) -> dict[str, Any]:
        assert address in self.resources, f"resource {address} is not declared"
        return self.resources[address]

    def datasource(self, address: str) -> dict[str, Any]:
        assert address in self.data, f"data source {address} is not declared"
        return self.data[address]


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block ``name`` of a resource body."""
    value = body.get(name)
    assert isinstance(value, list) and len(value) == 1, f"expected one {name} block, got {value!r}"
    return value[0]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document.get("statement", []))


def load_description() -> dict[str, Any]:
    """The reference description (stack.auto.tfvars.json) as plain JSON."""
    return json.loads(TFVARS.read_text(encoding="utf-8"))
