"""The ``loadcheck`` command line.

Each subcommand lives in its own module under ``loadcheck/commands/`` and exposes a click
command named ``command``; this module only assembles them and prints every error in one place
and one format (docs/cli.md, "Errors")::

    loadcheck: error: <what is wrong, naming the value>
      fix: <how>

on stderr: a :class:`~loadcheck.core.errors.LoadcheckError` with its own exit code, and click's
own usage errors (unknown option, bad choice, missing value, bad type) with
:attr:`ExitCode.USAGE <loadcheck.core.errors.ExitCode.USAGE>`, never a traceback or a usage dump.
It also reads the configuration (:mod:`loadcheck.commands.config`: ``--config``,
``loadcheck.toml``, ``LOADCHECK_*``).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import Any, cast

import click

from loadcheck import __version__
from loadcheck.commands import baseline, bench, capacity, check, compare, config, corpus, report, run, smoke, stack
from loadcheck.core.errors import ExitCode, LoadcheckError

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


def print_error(message: str, fix: str) -> None:
    """Print one error in the one format (stderr)."""
    click.echo(f"loadcheck: error: {message}\n  fix: {fix}", err=True)


def command_path(group: click.Group, args: list[str]) -> str:
    """``loadcheck stack env``: the (sub)command the arguments name, as far as they name one."""
    path, cmd = ["loadcheck"], cast(click.Command, group)
    for arg in args:
        if arg.startswith("-") or not isinstance(cmd, click.Group):
            break
        sub = cmd.get_command(click.Context(cmd), arg)
        if sub is None:
            break
        path.append(arg)
        cmd = sub
    return " ".join(path)


def usage_error(exc: click.UsageError, path: str) -> tuple[str, str]:
    """A click usage error as (message, fix): the nearest visible option or command, and --help."""
    if exc.ctx is not None:
        path = exc.ctx.command_path
    fix = f"see `{path} --help`"
    if isinstance(exc, click.NoSuchOption | click.exceptions.NoSuchCommand):
        hidden = {o for p in (exc.ctx.command.params if exc.ctx else []) if getattr(p, "hidden", False) for o in p.opts}
        near = [n for n in exc.possibilities or () if n not in hidden]
        if near:
            fix = f"did you mean {' or '.join(near)}? {fix}"
        return exc.message.rstrip("."), fix
    return exc.format_message().rstrip("."), fix


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.BadParameter as exc:
            # A bad value from $LOADCHECK_* or the configuration file names its variable or file;
            # one a vocabulary type refused (loadcheck.params) is said in its parser's words.
            error = config.bad_parameter(exc)
            if error is None:
                raise
            click.echo(f"loadcheck: error: {error}", err=True)
            sys.exit(int(error.exit_code))
        except LoadcheckError as exc:
            if not exc.hint:  # every error says how to fix it: at least, where the options are listed
                exc.hint = f"see `{ctx.command_path} {ctx.invoked_subcommand or ''} --help`".replace("  ", " ")
            click.echo(f"loadcheck: error: {exc}", err=True)
            sys.exit(int(exc.exit_code))

    def main(self, args: Sequence[str] | None = None, *rest: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """click's main, its errors in loadcheck's format and exit codes."""
        kwargs["standalone_mode"] = False
        argv = list(sys.argv[1:] if args is None else args)
        try:
            rv = super().main(argv, *rest, **kwargs)
        except click.UsageError as exc:
            print_error(*usage_error(exc, command_path(self, argv)))
            sys.exit(int(ExitCode.USAGE))
        except click.ClickException as exc:  # e.g. click.FileError: a file an option names
            print_error(exc.format_message(), f"see `{command_path(self, argv)} --help`")
            sys.exit(int(ExitCode.USAGE))
        except click.Abort:  # Ctrl-C outside a run (a run handles its own, see run_driver)
            click.echo("loadcheck: interrupted", err=True)
            sys.exit(int(ExitCode.INTERRUPTED))
        sys.exit(int(rv) if isinstance(rv, int) else 0)


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

    The default target is the local emulation of the reference stack (loopback only).

    \b
    Exit codes (docs/cli.md): 0 passed, 1 a check failed, 2 bad options,
    3 a threshold failed, 4 checks could not run or a run directory is unreadable,
    5 the target cannot be used, 6 aborted by --abort-on-fail, 130 interrupted.
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
