"""The AWS target: the reference stack's Terraform outputs, in the shape of the local stack.json.

``terraform output -json`` (run in ``reference_stack/terraform`` after ``terraform apply``)
prints ``{"<name>": {"value": ..., "type": ..., "sensitive": false}, ...}``.
:func:`target_from_tf_outputs` turns that into the keys ``stack.json`` has (see
``loadcheck/core/state.py``), so :meth:`loadcheck.core.target.Target.from_tf_outputs` and everything after
it do not care which target they run against. Outputs are declared in
``reference_stack/terraform/outputs.tf``.

On AWS there is no ``aws_endpoint_url``, credentials file or CA bundle: boto3 uses the user's
own credential chain and the public CAs, and the gateway is reached through DNS on port 443
(``gateway.address`` is ``None``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from loadcheck.core.errors import TargetError
from loadcheck.core.jsonfile import read_json_object

TERRAFORM_ENV = "LOADCHECK_TERRAFORM"  # path of the terraform binary, if not on PATH
OUTPUT_TIMEOUT_S = 120.0

# Output name -> the Python type its value must have.
REQUIRED_OUTPUTS: dict[str, type] = {
    "region": str,
    "account_id": str,
    "api_id": str,
    "domain": str,
    "endpoint_url": str,
    "table_name": str,
    "access_log_group": str,
    "lambda_log_groups": dict,
    "function_names": dict,
    "search_endpoint": str,
    "search_index": str,
}
# Passed through when present (older applies may lack them).
OPTIONAL_OUTPUTS: dict[str, type] = {
    "execute_api_arn": str,
    "requester_role_arn": str,
    "denied_role_arn": str,
    "search_admin_role_arn": str,
    "routes": list,
    "export_bucket": str,
}

_APPLY_HINT = (
    "run `terraform apply` in reference_stack/terraform (its outputs.tf declares every output loadcheck reads)"
)


def target_from_tf_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    """Turn ``terraform output -json`` into stack.json's keys.

    Returns ``region, account_id, api_id, domain, gateway {host, port, url, address},
    table_name, access_log_group, lambda_log_groups, function_names, search_endpoint,
    search_index`` plus ``execute_api_arn``, ``requester_role_arn``, ``denied_role_arn``,
    ``search_admin_role_arn``, ``routes`` and ``export_bucket`` when Terraform has them. Raises :class:`TargetError` naming a missing or
    malformed output.
    """
    if not isinstance(outputs, dict):
        raise TargetError(
            f"terraform outputs must be a JSON object, got {type(outputs).__name__}",
            value=outputs,
            hint="pass the output of `terraform output -json`",
        )
    if not outputs:
        raise TargetError("terraform has no outputs: the stack has not been applied", value=outputs, hint=_APPLY_HINT)

    values: dict[str, Any] = {}
    for name, kind in {**REQUIRED_OUTPUTS, **OPTIONAL_OUTPUTS}.items():
        if name not in outputs:
            if name in REQUIRED_OUTPUTS:
                raise TargetError(f"terraform output {name!r} is missing", value=name, hint=_APPLY_HINT)
            continue
        entry = outputs[name]
        if not isinstance(entry, dict) or "value" not in entry:
            raise TargetError(
                f'terraform output {name!r} is not of the form {{"value": ...}}: {entry!r}',
                value=name,
                hint="pass the output of `terraform output -json` (not `terraform output`)",
            )
        value = entry["value"]
        if not isinstance(value, kind) or (kind is str and not value):
            raise TargetError(
                f"terraform output {name!r} should be a non-empty {kind.__name__}, got {value!r}",
                value=value,
                hint=_APPLY_HINT,
            )
        values[name] = value

    for name in ("lambda_log_groups", "function_names"):
        for key in ("events", "search"):
            if key not in values[name]:
                raise TargetError(
                    f"terraform output {name!r} has no {key!r} entry: {values[name]!r}",
                    value=values[name],
                    hint="the reference stack has an events and a search function",
                )

    url = values["endpoint_url"].rstrip("/")
    if not url.startswith("https://"):
        raise TargetError(f"terraform output 'endpoint_url' is not an https URL: {url!r}", value=url, hint=_APPLY_HINT)

    target: dict[str, Any] = {
        "region": values["region"],
        "account_id": values["account_id"],
        "api_id": values["api_id"],
        "domain": values["domain"],
        # Port 443 through DNS: address None means "resolve the domain" (local: 127.0.0.1).
        "gateway": {"host": values["domain"], "port": 443, "url": url, "address": None},
        "table_name": values["table_name"],
        "access_log_group": values["access_log_group"],
        "lambda_log_groups": dict(values["lambda_log_groups"]),
        "function_names": dict(values["function_names"]),
        "search_endpoint": values["search_endpoint"],
        "search_index": values["search_index"],
    }
    for name in OPTIONAL_OUTPUTS:
        if name in values:
            target[name] = tuple(values[name]) if name == "routes" else values[name]
    return target


def _tf_type(value: Any) -> Any:
    """The type ``terraform output -json`` prints for a value of this shape: ``"string"``,
    ``["list", "string"]`` (``sort(...)``), ``["object", {...}]`` (a ``for`` expression's map)."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return ["list", "string"]
    return ["object", {k: _tf_type(v) for k, v in value.items()}]


def tf_outputs_from_stack(stack: dict[str, Any]) -> dict[str, Any]:
    """The local stack's ``stack.json`` as ``terraform output -json`` prints outputs.tf's outputs
    (same names and types), so ``loadcheck run --target aws --tf-outputs FILE`` runs the AWS code
    path against the emulation. ``endpoint_url`` names the gateway's port (on AWS it is 443)."""
    gw = stack["gateway"]
    values: dict[str, Any] = {
        "endpoint_url": gw["url"],
        "domain": stack["domain"],
        "region": stack["region"],
        "account_id": stack["account_id"],
        "api_id": stack["api_id"],
        "execute_api_arn": f"arn:aws:execute-api:{stack['region']}:{stack['account_id']}:{stack['api_id']}",
        "table_name": stack["table_name"],
        "access_log_group": stack["access_log_group"],
        "lambda_log_groups": dict(stack["lambda_log_groups"]),
        "function_names": dict(stack["function_names"]),
        "requester_role_arn": stack["requester_role_arn"],
        "denied_role_arn": stack["denied_role_arn"],
        "search_admin_role_arn": stack["search_admin_role_arn"],
        "search_endpoint": stack["search_endpoint"],
        "search_index": stack["search_index"],
        "routes": sorted(stack["routes"]),
        "export_bucket": stack.get("export_bucket") or "",
    }
    return {name: {"sensitive": False, "type": _tf_type(v), "value": v} for name, v in values.items()}


def load_tf_outputs(
    path: str | os.PathLike[str] | None = None,
    tf_dir: str | os.PathLike[str] | None = None,
    *,
    terraform: str | None = None,
) -> dict[str, Any]:
    """Read Terraform outputs from a file, or by running ``terraform output -json`` in ``tf_dir``.

    ``path`` wins when both are given. The binary is ``terraform`` (argument), then
    ``$LOADCHECK_TERRAFORM``, then ``terraform`` on PATH. Returns the raw outputs; pass them
    to :func:`target_from_tf_outputs`.
    """
    if path is not None:
        return _read_outputs_file(Path(path))
    if tf_dir is None:
        raise TargetError(
            "no Terraform outputs given", hint="pass --tf-dir reference_stack/terraform or --tf-outputs FILE"
        )
    return _run_terraform_output(Path(tf_dir), terraform)


def _read_outputs_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TargetError(
            f"terraform outputs file not found: {path}",
            value=str(path),
            hint="write it with `terraform output -json > outputs.json` in reference_stack/terraform",
        )
    return read_json_object(
        path,
        what="terraform outputs file",
        hint="write it with `terraform output -json > outputs.json` (the plain `terraform output` is not JSON)",
        error=TargetError,
    )


def _find_terraform(explicit: str | None) -> str:
    candidate = explicit or os.environ.get(TERRAFORM_ENV) or "terraform"
    found = shutil.which(candidate)
    if found is None:
        raise TargetError(
            f"the terraform binary was not found (looked for {candidate!r})",
            value=candidate,
            hint=(
                "install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install) and put it on PATH, "
                f"or set {TERRAFORM_ENV} to its path, or pass --tf-outputs with a file written by "
                "`terraform output -json`"
            ),
        )
    return found


def _run_terraform_output(tf_dir: Path, terraform: str | None) -> dict[str, Any]:
    if not tf_dir.is_dir():
        raise TargetError(
            f"terraform directory not found: {tf_dir}",
            value=str(tf_dir),
            hint="pass --tf-dir reference_stack/terraform (where `terraform apply` ran)",
        )
    binary = _find_terraform(terraform)
    try:
        proc = subprocess.run(
            [binary, "output", "-json", "-no-color"],
            cwd=tf_dir,
            capture_output=True,
            text=True,
            timeout=OUTPUT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TargetError(
            f"`terraform output -json` in {tf_dir} did not finish within {OUTPUT_TIMEOUT_S:.0f} s",
            value=str(tf_dir),
            hint="check the state backend is reachable (credentials, network)",
        ) from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise TargetError(
            f"`terraform output -json` failed in {tf_dir} (exit {proc.returncode}): " + " ".join(detail[:6]),
            value=str(tf_dir),
            hint="run `terraform init` and `terraform apply` there first",
        )
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise TargetError(
            f"`terraform output -json` in {tf_dir} printed no JSON: {proc.stdout[:200]!r}",
            value=str(tf_dir),
            hint="is that binary Terraform >= 1.5?",
        ) from exc
    if not isinstance(data, dict):
        raise TargetError(
            f"`terraform output -json` in {tf_dir} printed {type(data).__name__}, not an object", value=str(tf_dir)
        )
    return data
