"""CloudWatch Logs Insights queries: the lexer and parser (pure). Evaluation: :mod:`.insights_run`.

The subset an SRE runs on access and Lambda logs (docs/aws-behaviour.md §11.2,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html):

- commands ``fields``, ``display``, ``filter``, ``stats ... by ...``, ``sort``, ``limit``, ``parse``,
  joined with ``|``; ``#`` starts a comment;
- expressions: numbers, ``"strings"`` / ``'strings'``, ``/regex/``, fields (``status``,
  ``@timestamp``, ``requestContext.http.method``, ```back quoted```), ``+ - * / %``,
  ``= != < <= > >=``, ``like``, ``=~``, ``in [...]``, ``not in``, ``and``, ``or``, ``not``, parentheses;
- functions: ``ispresent isempty isblank strlen tolower toupper abs floor ceil concat strcontains``
  and, in ``stats``, ``count count_distinct sum avg min max pct stddev earliest latest`` plus
  ``bin(period)`` for grouping.

Anything else (another command such as ``dedup``, ``pattern``, ``unmask``, ``diff``, another
function) is a :class:`~.errors.MalformedQuery`, AWS's ``MalformedQueryException``, with the
location of the culprit: never a query silently answered with something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from reference_stack.local.aws.logs.errors import MalformedQuery

SCALAR_FUNCTIONS = frozenset(
    {"ispresent", "isempty", "isblank", "strlen", "tolower", "toupper", "abs", "floor", "ceil", "concat", "strcontains"}
)
AGGREGATES = frozenset({"count", "count_distinct", "sum", "avg", "min", "max", "pct", "stddev", "earliest", "latest"})
COMMANDS = frozenset({"fields", "display", "filter", "stats", "sort", "limit", "parse"})
_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400, "w": 604800}

_TOKEN = re.compile(
    r"""(?P<ws>\s+|\#[^\n]*)
      | (?P<num>\d+(?:\.\d+)?(?:[a-z]+)?)
      | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<bq>`[^`]*`)
      | (?P<op>!=|<=|>=|=~|[=<>|,()\[\]+\-*/%])
      | (?P<name>@?[A-Za-z_][\w.@$-]*)""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Tok:
    kind: str  # num, str, bq, op, name, regex, end
    text: str
    start: int
    end: int


# -- AST ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Regex:
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Not:
    operand: Any


@dataclass(frozen=True)
class InList:
    operand: Any
    items: tuple[Any, ...]
    negate: bool = False


@dataclass(frozen=True)
class Named:
    """An expression with the column name it shows under (``as alias`` or its source text)."""

    expr: Any
    name: str


@dataclass
class Command:
    kind: str
    items: list[Named] = field(default_factory=list)  # fields, display, stats aggregates, sort keys
    by: list[Named] = field(default_factory=list)  # stats ... by
    condition: Any = None  # filter
    descending: list[bool] = field(default_factory=list)  # sort
    limit: int = 0
    source: Any = None  # parse: the field parsed
    regex: re.Pattern[str] | None = None  # parse: glob or regex, compiled
    names: list[str] = field(default_factory=list)  # parse: the new fields


def parse_query(text: str) -> list[Command]:
    """The commands of a query string, or MalformedQuery naming what is wrong and where."""
    if not text.strip():
        raise MalformedQuery("the query string is empty", start=0, end=0)
    return _Parser(text).commands()


def period_seconds(text: str, start: int, end: int) -> float:
    """``5m`` -> 300.0: the argument of ``bin()``."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]+)", text)
    if m is None or m.group(2) not in _UNITS:
        raise MalformedQuery(f"bin() needs a period such as 30s, 5m, 1h, not {text!r}", start=start, end=end)
    return float(m.group(1)) * _UNITS[m.group(2)]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = self._lex(text)
        self.i = 0

    # -- tokens ----------------------------------------------------------------------------------

    def _lex(self, text: str) -> list[Tok]:
        out: list[Tok] = []
        i = 0
        while i < len(text):
            if text[i] == "/" and self._regex_allowed(out):
                j = i + 1
                while j < len(text) and text[j] != "/":
                    j += 2 if text[j] == "\\" else 1
                if j >= len(text):
                    raise MalformedQuery("unterminated regular expression", start=i, end=len(text))
                out.append(Tok("regex", text[i + 1 : j], i, j + 1))
                i = j + 1
                continue
            m = _TOKEN.match(text, i)
            if m is None:
                raise MalformedQuery(f"unexpected character {text[i]!r}", start=i, end=i + 1)
            kind = m.lastgroup or "ws"
            if kind != "ws":
                out.append(Tok(kind, m.group(), i, m.end()))
            i = m.end()
        out.append(Tok("end", "", len(text), len(text)))
        return out

    @staticmethod
    def _regex_allowed(prev: list[Tok]) -> bool:
        """A ``/`` starts a regex after an operator, keyword or ``(``, and is division after a value."""
        if not prev:
            return True
        last = prev[-1]
        if len(prev) >= 2 and prev[-2].kind == "name" and prev[-2].text.lower() == "parse":
            return True  # parse <field> /regex/
        if last.kind == "op":
            return last.text not in (")", "]")
        return last.kind == "name" and last.text.lower() in ("like", "parse", "filter", "and", "or", "not", "in")

    def peek(self, offset: int = 0) -> Tok:
        return self.toks[min(self.i + offset, len(self.toks) - 1)]

    def take(self) -> Tok:
        tok = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def is_word(self, word: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok.kind == "name" and tok.text.lower() == word

    def expect_op(self, op: str) -> Tok:
        tok = self.take()
        if tok.kind != "op" or tok.text != op:
            raise self.error(f"expected {op!r}", tok)
        return tok

    def error(self, what: str, tok: Tok) -> MalformedQuery:
        found = "the end of the query" if tok.kind == "end" else repr(tok.text)
        return MalformedQuery(f"{what}, found {found}", start=tok.start, end=tok.end)

    # -- commands ----------------------------------------------------------------------------------

    def commands(self) -> list[Command]:
        out = [self.command()]
        while self.peek().kind == "op" and self.peek().text == "|":
            self.take()
            out.append(self.command())
        if self.peek().kind != "end":
            raise self.error("expected '|' or the end of the query", self.peek())
        return out

    def command(self) -> Command:
        tok = self.take()
        word = tok.text.lower() if tok.kind == "name" else ""
        if word not in COMMANDS:
            raise MalformedQuery(
                f"unsupported command {tok.text!r}: the local stack runs {', '.join(sorted(COMMANDS))}",
                start=tok.start,
                end=tok.end,
            )
        if word in ("fields", "display"):
            return Command(word, items=self.named_list(allow_aggregates=False))
        if word == "filter":
            return Command(word, condition=self.expr())
        if word == "stats":
            return self.stats()
        if word == "sort":
            return self.sort()
        if word == "limit":
            num = self.take()
            if num.kind != "num" or not num.text.isdigit() or not 0 < int(num.text) <= 10000:
                raise self.error("limit needs a whole number from 1 to 10000", num)
            return Command(word, limit=int(num.text))
        return self.parse_command()

    def named_list(self, *, allow_aggregates: bool) -> list[Named]:
        items = [self.named(allow_aggregates)]
        while self.peek().kind == "op" and self.peek().text == ",":
            self.take()
            items.append(self.named(allow_aggregates))
        return items

    def named(self, allow_aggregates: bool) -> Named:
        start = self.peek().start
        expr = self.expr(allow_aggregates=allow_aggregates)
        source = self.text[start : self.toks[self.i - 1].end].strip()
        if self.is_word("as"):
            self.take()
            alias = self.take()
            if alias.kind not in ("name", "bq"):
                raise self.error("expected a name after 'as'", alias)
            return Named(expr, alias.text.strip("`"))
        return Named(expr, expr.name if isinstance(expr, Field) else source)

    def stats(self) -> Command:
        items = self.named_list(allow_aggregates=True)
        for item in items:
            if not _has_aggregate(item.expr):
                raise MalformedQuery(
                    f"stats needs an aggregate function ({', '.join(sorted(AGGREGATES))}), not {item.name!r}",
                    start=0,
                    end=len(self.text),
                )
        by: list[Named] = []
        if self.is_word("by"):
            self.take()
            by = self.named_list(allow_aggregates=False)
        return Command("stats", items=items, by=by)

    def sort(self) -> Command:
        items, desc = [], []
        while True:
            items.append(self.named(False))
            direction = False
            if self.is_word("desc") or self.is_word("asc"):
                direction = self.take().text.lower() == "desc"
            desc.append(direction)
            if not (self.peek().kind == "op" and self.peek().text == ","):
                break
            self.take()
        return Command("sort", items=items, descending=desc)

    def parse_command(self) -> Command:
        src = self.take()
        if src.kind not in ("name", "bq"):
            raise self.error("parse needs a field to parse (e.g. @message)", src)
        pat = self.take()
        if pat.kind == "regex":
            try:
                regex = re.compile(re.sub(r"\(\?<(\w+)>", r"(?P<\1>", pat.text))
            except re.error as exc:
                raise MalformedQuery(f"invalid regular expression: {exc}", start=pat.start, end=pat.end) from None
            names = list(regex.groupindex)
            if not names:
                raise MalformedQuery("a parse regex needs named groups (?<name>...)", start=pat.start, end=pat.end)
            return Command("parse", source=Field(src.text.strip("`")), regex=regex, names=names)
        if pat.kind != "str":
            raise self.error('parse needs a glob "... * ..." or a /regex/', pat)
        glob = _unquote(pat.text)
        if not self.is_word("as"):
            raise self.error("expected 'as' and the names of the fields the glob's * fill", self.peek())
        self.take()
        names = [self.take().text.strip("`")]
        while self.peek().kind == "op" and self.peek().text == ",":
            self.take()
            names.append(self.take().text.strip("`"))
        if glob.count("*") != len(names):
            raise MalformedQuery(
                f"the glob has {glob.count('*')} '*' but {len(names)} names follow 'as'", start=pat.start, end=pat.end
            )
        regex = re.compile("".join("(.*?)" if c == "*" else re.escape(c) for c in glob), re.DOTALL)
        return Command("parse", source=Field(src.text.strip("`")), regex=regex, names=names)

    # -- expressions -------------------------------------------------------------------------------

    def expr(self, *, allow_aggregates: bool = False) -> Any:
        self.allow_aggregates = allow_aggregates
        return self.or_()

    def or_(self) -> Any:
        left = self.and_()
        while self.is_word("or"):
            self.take()
            left = BinOp("or", left, self.and_())
        return left

    def and_(self) -> Any:
        left = self.not_()
        while self.is_word("and"):
            self.take()
            left = BinOp("and", left, self.not_())
        return left

    def not_(self) -> Any:
        if self.is_word("not"):
            self.take()
            return Not(self.not_())
        return self.comparison()

    def comparison(self) -> Any:
        left = self.additive()
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("=", "!=", "<", "<=", ">", ">=", "=~"):
            self.take()
            return BinOp(tok.text, left, self.additive())
        negate = False
        if self.is_word("not") and (self.is_word("like", 1) or self.is_word("in", 1)):
            self.take()
            negate = True
        if self.is_word("like"):
            self.take()
            right = self.additive()
            node: Any = BinOp("like", left, right)
            return Not(node) if negate else node
        if self.is_word("in"):
            self.take()
            self.expect_op("[")
            items = [self.additive()]
            while self.peek().kind == "op" and self.peek().text == ",":
                self.take()
                items.append(self.additive())
            self.expect_op("]")
            return InList(left, tuple(items), negate)
        if negate:
            raise self.error("expected 'like' or 'in' after 'not'", self.peek())
        return left

    def additive(self) -> Any:
        left = self.term()
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            op = self.take().text
            left = BinOp(op, left, self.term())
        return left

    def term(self) -> Any:
        left = self.factor()
        while self.peek().kind == "op" and self.peek().text in ("*", "/", "%"):
            op = self.take().text
            left = BinOp(op, left, self.factor())
        return left

    def factor(self) -> Any:
        tok = self.take()
        if tok.kind == "num":
            if not re.fullmatch(r"\d+(?:\.\d+)?", tok.text):
                raise self.error("expected a number", tok)
            return Lit(float(tok.text) if "." in tok.text else int(tok.text))
        if tok.kind == "str":
            return Lit(_unquote(tok.text))
        if tok.kind == "regex":
            try:
                return Regex(re.compile(tok.text))
            except re.error as exc:
                raise MalformedQuery(f"invalid regular expression: {exc}", start=tok.start, end=tok.end) from None
        if tok.kind == "bq":
            return Field(tok.text[1:-1])
        if tok.kind == "op" and tok.text == "(":
            inner = self.or_()
            self.expect_op(")")
            return inner
        if tok.kind == "op" and tok.text == "-":
            return BinOp("-", Lit(0), self.factor())
        if tok.kind == "name":
            if self.peek().kind == "op" and self.peek().text == "(":
                return self.call(tok)
            return Field(tok.text)
        raise self.error("expected a value, a field or a function", tok)

    def call(self, name_tok: Tok) -> Any:
        name = name_tok.text.lower()
        self.expect_op("(")
        if name == "bin":
            arg = self.take()
            self.expect_op(")")
            return Call("bin", (Lit(period_seconds(arg.text, arg.start, arg.end)),))
        known = SCALAR_FUNCTIONS | (AGGREGATES if self.allow_aggregates else frozenset())
        if name not in known:
            where = "here" if name in AGGREGATES else "in the local stack"
            raise MalformedQuery(
                f"function {name_tok.text}() is not supported {where}", start=name_tok.start, end=name_tok.end
            )
        args: list[Any] = []
        if name == "count" and self.peek().text == "*" and self.peek(1).text == ")":
            self.take()  # count(*) counts events, as count() does
        elif not (self.peek().kind == "op" and self.peek().text == ")"):
            nested, self.allow_aggregates = self.allow_aggregates, False
            args.append(self.or_())
            while self.peek().kind == "op" and self.peek().text == ",":
                self.take()
                args.append(self.or_())
            self.allow_aggregates = nested
        self.expect_op(")")
        if name != "count" and name in AGGREGATES and not args:
            raise MalformedQuery(f"{name}() needs a field", start=name_tok.start, end=name_tok.end)
        if name == "pct" and (len(args) != 2 or not isinstance(args[1], Lit)):
            raise MalformedQuery(
                "pct() needs a field and a percentile: pct(latency, 99)", start=name_tok.start, end=name_tok.end
            )
        return Call(name, tuple(args))


def _has_aggregate(node: Any) -> bool:
    if isinstance(node, Call):
        return node.name in AGGREGATES or any(_has_aggregate(a) for a in node.args)
    if isinstance(node, BinOp):
        return _has_aggregate(node.left) or _has_aggregate(node.right)
    return False


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])
