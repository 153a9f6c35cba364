"""Every ``loadcheck`` command line the docs show names commands and options that exist.

README.md, docs/*.md and every text file under examples/ are read; a command line is a line of a
fenced code block (lines ending in ``\\`` joined), an inline code span, or any line of a
non-Markdown example file, that calls ``loadcheck`` (``bin/loadcheck``, ``.venv/bin/loadcheck``,
``python -m loadcheck`` ...). Its subcommands are walked down ``loadcheck.cli.cli`` with click
(no process is started) and each ``-x``/``--option`` after them must be one that command's
``--help`` lists. A failure names the file, the line and the option, and what the command has.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from loadcheck.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SUFFIXES = {".md", ".py", ".yml", ".yaml", ".sh", ".toml", ".txt", ".cfg", ".ini", ""}
# `loadcheck` (any path before it) followed by a space, where a shell would run it: at the start,
# or after a separator, `$(`, a quote, `python -m`, `run:`, a prompt or a list dash. Not in prose
# such as "is not one this loadcheck reads", nor in a message quoting a command in backticks.
CALL = re.compile(r"(?<![\w.-])(?:[\w.-]*/)?loadcheck(?= )")
COMMAND_POSITION = ("", ";", "&&", "||", "|", "(", "'", '"', "-m", ":", "exec", "time", "$", "-", "=")
FENCE = re.compile(r"^\s*(```|~~~)")
SPAN = re.compile(r"`([^`]+)`")
STOP = {"|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "<", "&", "--"}
OPTION = re.compile(r"^(--?[A-Za-z][A-Za-z0-9-]*)")


@dataclass(frozen=True)
class Shown:
    path: Path
    line: int
    text: str  # the command line as the doc shows it, from `loadcheck` on


def doc_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for p in sorted((ROOT / "examples").rglob("*")):
        if p.is_file() and p.suffix in EXAMPLE_SUFFIXES and "__pycache__" not in p.parts:
            files.append(p)
    return files


def code_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each piece of code in a file: fenced lines (continuations joined),
    inline code spans (which may wrap over lines), every line of a non-Markdown file."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if path.suffix != ".md":
        yield from _joined(enumerate(lines, 1))
        return
    fenced: list[tuple[int, str]] = []
    prose = list(lines)
    inside = False
    for n, line in enumerate(lines, 1):
        if FENCE.match(line):
            inside = not inside
            prose[n - 1] = ""
        elif inside:
            fenced.append((n, line))
            prose[n - 1] = ""
    yield from _joined(fenced)
    text = "\n".join(prose)
    for m in SPAN.finditer(text):
        yield text.count("\n", 0, m.start()) + 1, m.group(1).replace("\n", " ")


def _joined(numbered: Iterator[tuple[int, str]] | list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    start, parts = 0, []
    for n, line in numbered:
        if not parts:
            start = n
        if line.rstrip().endswith("\\"):
            parts.append(line.rstrip()[:-1])
            continue
        parts.append(line)
        yield start, " ".join(parts)
        parts = []
    if parts:
        yield start, " ".join(parts)


def shown_commands() -> list[Shown]:
    out = []
    for path in doc_files():
        for n, text in code_lines(path):
            out.extend(Shown(path, n, call) for call in calls(text))
    return out


def calls(text: str) -> list[str]:
    """Each ``loadcheck ...`` call in a piece of code, from ``loadcheck`` to the end."""
    out = []
    for m in CALL.finditer(text):
        before = text[: m.start()].rstrip()
        if before == "" or before.endswith(COMMAND_POSITION[1:]):
            out.append(text[m.start() :])
    return out


def tokens(text: str) -> list[str]:
    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote (a span cut from a longer line): plain words
        words = text.split()
    out = []
    for w in words[1:]:  # after `loadcheck`
        if w in STOP or w.startswith("#"):
            break
        out.append(w)
    return out


def problems(shown: Shown) -> list[str]:
    """What is wrong with one command line: unknown subcommands or options."""
    where = f"{shown.path.relative_to(ROOT)}:{shown.line}"
    cmd: click.Command = cli
    path = ["loadcheck"]
    found: list[str] = []
    words = tokens(shown.text)
    i = 0
    while isinstance(cmd, click.Group) and i < len(words):
        word = words[i].strip("[]()'\"`,.:")
        if word.startswith("-"):
            break  # options of the group itself
        ctx = click.Context(cmd, info_name=cmd.name)
        sub = cmd.get_command(ctx, word)  # lazy groups (`bench`) load their commands here
        if sub is None:
            if re.fullmatch(r"[a-z][a-z0-9-]*", word):
                found.append(
                    f"{where}: `{' '.join(path)} {word}`: no such command "
                    f"(it has: {', '.join(cmd.list_commands(ctx))}); fix the line: {shown.text.strip()}"
                )
            return found  # a placeholder (COMMAND, <cmd>) or an unknown name: nothing more to hold
        cmd, path, i = sub, [*path, word], i + 1
    known = _options(cmd)
    for word in words[i:]:
        for part in word.lstrip("[(").split("/"):
            m = OPTION.match(part)
            if m is None:
                continue
            option = m.group(1)
            if option not in known:
                near = difflib.get_close_matches(option, sorted(known), n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                found.append(
                    f"{where}: `{' '.join(path)}` has no option {option}{hint}; "
                    f"its --help lists {', '.join(sorted(known))}; fix the line: {shown.text.strip()}"
                )
    return found


def _options(cmd: click.Command) -> set[str]:
    """The options ``cmd --help`` lists (hidden ones are not listed, so not counted)."""
    ctx = click.Context(cmd, info_name=cmd.name)
    names: set[str] = set()
    for param in cmd.get_params(ctx):
        if isinstance(param, click.Option) and not param.hidden:
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def test_the_docs_show_loadcheck_command_lines():
    shown = shown_commands()
    files = {s.path.name for s in shown}
    assert {"README.md", "load.md"} <= files, files  # the reader found them: this test can fail
    assert len(shown) > 50


def test_every_option_a_doc_shows_exists_in_that_commands_help():
    found = [p for s in shown_commands() for p in problems(s)]
    assert not found, "docs name options or commands loadcheck does not have:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("loadcheck run --duration 2m --rate 40", []),
        ("loadcheck run --no-such-option 1", ["has no option --no-such-option"]),
        ("loadcheck stack up [--detach] / down / status", []),
        ("loadcheck stack upp --detach", ["`loadcheck stack upp`: no such command"]),
        ("loadcheck COMMAND --help", []),
        ("loadcheck: error: [capacity] fault: `loadcheck capacity` has no option --fault", []),
        ("`<run>/results.json`: schema_version 99 is not one this loadcheck reads (it reads 1, 2)", []),
        (
            "loadcheck run --duratoin 5s | tee out.txt --not-ours",
            ["has no option --duratoin (did you mean --duration?)"],
        ),
        ("loadcheck run --no-checks/--no-check", ["has no option --no-check "]),
        ('eval "$(loadcheck stack env --bogus)"', ["`loadcheck stack env` has no option --bogus"]),
    ],
)
def test_a_wrong_line_is_named_with_its_file_line_and_option(text, expected):
    found = [p for call in calls(text) for p in problems(Shown(ROOT / "docs" / "x.md", 7, call))]
    assert len(found) == len(expected), found
    for message, needle in zip(found, expected, strict=True):
        assert message.startswith("docs/x.md:7: ") and needle in message, message
        assert "fix the line: loadcheck " in message


def test_code_spans_wrapped_over_lines_and_continued_fences_are_read(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text(
        "Run `loadcheck run --worker\n--master-host H` on each.\n\n```\nbin/loadcheck run --rate 4 \\\n    --users 2\n```\n"
    )
    assert list(code_lines(doc)) == [
        (5, "bin/loadcheck run --rate 4      --users 2"),
        (1, "loadcheck run --worker --master-host H"),
    ]
