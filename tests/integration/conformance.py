"""Helpers of the conformance suite: real clients (aws CLI, curl) driven as a user drives them.

Each client gets the environment ``loadcheck stack env --keys`` prints, as a user's shell would
after ``eval "$(loadcheck stack env --keys)"``, plus an empty AWS config file of its own (so the
machine's ``~/.aws`` never leaks in).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

AWS_CLI = Path(sys.executable).parent / "aws"


def stack_env(state_dir: str, tmp: Path, *, config: str = "") -> dict[str, str]:
    """The environment after ``eval "$(loadcheck stack env --keys --state-dir ...)"``."""
    out = subprocess.run(
        [sys.executable, "-m", "loadcheck", "stack", "env", "--keys", "--state-dir", state_dir],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    cfg = tmp / "aws-config"
    profile = env.get("AWS_PROFILE")
    cfg.write_text(f"[default]\n{config}\n" + (f"[profile {profile}]\n{config}\n" if profile else ""))
    env["AWS_CONFIG_FILE"] = str(cfg)
    env["AWS_PAGER"] = ""
    return env


def aws(env: dict[str, str], *args: str, check: bool = True) -> Any:
    """Run the aws CLI with ``--output json``; the parsed output, or the CompletedProcess when ``check`` is False."""
    proc = subprocess.run(
        [str(AWS_CLI), *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if not check:
        return proc
    assert proc.returncode == 0, f"aws {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def client(env: dict[str, str], service: str, *, attempts: int | None = None) -> Any:
    """A boto3 client configured from the same environment (keys, endpoint, region); ``attempts``
    caps botocore's retries (1: the first answer is the one the test sees)."""
    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts}) if attempts else None
    return session.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], config=config)
