"""The ``loadcheck`` command line.

Each subcommand lives in its own module under ``loadcheck/commands/`` and exposes a click
command named ``command``; this module only assembles them, reads the configuration
(:mod:`loadcheck.commands.config`: ``--config``, ``loadcheck.toml``, ``LOADCHECK_*``) and prints
every :class:`~loadcheck.core.errors.LoadcheckError` in one place.
"""

from __future__ import annotations

import signal
import sys

import click

from loadcheck import __version__
from loadcheck.commands import baseline, bench, capacity, check, compare, config, corpus, report, run, smoke, stack
from loadcheck.core.errors import LoadcheckError

# (subcommand, module) in the order --help lists them.
SUBCOMMANDS = (
    ("run", run),
    ("stack", stack),
    ("corpus", corpus),
    ("smoke", smoke),
    ("check", check),
    ("report", report),
    ("compare", compare),
    ("baseline", baseline),
    ("capacity", capacity),
    ("bench", bench),
)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.BadParameter as exc:
            # A bad value from $LOADCHECK_* or the configuration file names its variable or file.
            error = config.bad_parameter(exc)
            if error is None:
                raise
            click.echo(f"loadcheck: error: {error}", err=True)
            sys.exit(error.exit_status)
        except LoadcheckError as exc:
            click.echo(f"loadcheck: error: {exc}", err=True)
            sys.exit(exc.exit_status)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="loadcheck")
@click.option(
    "--config",
    "config_file",
    default=None,
    envvar=config.CONFIG_ENV,
    metavar="FILE",
    help=f"configuration file (TOML) [default ./{config.CONFIG_FILE}, else [tool.loadcheck] in ./pyproject.toml; "
    f"env {config.CONFIG_ENV}]",
)
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """Load-test and verify an API Gateway HTTP API + Lambda + DynamoDB + OpenSearch stack.

    The default target is the local emulation of the reference stack (loopback only). Every
    option can also be set in loadcheck.toml or as LOADCHECK_<COMMAND>_<OPTION> /
    LOADCHECK_<OPTION>; flags win over the environment, the environment over the file.
    """
    source = ctx.get_parameter_source("config_file")
    origin = f"${config.CONFIG_ENV}" if source is click.core.ParameterSource.ENVIRONMENT else "--config"
    config.install(cli, ctx, config_file, origin)


for _name, _module in SUBCOMMANDS:
    cli.add_command(_module.command, _name)
config.prepare_tree(cli)


def main() -> None:
    # A CLI started from a background job inherits SIGINT ignored (and exec keeps it so): restore
    # the default, so Ctrl-C (or `kill -INT`) stops a run in order wherever it was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cli(prog_name="loadcheck")


if __name__ == "__main__":
    main()
