"""Generate ``corpus.jsonl``: the autocomplete terms loaded into the search index.

Deterministic: the terms come only from data that ships with CPython (keywords, built-in
names, standard-library module names, HTTP status phrases, Unicode character names), and
each term's ``popularity`` is derived from a hash of the term. Run it with the Python named in
``corpus.meta.json`` to reproduce the committed file byte for byte (module names and the
Unicode database change between Python versions)::

    python reference_stack/data/make_corpus.py          # rewrite corpus.jsonl and corpus.meta.json
    python reference_stack/data/make_corpus.py --check  # exit 1 if the committed files differ

Each line is ``{"id", "term", "popularity", "category"}``; the loader uses ``id`` as the
document ``_id`` and indexes the other fields with ``mapping.json``. Licences: LICENSE.md.
"""

from __future__ import annotations

import builtins
import hashlib
import http
import json
import keyword
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus.jsonl"
META = HERE / "corpus.meta.json"

# Unicode blocks whose character names make good multi-word autocomplete terms.
UNICODE_BLOCKS = (
    (0x00A0, 0x024F, "Latin-1 Supplement, Latin Extended-A/B"),
    (0x0370, 0x03FF, "Greek and Coptic"),
    (0x0400, 0x04FF, "Cyrillic"),
    (0x2190, 0x21FF, "Arrows"),
    (0x2200, 0x22FF, "Mathematical Operators"),
    (0x2500, 0x257F, "Box Drawing"),
    (0x2600, 0x26FF, "Miscellaneous Symbols"),
    (0x1F300, 0x1F64F, "Miscellaneous Symbols and Pictographs, Emoticons"),
)


def popularity(term: str) -> int:
    """1..1000, stable across runs and machines, skewed so that few terms are very popular."""
    h = int.from_bytes(hashlib.sha256(term.encode("utf-8")).digest()[:4], "big")
    return 1 + (h % 1000) ** 3 // 1_000_000


def terms() -> list[tuple[str, str]]:
    """(term, category) pairs in a fixed order, without duplicates."""
    out: list[tuple[str, str]] = []
    out += [
        (k, "python-keyword") for k in sorted(set(keyword.kwlist) | set(keyword.softkwlist)) if not k.startswith("_")
    ]
    out += [(n, "python-builtin") for n in sorted(dir(builtins)) if not n.startswith("_")]
    out += [(m, "python-module") for m in sorted(sys.stdlib_module_names) if not m.startswith("_")]
    out += [(s.phrase.lower(), "http-status") for s in sorted(http.HTTPStatus, key=int)]
    for low, high, _ in UNICODE_BLOCKS:
        for code in range(low, high + 1):
            name = unicodedata.name(chr(code), "")
            if name:
                out.append((name.lower(), "unicode-character"))
    seen: set[str] = set()
    unique = []
    for term, category in out:
        if term not in seen:
            seen.add(term)
            unique.append((term, category))
    return unique


def render() -> tuple[str, str]:
    lines = [
        json.dumps(
            {"id": f"t{n:05d}", "term": term, "popularity": popularity(term), "category": category},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for n, (term, category) in enumerate(terms(), 1)
    ]
    meta = {
        "documents": len(lines),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "unicodedata": unicodedata.unidata_version,
        "sha256": hashlib.sha256(("\n".join(lines) + "\n").encode("utf-8")).hexdigest(),
        "sources": [
            "keyword",
            "builtins",
            "sys.stdlib_module_names",
            "http.HTTPStatus",
            *(f"unicodedata {label} U+{low:04X}..U+{high:04X}" for low, high, label in UNICODE_BLOCKS),
        ],
    }
    return "\n".join(lines) + "\n", json.dumps(meta, indent=2) + "\n"


def main(argv: list[str]) -> int:
    corpus, meta = render()
    if "--check" in argv:
        same = CORPUS.read_text(encoding="utf-8") == corpus and META.read_text(encoding="utf-8") == meta
        print(
            "corpus is up to date" if same else "corpus differs: run make_corpus.py with the Python in corpus.meta.json"
        )
        return 0 if same else 1
    CORPUS.write_text(corpus, encoding="utf-8")
    META.write_text(meta, encoding="utf-8")
    print(f"wrote {corpus.count(chr(10))} terms to {CORPUS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
