"""Configuration of every option of every command: flags > environment > file > defaults.

Resolved once, for the whole command tree, through click's own machinery:

- **file**: ``--config FILE`` (or ``$LOADCHECK_CONFIG``), else ``./loadcheck.toml``, else the
  ``[tool.loadcheck]`` table of ``./pyproject.toml``. Top-level keys apply to every command that
  has the option; a table per command (``[run]``, ``[capacity]``, ``[stack.up]``; a group's table,
  ``[stack]``, applies to its subcommands) wins over them. Keys are the long option names
  without the dashes (``run-time = "2m"``, ``state-dir = ".loadcheck"``). The file becomes the
  commands' ``default_map``;
- **environment**: every option gets ``envvar`` names, most specific first:
  ``LOADCHECK_<COMMAND>_<OPTION>`` (``LOADCHECK_RUN_DURATION``, ``LOADCHECK_STACK_UP_STATE_DIR``),
  then ``LOADCHECK_<GROUP>_<OPTION>`` for a subcommand, then ``LOADCHECK_<OPTION>``. A repeatable
  option takes several values separated by ``;``;
- **flags** win over both, as click does.

Every value from a file or a variable goes through the option's click type; a bad one, an
unknown key, or a key of another command is a :class:`~loadcheck.core.errors.ConfigError` naming
the file or variable, the key and the value. ``--print-config`` (added to every command) prints
the effective values and where each came from (``ctx.get_parameter_source``), then exits 0.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import os
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from loadcheck.core.errors import ConfigError
from loadcheck.params import WRITTEN, VocabularyError

CONFIG_ENV = "LOADCHECK_CONFIG"
CONFIG_FILE = "loadcheck.toml"
PYPROJECT = "pyproject.toml"
ENV_PREFIX = "LOADCHECK"
LIST_SEPARATOR = ";"  # between the values of a repeatable option in one variable
PRINT_OPTION = "--print-config"
META_KEY = "loadcheck.config"  # ctx.meta: the Config in force (shared by every sub-context)
_PRINT_PARAM = "print_config"
_NOT_CONFIGURABLE = ("help", _PRINT_PARAM)
_PREPARED = "_loadcheck_config_path"  # attribute marking a prepared command (its path)

Path_ = tuple[str, ...]  # a command's path below `loadcheck`, e.g. ("stack", "up")


# ---------------------------------------------------------------------------------------------
# names
def long_names(option: click.Option) -> list[str]:
    """The option's long names without dashes: the keys a configuration file may use."""
    return [o[2:] for o in option.opts if o.startswith("--")]


def env_names(path: Path_, name: str) -> list[str]:
    """``LOADCHECK_<PATH>_<NAME>`` for the command, each group above it, then ``LOADCHECK_<NAME>``."""
    return ["_".join((ENV_PREFIX, *path[:depth], name)).upper().replace("-", "_") for depth in range(len(path), -1, -1)]


def configurable(command: click.Command) -> list[click.Option]:
    """The options of a command that a file or the environment may set."""
    return [p for p in command.params if isinstance(p, click.Option) and p.name not in _NOT_CONFIGURABLE and p.opts]


def command_name(path: Path_) -> str:
    return " ".join(("loadcheck", *path))


# ---------------------------------------------------------------------------------------------
# preparing the command tree (once, at import of loadcheck.cli)
def prepare_tree(group: click.Group, path: Path_ = ()) -> None:
    """Give every command below ``group`` its environment names and ``--print-config``.

    Commands of a lazy group (``loadcheck bench``, whose modules load only when named) are
    prepared when the group hands them out.
    """
    for name, cmd in group.commands.items():
        _prepare_any(cmd, (*path, name))
    if type(group).get_command is not click.Group.get_command:
        original = group.get_command

        def get_command(ctx: click.Context, name: str) -> click.Command | None:
            cmd = original(ctx, name)
            if cmd is not None:
                _prepare_any(cmd, (*path, name))
            return cmd

        setattr(group, "get_command", get_command)  # noqa: B010 - an instance's method, replaced


def _prepare_any(cmd: click.Command, path: Path_) -> None:
    if isinstance(cmd, click.Group):
        prepare_tree(cmd, path)
    else:
        prepare_command(cmd, path)


def prepare_command(cmd: click.Command, path: Path_) -> None:
    if getattr(cmd, _PREPARED, None) is not None:
        return
    setattr(cmd, _PREPARED, path)
    for opt in configurable(cmd):
        # Most specific first, over all the long names (--run-time/--duration); a name the
        # option had already (LOADCHECK_RESOLVE) keeps working.
        by_name = [env_names(path, long) for long in long_names(opt)]
        names = [name for level in zip(*by_name, strict=True) for name in level]
        existing = [opt.envvar] if isinstance(opt.envvar, str) else list(opt.envvar or ())
        opt.envvar = list(dict.fromkeys([*names, *existing]))
        if opt.multiple:
            opt.type = _listed(opt.type)
    cmd.params.append(
        click.Option(
            [PRINT_OPTION],
            _PRINT_PARAM,
            is_flag=True,
            help="print the effective options and where each came from (flag, env, file, default), then exit",
        )
    )
    if cmd.callback is not None:
        cmd.callback = _wrap(cmd.callback)


def _listed(type_: click.ParamType) -> click.ParamType:
    """A copy of ``type_`` whose environment values split on ``;`` (route keys hold spaces)."""
    listed = copy.copy(type_)

    def split(rv: str) -> list[str]:
        return [v.strip() for v in re.split(rf"[{LIST_SEPARATOR}\n]", rv) if v.strip()]

    setattr(listed, "split_envvar_value", split)  # noqa: B010 - this instance only
    return listed


def _wrap(callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context(silent=True)
        if ctx is None:  # called as a plain function
            kwargs.pop(_PRINT_PARAM, None)
            return callback(*args, **kwargs)
        if kwargs.pop(_PRINT_PARAM, False):
            click.echo(render_effective(ctx))
            ctx.exit(0)
        try:
            return callback(*args, **kwargs)
        except ConfigError as exc:
            _attribute(exc, ctx)
            raise

    return run


# ---------------------------------------------------------------------------------------------
# the file
@dataclass(frozen=True)
class Setting:
    """One value of the configuration file and where it was written."""

    value: Any
    file: Path
    table: Path_
    key: str

    @property
    def where(self) -> str:
        return f"{self.file} [{'.'.join(self.table)}] {self.key}" if self.table else f"{self.file} {self.key}"


@dataclass
class Config:
    """The configuration file in force (``path`` None: none) and its tables by command path."""

    path: Path | None = None
    tables: dict[Path_, dict[str, Any]] = field(default_factory=dict)
    looked: str = ""  # where it was looked for, for --print-config

    def settings_for(self, cmd: click.Command, path: Path_) -> dict[str, Setting]:
        """The file's values for one command, by parameter name; the most specific table wins."""
        by_key = {long: opt for opt in configurable(cmd) for long in long_names(opt)}
        found: dict[str, Setting] = {}
        for depth in range(len(path) + 1):
            for key, value in self.tables.get(path[:depth], {}).items():
                opt = by_key.get(key)
                if opt is not None and opt.name is not None and not isinstance(value, dict):
                    found[opt.name] = Setting(_normalise(opt, value), self.path or Path(), path[:depth], key)
        return found


def _normalise(opt: click.Option, value: Any) -> Any:
    return [value] if opt.multiple and not isinstance(value, list) else value


def find_config(explicit: str | None, origin: str, cwd: Path | None = None) -> tuple[Path | None, dict[str, Any], str]:
    """(file, its loadcheck table, where it was looked for)."""
    cwd = cwd or Path.cwd()
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"{origin}: {explicit!r} is not a file",
                value=explicit,
                hint=f"name an existing TOML file, or unset {CONFIG_ENV} to use ./{CONFIG_FILE}"
                if origin.startswith("$")
                else "name an existing TOML file (see examples/loadcheck.toml)",
            )
        data = _read_toml(path)
        if path.name == PYPROJECT:
            table = data.get("tool", {}).get("loadcheck")
            if not isinstance(table, dict):
                raise ConfigError(
                    f"{path}: has no [tool.loadcheck] table", value=str(path), hint="add [tool.loadcheck] to it"
                )
            return path, table, f"{origin} {path}"
        return path, data, f"{origin} {path}"
    looked = f"./{CONFIG_FILE}, ./{PYPROJECT} [tool.loadcheck]"
    own = cwd / CONFIG_FILE
    if own.is_file():
        return own, _read_toml(own), looked
    pyproject = cwd / PYPROJECT
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("loadcheck")
        if isinstance(table, dict):
            return pyproject, table, looked
    return None, {}, looked


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML: {exc}", value=str(path), hint="fix the syntax at that line and column"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}", value=str(path), hint="check the file") from None


def load_config(root: click.Group, ctx: click.Context, explicit: str | None, origin: str) -> Config:
    """Find, read and validate the configuration file against the command tree under ``root``."""
    path, data, looked = find_config(explicit, origin)
    config = Config(path=path, looked=looked)
    if path is not None:
        _validate(root, ctx, data, (), config, path, root)
    return config


def _validate(
    node: click.Group,
    ctx: click.Context,
    table: dict[str, Any],
    path: Path_,
    config: Config,
    file: Path,
    root: click.Group,
) -> None:
    scalars: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            sub = node.get_command(ctx, key)
            if sub is None:
                raise ConfigError(
                    f"{file}: [{'.'.join((*path, key))}]: `{command_name((*path, key))}` is no command",
                    value=key,
                    hint=f"name a table after a command: {', '.join(node.list_commands(ctx))}",
                )
            if isinstance(sub, click.Group):
                _validate(sub, ctx, value, (*path, key), config, file, root)
            else:
                config.tables[(*path, key)] = dict(value)
                for k, v in value.items():
                    _check_value(sub, (*path, key), k, v, file, root, ctx)
                _one_key_per_option(sub, (*path, key), value, file)
        else:
            scalars[key] = value
    config.tables[path] = scalars
    for key, value in scalars.items():
        holders = list(_options_named(node, path, key, ctx))
        if not holders:
            _unknown_key(node, path, key, value, file, root, ctx)
        for cmd, cmd_path, _ in holders:
            _check_value(cmd, cmd_path, key, value, file, root, ctx, table_path=path)


def _one_key_per_option(cmd: click.Command, path: Path_, table: dict[str, Any], file: Path) -> None:
    """Two names of one option in one table (``run-time`` and ``duration``) would leave one unused."""
    for opt in configurable(cmd):
        keys = [k for k in long_names(opt) if k in table]
        if len(keys) > 1:
            raise ConfigError(
                f"{file} [{'.'.join(path)}]: {' and '.join(keys)} name the same option",
                value=keys,
                hint=f"keep one of {', '.join(keys)}",
            )


def _commands(
    group: click.Group, path: Path_, ctx: click.Context, *, lazy: bool
) -> Iterator[tuple[click.Command, Path_]]:
    """The commands under ``group``; those of lazy groups (``bench``) only with ``lazy``."""
    is_lazy = type(group).get_command is not click.Group.get_command
    if is_lazy and not lazy:
        return
    for name in group.list_commands(ctx) if is_lazy else list(group.commands):
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name), ctx, lazy=lazy)
        elif cmd is not None:
            yield cmd, (*path, name)


def _options_named(
    group: click.Group, path: Path_, key: str, ctx: click.Context
) -> list[tuple[click.Command, Path_, click.Option]]:
    """Every (command, path, option) under ``group`` with the long name ``key``; lazy groups'
    commands are loaded only when no other command has it."""
    for lazy in (False, True):
        hits = [
            (cmd, cmd_path, opt)
            for cmd, cmd_path in _commands(group, path, ctx, lazy=lazy)
            for opt in configurable(cmd)
            if key in long_names(opt)
        ]
        if hits:
            return hits
    return []


def _where(file: Path, table: Path_, key: str) -> str:
    """How an error names a key of the configuration file: ``FILE [table] key``."""
    return f"{file} [{'.'.join(table)}] {key}" if table else f"{file} {key}"


def _unknown_key(
    node: click.Group | click.Command,
    path: Path_,
    key: str,
    value: Any,
    file: Path,
    root: click.Group,
    ctx: click.Context,
) -> None:
    where = _where(file, path, key)
    elsewhere = sorted({p for _, p, _ in _options_named(root, (), key, ctx)})
    if elsewhere:
        owners = ", ".join(f"`{command_name(p)}`" for p in elsewhere)
        raise ConfigError(
            f"{where} = {_toml(value)}: `{command_name(path)}` has no option --{key} (it is an option of {owners})",
            value=key,
            hint=f"move it to [{'.'.join(elsewhere[0])}], or to the top level (every command that has the option)",
        )
    known = sorted(
        {long for cmd, _ in _commands_of(node, path, ctx) for o in configurable(cmd) for long in long_names(o)}
    )
    close = difflib.get_close_matches(key.replace("_", "-"), known, n=1, cutoff=0.75)
    raise ConfigError(
        f"{where} = {_toml(value)}: no command has an option --{key}",
        value=key,
        hint=f"did you mean {close[0]!r}?" if close else "keys are long option names without the dashes, e.g. run-time",
    )


def _commands_of(
    node: click.Group | click.Command, path: Path_, ctx: click.Context
) -> Iterator[tuple[click.Command, Path_]]:
    if isinstance(node, click.Group):
        yield from _commands(node, path, ctx, lazy=False)
    else:
        yield node, path


def _check_value(
    cmd: click.Command,
    path: Path_,
    key: str,
    value: Any,
    file: Path,
    root: click.Group,
    ctx: click.Context,
    *,
    table_path: Path_ | None = None,
) -> None:
    table_path = path if table_path is None else table_path
    where = _where(file, table_path, key)
    if isinstance(value, dict):
        raise ConfigError(
            f"{where}: `{command_name(path)}` is no group of commands",
            value=key,
            hint=f"give option values in [{'.'.join(path)}]",
        )
    opt = next((o for o in configurable(cmd) if key in long_names(o)), None)
    if opt is None:
        _unknown_key(cmd, path, key, value, file, root, ctx)
        return
    if isinstance(value, list) and not opt.multiple:
        raise ConfigError(
            f"{where} = {_toml(value)}: --{key} takes one value",
            value=value,
            hint=f"give one value, e.g. {key} = {_toml(value[0])}",
        )
    try:
        opt.type_cast_value(click.Context(cmd, info_name=path[-1] if path else None), _normalise(opt, value))
    except click.BadParameter as exc:
        raise ConfigError(
            f"{where} = {_toml(value)}: {exc.message.rstrip('.')}",
            value=value,
            hint=f"give --{key} a valid value in {file}",
        ) from None


# ---------------------------------------------------------------------------------------------
# default_map, built lazily per command
class Defaults:
    """click's ``default_map`` for a group: ``get(name)`` is the subcommand's (a dict by parameter
    name, or another Defaults for a subgroup)."""

    def __init__(self, config: Config, group: click.Group, path: Path_, ctx: click.Context) -> None:
        self.config, self.group, self.path, self.ctx = config, group, path, ctx

    def get(self, name: str, default: Any = None) -> Any:
        cmd = self.group.get_command(self.ctx, name)
        if cmd is None:
            return default
        if isinstance(cmd, click.Group):
            return Defaults(self.config, cmd, (*self.path, name), self.ctx)
        return {k: s.value for k, s in self.config.settings_for(cmd, (*self.path, name)).items()}

    def __contains__(self, name: object) -> bool:
        return False  # the group's own options (--config) have no file value

    def __getitem__(self, name: str) -> Any:
        raise KeyError(name)


def install(root: click.Group, ctx: click.Context, explicit: str | None, origin: str) -> Config:
    """Read the configuration file and make it the default map of every command below ``root``."""
    config = load_config(root, ctx, explicit, origin)
    ctx.meta[META_KEY] = config
    ctx.default_map = Defaults(config, root, (), ctx)  # type: ignore[assignment]
    return config


# ---------------------------------------------------------------------------------------------
# where a value came from
def source_of(ctx: click.Context, opt: click.Option) -> str:
    """``flag --x``, ``env VAR``, ``file PATH [table] key`` or ``default``."""
    assert opt.name is not None
    src = ctx.get_parameter_source(opt.name)
    if src is ParameterSource.COMMANDLINE:
        return "flag " + "/".join(opt.opts)
    if src is ParameterSource.ENVIRONMENT:
        return f"env {_env_set(opt)}"
    if src is ParameterSource.DEFAULT_MAP:
        config: Config | None = ctx.meta.get(META_KEY)
        path = getattr(ctx.command, _PREPARED, None) or ()
        setting = config.settings_for(ctx.command, path).get(opt.name) if config else None
        return f"file {setting.where}" if setting else "file"
    return "default"


def _env_set(opt: click.Option) -> str:
    names = [opt.envvar] if isinstance(opt.envvar, str) else list(opt.envvar or ())
    return next((n for n in names if os.environ.get(n)), "?")


def _attribute(exc: ConfigError, ctx: click.Context) -> None:
    """Name the variable or file a bad value came from, when the error is about one option."""
    hits = []
    for opt in configurable(ctx.command):
        if opt.name is None or ctx.get_parameter_source(opt.name) not in (
            ParameterSource.ENVIRONMENT,
            ParameterSource.DEFAULT_MAP,
        ):
            continue
        if any(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", exc.message) for o in opt.opts):
            hits.append(source_of(ctx, opt))
    if len(hits) == 1:
        where = hits[0].split(" ", 1)[1]
        exc.message += f" (from {where})"
        exc.hint = f"{exc.hint} (in {where})" if exc.hint else f"correct it in {where}"


def bad_parameter(exc: click.BadParameter) -> ConfigError | None:
    """A click type error about a value from the environment or the file, as a ConfigError naming
    the variable or file; None for a value from the command line (click says it well)."""
    ctx, param = exc.ctx, exc.param
    if isinstance(exc, VocabularyError) and ctx is not None:
        _attribute(exc.error, ctx)  # the vocabulary parser's own words and fix, and where the value came from
        return exc.error
    if ctx is None or not isinstance(param, click.Option) or param.name is None:
        return None
    src = ctx.get_parameter_source(param.name)
    if src not in (ParameterSource.ENVIRONMENT, ParameterSource.DEFAULT_MAP):
        return None
    where = source_of(ctx, param).split(" ", 1)[1]
    value = os.environ.get(where) if src is ParameterSource.ENVIRONMENT else None
    shown = f" = {value!r}" if value is not None else ""
    return ConfigError(
        f"{where}{shown}: {param.opts[-1]}: {exc.message.rstrip('.')}",
        value=value,
        hint=f"correct or unset {where}" if src is ParameterSource.ENVIRONMENT else f"correct it in {where}",
    )


# ---------------------------------------------------------------------------------------------
# --print-config
def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, WRITTEN):  # a duration or rates as written ("2m", "1,2,5"), read back the same
        return json.dumps(value.text)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))


def render_effective(ctx: click.Context) -> str:
    """The effective options of the command in ``ctx`` as a TOML table, each with its source."""
    path: Path_ = getattr(ctx.command, _PREPARED, None) or (ctx.info_name or "",)
    config: Config | None = ctx.meta.get(META_KEY)
    file = f"{config.path}" if config and config.path else f"none (looked for {config.looked if config else '-'})"
    lines = [
        f"# {command_name(path)}: effective options (flag > environment > file > default)",
        f"# configuration file: {file}",
        f"[{'.'.join(path)}]",
    ]
    rows = []
    for opt in configurable(ctx.command):
        assert opt.name is not None
        value = ctx.params.get(opt.name)
        if opt.hidden and (value is None or value == ()):
            continue  # an old name kept for a while (e.g. --rates): shown only when it was used
        key = long_names(opt)[0]
        text = f"{key} = {_toml(value)}" if value is not None and value != () else f"# {key} = (not set)"
        rows.append((text, source_of(ctx, opt)))
    width = max((len(t) for t, _ in rows), default=0)
    lines += [f"{text:<{width}}  # {src}" for text, src in rows]
    return "\n".join(lines)
