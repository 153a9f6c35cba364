"""``loadcheck bench aws | gateway | load | checks | fuzz``: benchmarks of each part.

Each benchmark measures its subject and a baseline in the same run on the same machine and
reports ratios, so the figures mean something on any host. Each lives in
``loadcheck/bench/<name>.py`` and exposes a click ``command``.
"""

from __future__ import annotations

import importlib

import click

BENCHES = {
    "aws": ("loadcheck.bench.aws", "DynamoDB through the capacity governor vs moto directly"),
    "gateway": ("loadcheck.bench.gateway", "signed requests/s and latency through the gateway"),
    "load": ("loadcheck.bench.load", "signer vs botocore, signed+ledger vs plain Locust, memory over time"),
    "checks": ("loadcheck.bench.checks", "reconcile and access-log join throughput on a 100,000-request run"),
    "fuzz": ("loadcheck.bench.fuzz", "schema fuzzing through the signed gateway, 500 examples per operation"),
}


class _Benches(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(BENCHES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in BENCHES:
            return None
        module, short = BENCHES[name]
        cmd = importlib.import_module(module).command
        cmd.short_help = cmd.short_help or short
        return cmd


@click.group(name="bench", cls=_Benches)
def command() -> None:
    """Benchmarks, reported as ratios against a baseline measured in the same run."""
