"""``loadcheck corpus load``: the search corpus into the search domain, as the search-admin role.

The loader is :func:`reference_stack.corpus.load_corpus` (the local stack's provisioning uses
it too): opensearch-py's bulk helpers, signed with SigV4 (``es``) as a session of the
search-admin role that the caller (``--profile``) assumes. It is idempotent: a second load
changes nothing and says so. No credentials are left in the shell.
"""

from __future__ import annotations

from typing import Any

import click

from loadcheck.commands.target_options import build_target, target_options
from loadcheck.core.errors import TargetError
from reference_stack import corpus


@click.group(name="corpus")
def command() -> None:
    """The search corpus (reference_stack/data) of the stack's search domain."""


@command.command()
@target_options
def load(**options: Any) -> None:
    """Create the index and load the corpus as the search-admin role; a second load changes nothing."""
    target = build_target(**options)
    if not target.search_endpoint or not target.search_index:
        raise TargetError(
            "the target names no search endpoint or index",
            hint="the Terraform outputs search_endpoint and search_index: run `terraform apply` again",
        )
    credentials = target.role_credentials("search-admin")
    click.echo(f"loading the corpus into {target.search_endpoint} index {target.search_index} as the search-admin role")

    def progress(done: int, total: int) -> None:
        click.echo(f"  {done}/{total} documents")

    client = corpus.signed_client(target.search_endpoint, credentials, target.region)
    report = corpus.load_corpus(client, target.search_index, progress=progress)
    click.echo(report.summary)
