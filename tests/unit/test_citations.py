"""Every citation in the repository resolves inside the repository.

Code and docs cite the project's own reference pages (``docs/aws-behaviour.md``,
``docs/load-tools.md``, ``docs/emulator-notes.md``) by numbered section, and docs link to each
other. A user has only the repository, so this test reads every tracked text file and reports,
as ``path:line: what``:

- a citation ``<file>.md §N`` (with any further sections listed after it, ``§7.1, §7.2``,
  ``§2.1-§2.3``, ``§7.2/§7.3``, ``§1.2(b)``) whose file is not in the repository or has no
  heading ``§N``. Paths are taken from the repository root, or from the citing file's folder;
- a bare ``§N``: it means a section of ``docs/aws-behaviour.md`` (that page says so), or, inside
  a page that has its own numbered headings, a section of that page;
- a relative markdown link (``[text](path)``, ``path.md#anchor``) whose file does not exist or
  whose anchor is no heading (GitHub's heading slugs) or ``<a id>`` of the target;
- a source key (``AGW:<page>``, ``DDB:<page>``, ``LAM:<page>``, ``AOS:<page>``) missing from the key
  table of ``docs/aws-behaviour.md``, where each key has its address;
- any mention of the reference notes outside the repository: the folder they lived in, the
  emulator notes' old name, or a reference page named without its ``docs/`` path.

The strings below that would themselves be citations are assembled at run time (``SECTION``,
``_OLD_EMULATOR_NOTES``), so this file passes its own scan.
"""

from __future__ import annotations

import dataclasses
import functools
import posixpath
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECTION = "\u00a7"
DEFAULT_DOC = "docs/aws-behaviour.md"
REFERENCE_DOCS = ("docs/aws-behaviour.md", "docs/load-tools.md", "docs/emulator-notes.md")
REFERENCE_PAGES = tuple(posixpath.splitext(posixpath.basename(d))[0] for d in REFERENCE_DOCS)
_OLD_EMULATOR_NOTES = "local-" + "emulators"
_OUTSIDE_FOLDER = "shared/" + "reference"
SOURCE_KEY_PREFIXES = ("AGW", "DDB", "LAM", "AOS")

_NUM = r"\d+(?:\.\d+)*"
# One section token: §7, §7.2, §1.2a, §1.2(b)(c). Only the number is looked up.
_SEC = SECTION + r"(?P<num>" + _NUM + r")(?:[a-z](?![\w])|\([a-z]\))*"
_SEC_RE = re.compile(_SEC)
_LIST_SEP = r"\s*(?:,|/|-|\u2013|and|&)?\s*"
_NAMED_RE = re.compile(
    r"(?P<file>(?<![\w./-])[\w./-]*\w\.md)(?P<list>(?:"
    + _LIST_SEP
    + SECTION
    + _NUM
    + r"(?:[a-z](?![\w])|\([a-z]\))*)+)"
)
_HEADING_RE = re.compile(r"^#{1,6}[ \t]+(?P<title>.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_SECTION_HEADING_RE = re.compile(r"^" + SECTION + r"(?P<num>" + _NUM + r")\b")
_EXPLICIT_ANCHOR_RE = re.compile(r"""<a\s+(?:id|name)=["']([^"']+)["']""")
_LINK_RE = re.compile(r"!?\[[^\]\n]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_KEY_RE = re.compile(r"(?<![\w])(?P<key>(?:" + "|".join(SOURCE_KEY_PREFIXES) + r"):[A-Za-z0-9](?:[\w.-]*\w)?)")
_KEY_ROW_RE = re.compile(r"^\|\s*(?P<key>(?:" + "|".join(SOURCE_KEY_PREFIXES) + r"):\S+)\s*\|", re.MULTILINE)
_PAGE_MENTION_RE = re.compile(
    r"(?<![\w-])(?P<path>(?:[\w.-]+/)*)(?P<name>"
    + "|".join(re.escape(n) for n in (*REFERENCE_PAGES, _OLD_EMULATOR_NOTES))
    + r")(?![\w-])(?P<ext>\.md)?"
)
_CODE_SPAN_RE = re.compile(r"`[^`\n]*`")


@dataclasses.dataclass(frozen=True)
class Page:
    """What a markdown file offers to citations: its numbered sections and its anchors."""

    sections: frozenset[str]
    anchors: frozenset[str]


def github_slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = _CODE_SPAN_RE.sub(lambda m: m.group(0)[1:-1], title).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def parse_page(text: str) -> Page:
    sections: set[str] = set()
    anchors: set[str] = set(_EXPLICIT_ANCHOR_RE.findall(text))
    seen: dict[str, int] = {}
    for m in _HEADING_RE.finditer(text):
        title = m.group("title")
        sec = _SECTION_HEADING_RE.match(title)
        if sec:
            sections.add(sec.group("num"))
        slug = github_slug(title)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return Page(frozenset(sections), frozenset(anchors))


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


@dataclasses.dataclass
class Repository:
    """The tracked files: ``paths`` (every file) and ``texts`` (the text ones, by path)."""

    paths: frozenset[str]
    texts: Mapping[str, str]

    @functools.cached_property
    def pages(self) -> dict[str, Page]:
        return {p: parse_page(t) for p, t in self.texts.items() if p.endswith(".md")}

    @functools.cached_property
    def source_keys(self) -> frozenset[str]:
        return frozenset(_KEY_ROW_RE.findall(self.texts.get(DEFAULT_DOC, "")))

    def resolve(self, citing: str, name: str) -> str | None:
        """The repository path ``name`` means in file ``citing``: from the root, else its folder."""
        candidates = [posixpath.normpath(posixpath.join(posixpath.dirname(citing), name))]
        if "/" in name:
            candidates.insert(0, posixpath.normpath(name))
        return next((c for c in candidates if c in self.paths), None)

    def problems(self, path: str, text: str) -> list[str]:
        """Every citation in ``text`` (the file ``path``) that does not resolve, as ``path:line: ...``."""
        found = [
            *self._named_and_bare(path, text),
            *self._links(path, text),
            *self._keys(text),
            *self._outside_mentions(path, text),
        ]
        return [f"{path}:{line}: {what}" for line, what in sorted(found)]

    def _check_section(self, page_path: str, num: str) -> str | None:
        page = self.pages.get(page_path)
        if page is None:
            return f"{page_path} is not a markdown page of the repository"
        if num not in page.sections:
            return f"{page_path} has no section {SECTION}{num} (it has {_sorted_sections(page)})"
        return None

    def _named_and_bare(self, path: str, text: str) -> Iterator[tuple[int, str]]:
        consumed: list[tuple[int, int]] = []
        for m in _NAMED_RE.finditer(text):
            consumed.append(m.span())
            line = _line(text, m.start())
            target = self.resolve(path, m.group("file"))
            if target is None:
                yield line, f"cites {m.group('file')}, which is not in the repository"
                continue
            for sec in _SEC_RE.finditer(m.group("list")):
                error = self._check_section(target, sec.group("num"))
                if error:
                    yield line, f"cites {m.group('file')} {sec.group(0)}: {error}"
        own = self.pages.get(path)
        default = path if own is not None and own.sections else DEFAULT_DOC
        for sec in _SEC_RE.finditer(text):
            if any(a <= sec.start() < b for a, b in consumed):
                continue
            error = self._check_section(default, sec.group("num"))
            if error:
                yield _line(text, sec.start()), f"bare {sec.group(0)} (read as {default}): {error}"

    def _links(self, path: str, text: str) -> Iterator[tuple[int, str]]:
        if not path.endswith(".md"):
            return
        for m in _LINK_RE.finditer(text):
            target = m.group("target")
            if _SCHEME_RE.match(target) or target.startswith("<"):
                continue
            file_part, _, anchor = target.partition("#")
            line = _line(text, m.start())
            resolved = path if not file_part else posixpath.normpath(posixpath.join(posixpath.dirname(path), file_part))
            if resolved not in self.paths:
                yield line, f"links to {target}: {resolved} is not in the repository"
                continue
            if anchor and resolved.endswith(".md"):
                page = self.pages.get(resolved)
                if page is None or anchor not in page.anchors:
                    yield line, f"links to {target}: {resolved} has no heading or anchor {anchor!r}"

    def _keys(self, text: str) -> Iterator[tuple[int, str]]:
        for m in _KEY_RE.finditer(text):
            if m.group("key") not in self.source_keys:
                yield (
                    _line(text, m.start()),
                    f"source key {m.group('key')} is not in the key table of {DEFAULT_DOC} (add it with its address)",
                )

    def _outside_mentions(self, path: str, text: str) -> Iterator[tuple[int, str]]:
        for m in re.finditer(re.escape(_OUTSIDE_FOLDER), text):
            yield _line(text, m.start()), f"refers to {_OUTSIDE_FOLDER}, which users do not have; cite docs/ pages"
        for m in _PAGE_MENTION_RE.finditer(text):
            name, prefix, ext = m.group("name"), m.group("path"), m.group("ext")
            line = _line(text, m.start())
            if name == _OLD_EMULATOR_NOTES:
                yield line, f"refers to {name}, which is not in the repository; cite docs/emulator-notes.md"
            elif text[max(0, m.start() - 2) : m.start()] == "](" or text[m.start() - 1 : m.start()] in ("/", "."):
                continue  # a markdown link target or a longer relative path: _links checks it
            elif not (ext and prefix == "docs/"):
                yield line, f"names {prefix}{name}{ext or ''} without its path; write docs/{name}.md"


def _sorted_sections(page: Page) -> str:
    def key(num: str) -> tuple[int, ...]:
        return tuple(int(p) for p in num.split("."))

    nums = sorted(page.sections, key=key)
    return ", ".join(SECTION + n for n in nums) if nums else "no numbered sections"


def _tracked_paths() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", ".venv-tools", "runs", ".loadcheck", "__pycache__", "node_modules"}
        return [
            p.relative_to(REPO).as_posix()
            for p in REPO.rglob("*")
            if p.is_file() and not skip.intersection(p.relative_to(REPO).parts)
        ]
    return [p for p in out.decode().split("\0") if p]


def _read_text(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@functools.lru_cache(maxsize=1)
def repository() -> Repository:
    paths = [p for p in _tracked_paths() if (REPO / p).is_file()]
    texts = {p: t for p in paths if (t := _read_text(REPO / p)) is not None}
    return Repository(frozenset(paths), texts)


def _with(repo: Repository, extra: Mapping[str, str]) -> Repository:
    return Repository(repo.paths | frozenset(extra), {**repo.texts, **extra})


# -- the repository itself ----------------------------------------------------------------------


def test_every_citation_in_the_repository_resolves() -> None:
    repo = repository()
    assert len(repo.texts) > 100, f"only {len(repo.texts)} text files found under {REPO}"
    problems = [p for path, text in sorted(repo.texts.items()) for p in repo.problems(path, text)]
    assert not problems, f"{len(problems)} citation(s) do not resolve:\n" + "\n".join(problems)


def test_the_reference_pages_are_in_the_repository_with_numbered_sections() -> None:
    repo = repository()
    for name in REFERENCE_PAGES:
        page = repo.pages.get(f"docs/{name}.md")
        assert page is not None, f"docs/{name}.md is missing"
        assert page.sections, f"docs/{name}.md has no '## {SECTION}N' headings"
    assert {"7.2", "7.3", "10.1"} <= repo.pages[DEFAULT_DOC].sections
    assert len(repo.source_keys) > 30


def test_the_citations_are_scanned_in_code_docs_and_terraform() -> None:
    # The scan must see citations where they live; a regex that stopped matching would pass the
    # first test vacuously.
    repo = repository()
    counted = {
        suffix: sum(len(list(_NAMED_RE.finditer(t))) for p, t in repo.texts.items() if p.endswith(suffix))
        for suffix in (".py", ".md", ".tf")
    }
    assert all(n > 0 for n in counted.values()), counted


# -- the checker can fail -------------------------------------------------------------------------


def _problems(path: str, text: str) -> list[str]:
    repo = _with(repository(), {path: text})
    return repo.problems(path, text)


def test_a_missing_section_is_named_with_file_and_line() -> None:
    text = f'"""Doc.\n\nRule (docs/aws-behaviour.md {SECTION}7.2, {SECTION}99.1).\n"""\n'
    problems = _problems("pkg/mod.py", text)
    assert len(problems) == 1, problems
    assert problems[0].startswith("pkg/mod.py:3: cites docs/aws-behaviour.md")
    assert f"no section {SECTION}99.1" in problems[0]


def test_a_missing_file_is_named() -> None:
    problems = _problems("pkg/mod.py", f"# see docs/nowhere.md {SECTION}1\n")
    assert problems == ["pkg/mod.py:1: cites docs/nowhere.md, which is not in the repository"]


def test_a_reference_page_without_its_docs_path_fails() -> None:
    name = REFERENCE_PAGES[1]
    problems = _problems("pkg/mod.py", f"x = 1\n# ({name}.md {SECTION}2)\n")
    assert any(p.startswith("pkg/mod.py:2: names") and f"write docs/{name}.md" in p for p in problems), problems
    assert any("which is not in the repository" in p for p in problems), problems


def test_references_outside_the_repository_fail() -> None:
    text = f"see {_OUTSIDE_FOLDER}/notes\nand {_OLD_EMULATOR_NOTES} {SECTION}6.4\n"
    problems = _problems("docs/guide.md", text)
    assert any(p.startswith("docs/guide.md:1: refers to " + _OUTSIDE_FOLDER) for p in problems), problems
    assert any(p.startswith("docs/guide.md:2: refers to " + _OLD_EMULATOR_NOTES) for p in problems), problems


def test_a_bare_section_is_read_against_the_default_page_or_its_own() -> None:
    assert _problems("pkg/mod.py", f"# burst ({SECTION}7.3)\n") == []
    bad = _problems("pkg/mod.py", f"# burst ({SECTION}42)\n")
    assert bad and bad[0].startswith(f"pkg/mod.py:1: bare {SECTION}42 (read as {DEFAULT_DOC})"), bad
    page = f"# Notes\n\n## {SECTION}1 One\n\nSee {SECTION}1 and {SECTION}2.\n"
    problems = _problems("docs/notes.md", page)
    assert problems == [
        f"docs/notes.md:5: bare {SECTION}2 (read as docs/notes.md): docs/notes.md has no section {SECTION}2 (it has {SECTION}1)"
    ]


def test_lists_and_ranges_after_a_file_are_each_checked() -> None:
    good = f"# (docs/aws-behaviour.md {SECTION}2.1-{SECTION}2.3, {SECTION}7.2/{SECTION}7.3 and {SECTION}1.2(b))\n"
    assert _problems("m.tf", good) == []
    bad = f"# (docs/aws-behaviour.md {SECTION}2.1-{SECTION}2.9)\n"
    problems = _problems("m.tf", bad)
    assert len(problems) == 1 and f"{SECTION}2.9" in problems[0], problems


def test_a_citation_split_over_two_lines_is_checked() -> None:
    text = f'"""Moto answers constants (docs/emulator-notes.md\n   {SECTION}77)."""\n'
    problems = _problems("pkg/mod.py", text)
    assert len(problems) == 1 and problems[0].startswith("pkg/mod.py:1: cites docs/emulator-notes.md"), problems


def test_broken_links_and_anchors_in_docs_fail() -> None:
    text = (
        "# Guide\n\n"
        "[ok](aws-behaviour.md#source-keys) [ok too](#guide)\n"
        "[gone](missing.md)\n"
        "[bad anchor](load-tools.md#no-such-heading)\n"
    )
    problems = _problems("docs/guide.md", text)
    assert len(problems) == 2, problems
    assert problems[0].startswith("docs/guide.md:4: links to missing.md")
    assert problems[1].startswith("docs/guide.md:5: links to " + REFERENCE_PAGES[1] + ".md#no-such-heading")


def test_an_unlisted_source_key_fails() -> None:
    assert _problems("pkg/mod.py", "# (DDB:ProvisionedThroughput)\n") == []
    missing = "DDB:" + "NoSuchPage"
    problems = _problems("pkg/mod.py", f"# ({missing})\n")
    assert problems == [
        f"pkg/mod.py:1: source key {missing} is not in the key table of {DEFAULT_DOC} (add it with its address)"
    ]


def test_github_slugs() -> None:
    assert github_slug(f"{SECTION}7.2 Capacity units") == "72-capacity-units"
    assert github_slug("The `$context` variables") == "the-context-variables"
    assert parse_page("## A\n## A\n").anchors == {"a", "a-1"}
