"""The command line's vocabulary as click parameter types and shared options (docs/cli.md).

Each type converts with the one parser of :mod:`loadcheck.core.runconfig`, so an option reads a
duration, a fraction, a rate or a route key by the same rules in every command, and a bad
value is the same error wherever it is given (:class:`VocabularyError`, a click BadParameter
holding the parser's :class:`~loadcheck.core.errors.ConfigError`: the option, the value and the
fix; exit 2; from an environment variable or the configuration file it names that too)::

    Duration          500ms, 45s, 2m, 1m30s, 1h; a bare number is seconds       -> float seconds
    Fraction          5% or 0.05                                               -> float 0..1
    PercentagePoints  0.5pp or 0.005: a change of a rate                       -> float
    Rate / Rates      requests/s over all workers: 16 / 1,2,5,10               -> float / tuple
    RouteKey          METHOD /path as the stack description writes it, or all  -> str

Options whose idea is shared are declared once here: ``--state-dir`` (a directory, every
command), ``--out`` (the directory a command writes into). :func:`given` tells an option the
user set (command line, environment, configuration file) from its default, for the "does not
apply" errors (:func:`refuse_unless`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from loadcheck.core.errors import ConfigError
from loadcheck.core.runconfig import (
    parse_duration,
    parse_fraction,
    parse_percentage_points,
    parse_rate,
    parse_route_key,
    parse_steps,
)

F = TypeVar("F", bound=Callable[..., Any])
STATE_DIR_ENV = "LOADCHECK_STATE_DIR"
STATE_DIR_HELP = f"the local stack's state directory [default ${STATE_DIR_ENV}, else .loadcheck]"


def option_name(param: click.Parameter | None, fallback: str = "value") -> str:
    """How the user wrote the option: its first long name (``--duration``), else its name."""
    if param is None:
        return fallback
    longs = [o for o in param.opts if o.startswith("--")]
    return longs[0] if longs else (param.opts[0] if param.opts else str(param.name))


class VocabularyError(click.BadParameter):
    """A value a vocabulary parser refused: click's kind of error (so the configuration layer can
    name the variable or file a value came from), carrying the parser's ConfigError, whose words
    and fix the CLI prints for a value from the command line."""

    def __init__(self, error: ConfigError, option: str, ctx: click.Context | None, param: click.Parameter | None):
        super().__init__(error.message.removeprefix(f"{option}: "), ctx=ctx, param=param)
        self.error = error


class _Vocab(click.ParamType):
    """A parameter type converting with a runconfig parser."""

    def parse(self, value: Any, option: str) -> Any:
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):  # a default or a value click converted already
            return value
        option = option_name(param)
        try:
            return self.parse(value, option)
        except ConfigError as exc:
            raise VocabularyError(exc, option, ctx, param) from None


class Seconds(float):
    """A duration in seconds that keeps how it was written (``--print-config`` shows ``"2m"``).

    Copies (``copy``, ``dataclasses.asdict``) keep the text; without one it is the seconds."""

    text: str

    def __new__(cls, seconds: float, text: str | None = None) -> Seconds:
        obj = super().__new__(cls, seconds)
        obj.text = text if text is not None else f"{float(seconds):g}s"
        return obj

    def __getnewargs__(self) -> tuple[float, str]:  # type: ignore[override]
        return (float(self), self.text)


class Duration(_Vocab):
    name = "duration"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DURATION"

    def parse(self, value: str, option: str) -> float:
        return Seconds(parse_duration(value, option=option), value.strip())


class Fraction(_Vocab):
    name = "fraction"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "FRACTION"

    def parse(self, value: str, option: str) -> float:
        return parse_fraction(value, option=option)


class PercentagePoints(_Vocab):
    name = "percentage points"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "PP"

    def parse(self, value: str, option: str) -> float:
        return parse_percentage_points(value, option=option)


class Rate(_Vocab):
    name = "rate"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "RATE"

    def parse(self, value: str, option: str) -> float:
        return parse_rate(value, option=option)


class RateList(tuple[float, ...]):
    """Rates that keep how they were written (``--print-config`` shows ``"1,2,5"``).

    ``dataclasses.asdict`` rebuilds a tuple from its items alone: the text is then the rates."""

    text: str

    def __new__(cls, rates: Iterable[float], text: str | None = None) -> RateList:
        obj = super().__new__(cls, rates)
        obj.text = text if text is not None else ",".join(f"{r:g}" for r in obj)
        return obj

    def __getnewargs__(self) -> tuple[tuple[float, ...], str]:
        return (tuple(self), self.text)


# Values that print as they were written (--print-config): they read back the same.
WRITTEN = (Seconds, RateList)


class Rates(_Vocab):
    name = "rates"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "RATE,RATE,..."

    def parse(self, value: str, option: str) -> tuple[float, ...]:
        return RateList(parse_steps(value, option=option), value.strip())


class RouteKey(_Vocab):
    name = "route"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "'METHOD /path'"

    def parse(self, value: str, option: str) -> str:
        return parse_route_key(value, option=option)


DURATION = Duration()
FRACTION = Fraction()
PERCENTAGE_POINTS = PercentagePoints()
RATE = Rate()
RATES = Rates()
ROUTE_KEY = RouteKey()
STATE_DIR = click.Path(file_okay=False)


def state_dir_option(fn: F) -> F:
    """``--state-dir DIRECTORY``, the same in every command."""
    return click.option("--state-dir", type=STATE_DIR, default=None, help=STATE_DIR_HELP)(fn)


# Where a value the user chose comes from: the command line, or (added by the configuration
# layer) the environment or a configuration file; a default is not a choice.
_SET_BY_USER = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.DEFAULT_MAP)


def given(ctx: click.Context, name: str) -> bool:
    """Whether the user set the option whose parameter name is ``name``."""
    return ctx.get_parameter_source(name) in _SET_BY_USER


def spelled(ctx: click.Context, name: str) -> str:
    """The option of parameter ``name`` as --help shows it (``--spawn-rate``)."""
    for p in ctx.command.params:
        if p.name == name:
            return option_name(p)
    return f"--{name.replace('_', '-')}"


def refuse_unless(ctx: click.Context, names: Iterable[str], *, applies: bool, why: str, hint: str) -> None:
    """An error (exit 2) when the user set one of ``names`` although it does not apply.

    ``why`` completes "--x does not apply ..."; ``hint`` is the fix."""
    if applies:
        return
    for name in names:
        if given(ctx, name):
            value = ctx.params.get(name)
            opt = spelled(ctx, name)
            raise ConfigError(f"{opt} does not apply {why}", value=value, hint=hint.format(option=opt))


def deprecated_alias(new: str, old: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback for a hidden option kept under its old name: warns (stderr) when it is used."""

    def warn(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value not in (None, (), False) and ctx.get_parameter_source(param.name or "") in _SET_BY_USER:
            click.echo(f"loadcheck: warning: {old} is deprecated; use {new}", err=True)
        return value

    return warn


class DurationOrZero(Duration):
    """A duration, or ``0`` (``0s``) for "none": e.g. a soak that is skipped."""

    def parse(self, value: str, option: str) -> float:
        if value.strip().lower() in ("0", "0s", "0ms"):
            return Seconds(0.0, value.strip())
        return super().parse(value, option)


DURATION_OR_ZERO = DurationOrZero()


def output_options(bench: str) -> Callable[[F], F]:
    """``--out DIR`` (writes DIR/bench-<bench>.json) and ``--json`` (the figures on stdout, text on stderr)."""

    def check_dir(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None and value.endswith(".json"):
            raise ConfigError(
                f"--out {value!r}: --out names the directory the figures are written into, not a file",
                value=value,
                hint=f"e.g. --out {value.rsplit('/', 1)[0] if '/' in value else '.'} (writes bench-{bench}.json there); "
                "--json prints them on stdout",
            )
        return value

    def decorate(fn: F) -> F:
        fn = click.option(
            "--json",
            "as_json",
            is_flag=True,
            help="print the figures as one JSON document on stdout (the progress text goes to stderr)",
        )(fn)
        return click.option(
            "--out",
            "out_dir",
            type=click.Path(file_okay=False),
            default=None,
            callback=check_dir,
            help=f"also write the figures into this directory, as bench-{bench}.json",
        )(fn)

    return decorate


def write_figures(doc: Any, *, bench: str, out_dir: str | None, as_json: bool) -> None:
    """The figures of ``loadcheck bench <bench>``: into ``--out DIR``, and on stdout with ``--json``."""
    text = json.dumps(doc, indent=2) + "\n"
    if out_dir is not None:
        path = Path(out_dir) / f"bench-{bench}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"figures: {path}", err=True)
    if as_json:
        click.echo(text, nl=False)
