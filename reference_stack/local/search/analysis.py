"""Text analysis the way OpenSearch does it: built-in analyzers, custom analyzers from index
settings, shingles and edge n-grams for ``search_as_you_type``.

Analysis runs in Python and the tokens reach tantivy pre-tokenized (``PreTokenizedString``):
tantivy 0.27's Python API offers an n-gram *tokenizer* over the whole text but no edge n-gram or
shingle *token filter*, and OpenSearch needs both per token, at the token's position. Doing it
here keeps index-time and query-time analysis one code path.

Departures from OpenSearch (also in docs/fidelity.md, section search):

- ``standard`` tokenizer: Lucene implements Unicode UAX#29 word breaks; this one takes runs of
  word characters joined by ``.``, ``'`` or ``’`` (so ``e.g``, ``3.14`` and ``don't`` stay one
  token, ``wi-fi`` splits), which agrees with UAX#29 on Latin text but not on e.g. Thai or CJK
  (UAX#29 emits one token per ideograph; this emits the run).
- Supported tokenizers: standard, whitespace, keyword, letter, lowercase, edge_ngram, ngram.
  Supported filters: lowercase, uppercase, asciifolding, trim, stop, edge_ngram, ngram, shingle,
  unique, length. Anything else is refused at index creation, naming it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import IllegalArgument, MapperParsingError

Token = tuple[str, int]  # (text, position)
Tokenizer = Callable[[str], list[Token]]
TokenFilter = Callable[[list[Token]], list[Token]]

_STANDARD = re.compile(r"\w+(?:[.'’]\w+)*")
_LETTERS = re.compile(r"[^\W\d_]+")
_WHITESPACE = re.compile(r"\S+")
MAX_TOKEN_LENGTH = 255  # standard tokenizer's max_token_length default
# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET, used by the stop filter's `_english_`.
ENGLISH_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)


def _regex_tokenizer(pattern: re.Pattern[str], *, max_len: int = MAX_TOKEN_LENGTH) -> Tokenizer:
    def tokenize(text: str) -> list[Token]:
        out: list[Token] = []
        for m in pattern.finditer(text):
            word = m.group(0)
            # Lucene splits a token longer than max_token_length into pieces.
            for start in range(0, len(word), max_len):
                out.append((word[start : start + max_len], len(out)))
        return out

    return tokenize


def _keyword_tokenizer(text: str) -> list[Token]:
    return [(text, 0)] if text else []


def _char_class_ok(ch: str, classes: Sequence[str]) -> bool:
    if not classes:
        return True
    cat = unicodedata.category(ch)
    return (
        ("letter" in classes and cat.startswith("L"))
        or ("digit" in classes and cat == "Nd")
        or ("whitespace" in classes and ch.isspace())
        or ("punctuation" in classes and cat.startswith("P"))
        or ("symbol" in classes and cat.startswith("S"))
    )


def _ngram_tokenizer(min_gram: int, max_gram: int, token_chars: Sequence[str], *, edge: bool) -> Tokenizer:
    def tokenize(text: str) -> list[Token]:
        # Split into runs of allowed characters (token_chars empty = everything is one run).
        runs: list[str] = []
        current = []
        for ch in text:
            if _char_class_ok(ch, token_chars):
                current.append(ch)
            elif current:
                runs.append("".join(current))
                current = []
        if current:
            runs.append("".join(current))
        out: list[Token] = []
        for run in runs:
            starts = [0] if edge else range(len(run))
            for s in starts:
                for n in range(min_gram, max_gram + 1):
                    if s + n <= len(run):
                        out.append((run[s : s + n], len(out)))
        return out

    return tokenize


def _lowercase(tokens: list[Token]) -> list[Token]:
    return [(t.lower(), p) for t, p in tokens]


def _uppercase(tokens: list[Token]) -> list[Token]:
    return [(t.upper(), p) for t, p in tokens]


def _asciifold(tokens: list[Token]) -> list[Token]:
    def fold(s: str) -> str:
        return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))

    return [(fold(t), p) for t, p in tokens]


def _trim(tokens: list[Token]) -> list[Token]:
    return [(t.strip(), p) for t, p in tokens]


def _stop(words: frozenset[str]) -> TokenFilter:
    def apply(tokens: list[Token]) -> list[Token]:
        # Positions are kept, so a phrase query still sees the gap (Lucene's position increments).
        return [(t, p) for t, p in tokens if t not in words]

    return apply


def _edge_ngram_filter(min_gram: int, max_gram: int, preserve_original: bool) -> TokenFilter:
    def apply(tokens: list[Token]) -> list[Token]:
        out: list[Token] = []
        for t, p in tokens:
            grams = [t[:n] for n in range(min_gram, min(max_gram, len(t)) + 1)]
            if preserve_original and t not in grams:
                grams.append(t)
            out.extend((g, p) for g in grams)
        return out

    return apply


def _ngram_filter(min_gram: int, max_gram: int) -> TokenFilter:
    def apply(tokens: list[Token]) -> list[Token]:
        return [
            (t[s : s + n], p)
            for t, p in tokens
            for s in range(len(t))
            for n in range(min_gram, max_gram + 1)
            if s + n <= len(t)
        ]

    return apply


def shingles(tokens: list[Token], size: int, *, filler: bool = False) -> list[Token]:
    """Shingles of exactly ``size`` consecutive tokens, joined by a space, at the first token's
    position. With ``filler`` the text is padded at the end with empty tokens, as the
    ``_index_prefix`` subfield of ``search_as_you_type`` does, so trailing words get shingles too."""
    words = [t for t, _ in tokens]
    positions = [p for _, p in tokens]
    if filler:
        words = words + [""] * (size - 1)
    out: list[Token] = []
    for i in range(len(tokens) if filler else len(words) - size + 1):
        out.append((" ".join(words[i : i + size]), positions[i]))
    return out


def _shingle_filter(min_size: int, max_size: int, output_unigrams: bool, separator: str) -> TokenFilter:
    def apply(tokens: list[Token]) -> list[Token]:
        out: list[Token] = []
        for i, (t, p) in enumerate(tokens):
            if output_unigrams:
                out.append((t, p))
            for n in range(min_size, max_size + 1):
                if i + n <= len(tokens):
                    out.append((separator.join(w for w, _ in tokens[i : i + n]), p))
        return out

    return apply


def _unique(tokens: list[Token]) -> list[Token]:
    seen: set[str] = set()
    out: list[Token] = []
    for t, p in tokens:
        if t not in seen:
            seen.add(t)
            out.append((t, p))
    return out


@dataclass(frozen=True)
class Analyzer:
    name: str
    tokenizer: Tokenizer
    filters: tuple[TokenFilter, ...] = ()

    def analyze(self, text: str) -> list[Token]:
        tokens = self.tokenizer(text)
        for f in self.filters:
            tokens = f(tokens)
        return [(t, p) for t, p in tokens if t]

    def terms(self, text: str) -> list[str]:
        return [t for t, _ in self.analyze(text)]


BUILTIN_ANALYZERS: dict[str, Analyzer] = {
    "standard": Analyzer("standard", _regex_tokenizer(_STANDARD), (_lowercase,)),
    "simple": Analyzer("simple", _regex_tokenizer(_LETTERS, max_len=10**9), (_lowercase,)),
    "whitespace": Analyzer("whitespace", _regex_tokenizer(_WHITESPACE, max_len=10**9)),
    "keyword": Analyzer("keyword", _keyword_tokenizer),
    "stop": Analyzer("stop", _regex_tokenizer(_LETTERS, max_len=10**9), (_lowercase, _stop(ENGLISH_STOP_WORDS))),
}


def _int(spec: dict[str, Any], key: str, default: int, where: str) -> int:
    value = spec.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise IllegalArgument(f"[{key}] of [{where}] must be an integer, got [{value}]") from None


def _build_tokenizer(name: str, defs: dict[str, Any]) -> Tokenizer:
    spec = defs.get(name)
    if spec is None:
        builtin = {
            "standard": _regex_tokenizer(_STANDARD),
            "whitespace": _regex_tokenizer(_WHITESPACE, max_len=10**9),
            "keyword": _keyword_tokenizer,
            "letter": _regex_tokenizer(_LETTERS, max_len=10**9),
            "lowercase": _regex_tokenizer(_LETTERS, max_len=10**9),
            "edge_ngram": _ngram_tokenizer(1, 2, (), edge=True),
            "ngram": _ngram_tokenizer(1, 2, (), edge=False),
        }
        if name not in builtin:
            raise IllegalArgument(
                f"failed to find global tokenizer under [{name}]; the local search service supports "
                f"{sorted(builtin)} or a custom tokenizer of those types in settings.analysis.tokenizer"
            )
        if name == "lowercase":
            tok = builtin[name]
            return lambda text: _lowercase(tok(text))
        return builtin[name]
    kind = spec.get("type")
    if kind in ("edge_ngram", "edgeNGram", "ngram", "nGram"):
        token_chars = spec.get("token_chars", [])
        return _ngram_tokenizer(
            _int(spec, "min_gram", 1, name),
            _int(spec, "max_gram", 2, name),
            token_chars,
            edge=kind in ("edge_ngram", "edgeNGram"),
        )
    if kind == "standard":
        return _regex_tokenizer(_STANDARD, max_len=_int(spec, "max_token_length", MAX_TOKEN_LENGTH, name))
    if kind in ("whitespace", "keyword", "letter", "lowercase"):
        return _build_tokenizer(kind, {})
    raise IllegalArgument(
        f"tokenizer [{name}] of type [{kind}] is not supported by the local search service; "
        "use standard, whitespace, keyword, letter, lowercase, edge_ngram or ngram"
    )


def _build_filter(name: str, defs: dict[str, Any]) -> TokenFilter:
    spec = defs.get(name)
    if spec is None:
        builtin: dict[str, TokenFilter] = {
            "lowercase": _lowercase,
            "uppercase": _uppercase,
            "asciifolding": _asciifold,
            "trim": _trim,
            "unique": _unique,
            "stop": _stop(ENGLISH_STOP_WORDS),
            "edge_ngram": _edge_ngram_filter(1, 2, False),
            "ngram": _ngram_filter(1, 2),
            "shingle": _shingle_filter(2, 2, True, " "),
        }
        if name not in builtin:
            raise IllegalArgument(
                f"failed to find filter under name [{name}]; the local search service supports "
                f"{sorted(builtin)} or a custom filter of those types in settings.analysis.filter"
            )
        return builtin[name]
    kind = spec.get("type")
    if kind in ("edge_ngram", "edgeNGram"):
        return _edge_ngram_filter(
            _int(spec, "min_gram", 1, name),
            _int(spec, "max_gram", 2, name),
            str(spec.get("preserve_original", "false")).lower() == "true",
        )
    if kind in ("ngram", "nGram"):
        return _ngram_filter(_int(spec, "min_gram", 1, name), _int(spec, "max_gram", 2, name))
    if kind == "shingle":
        return _shingle_filter(
            _int(spec, "min_shingle_size", 2, name),
            _int(spec, "max_shingle_size", 2, name),
            str(spec.get("output_unigrams", "true")).lower() == "true",
            str(spec.get("token_separator", " ")),
        )
    if kind == "stop":
        words = spec.get("stopwords", "_english_")
        if words == "_english_":
            return _stop(ENGLISH_STOP_WORDS)
        if words == "_none_":
            return _stop(frozenset())
        if isinstance(words, list):
            return _stop(frozenset(str(w) for w in words))
        raise IllegalArgument(
            f"stop filter [{name}]: stopwords [{words}] is not supported; use _english_, _none_ or a list"
        )
    if kind in ("lowercase", "uppercase", "asciifolding", "trim", "unique"):
        return _build_filter(kind, {})
    raise IllegalArgument(
        f"token filter [{name}] of type [{kind}] is not supported by the local search service; "
        "use lowercase, uppercase, asciifolding, trim, unique, stop, edge_ngram, ngram or shingle"
    )


def build_analyzers(analysis: dict[str, Any]) -> dict[str, Analyzer]:
    """The analyzers an index knows: built-ins plus ``settings.analysis.analyzer`` definitions."""
    if not isinstance(analysis, dict):
        raise IllegalArgument(f"settings.analysis must be an object, got {analysis!r}")
    analyzers = dict(BUILTIN_ANALYZERS)
    tokenizers = analysis.get("tokenizer", {}) or {}
    filters = analysis.get("filter", {}) or {}
    for name, spec in (analysis.get("analyzer", {}) or {}).items():
        kind = spec.get("type", "custom")
        if kind == "custom":
            if "tokenizer" not in spec:
                raise MapperParsingError(f"analyzer [{name}] must specify either an analyzer type, or a tokenizer")
            filter_names = spec.get("filter", [])
            if isinstance(filter_names, str):
                filter_names = [filter_names]
            analyzers[name] = Analyzer(
                name,
                _build_tokenizer(spec["tokenizer"], tokenizers),
                tuple(_build_filter(f, filters) for f in filter_names),
            )
        elif kind in BUILTIN_ANALYZERS:
            base = BUILTIN_ANALYZERS[kind]
            if kind in ("stop", "standard") and "stopwords" in spec:
                stop = _build_filter("_stop", {"_stop": {"type": "stop", "stopwords": spec["stopwords"]}})
                base = Analyzer(name, base.tokenizer, (*base.filters, stop))
            analyzers[name] = Analyzer(name, base.tokenizer, base.filters)
        else:
            raise IllegalArgument(
                f"analyzer [{name}] of type [{kind}] is not supported by the local search service; "
                f"use custom or one of {sorted(BUILTIN_ANALYZERS)}"
            )
    return analyzers
