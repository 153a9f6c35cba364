"""The ``loadcheck`` command line.

Each subcommand lives in its own module under ``loadcheck/commands/`` and exposes a click
command named ``command``; this module only assembles them, so ``loadcheck --help`` lists
exactly the subcommands that exist.
"""

from __future__ import annotations

import importlib
import sys

import click

from loadcheck import __version__
from loadcheck.core.errors import LoadcheckError

# (subcommand, module) in the order --help lists them.
SUBCOMMANDS = (
    ("run", "loadcheck.commands.run"),
    ("stack", "loadcheck.commands.stack"),
    ("check", "loadcheck.commands.check"),
    ("report", "loadcheck.commands.report"),
    ("compare", "loadcheck.commands.compare"),
    ("baseline", "loadcheck.commands.baseline"),
    ("capacity", "loadcheck.commands.capacity"),
    ("bench", "loadcheck.commands.bench"),
)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except LoadcheckError as exc:
            click.echo(f"loadcheck: error: {exc}", err=True)
            sys.exit(exc.exit_status)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="loadcheck")
def cli() -> None:
    """Load-test and verify an API Gateway HTTP API + Lambda + DynamoDB + OpenSearch stack.

    The default target is the local emulation of the reference stack (loopback only).
    """


def _register() -> None:
    for name, module in SUBCOMMANDS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue  # not built yet: not listed
            raise
        cli.add_command(mod.command, name)


_register()


def main() -> None:
    cli(prog_name="loadcheck")


if __name__ == "__main__":
    main()
