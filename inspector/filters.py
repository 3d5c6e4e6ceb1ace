"""The one filter language (mitmproxy-style): dump, TUI, replay, export and intercept use it.

``parse(expr)`` turns text such as ``~m POST & !(~c 2xx | ~d example\\.com)`` into a
``Filter``: callable on a ``Flow``, printable back to equivalent text, and compilable to
an SQL ``WHERE`` fragment (``Filter.sql()``) so the store can filter 100,000 flows
without loading them. ``Filter.row_test()`` evaluates the filters that need only a flow's
summary (method, host, URL, status, error, marks) on the TUI's list rows, without SQL.
All evaluations call the same matching helpers, so a filter selects the same flows in
memory, on list rows and in a session file. Regexes ignore case; a pattern
without regex syntax (a plain word, the common case) is found by ASCII-case-folded
substring search, in SQL by SQLite's own ``instr``/``lower``, giving exactly the
regex's answer (the few letters that fold onto ASCII send a value to the regex).

Grammar (``!`` binds tighter than ``&``, which binds tighter than ``|``; whitespace
between two terms means ``&``)::

    expr    := and ("|" and)*
    and     := unary (["&"] unary)*
    unary   := "!" unary | primary
    primary := "(" expr ")" | OPERATOR [ARGUMENT] | ARGUMENT      # a bare argument is ~u

An argument is a quoted string (``"..."`` or ``'...'``; ``\\\\ \\" \\' \\n \\r \\t`` are
escapes, any other backslash is kept for the regex) or an unquoted word running to the
next whitespace, or to a ``)``, ``&`` or ``|`` outside parentheses opened in the word.
Positions in errors count characters from 0.

SQL contract with the store (``inspector.store``): the fragment refers to a table
``flows`` with columns ``seq`` (row id), ``method``, ``host``, ``url``, ``status``
(NULL without a response), ``error_class`` (NULL without an error),
``req_content_type``, ``resp_content_type``, ``req_head_text``, ``resp_head_text``
(``header_text()`` of the header pairs; NULL without a response), ``marked``,
``replay_of``, ``modified``, ``http_version`` (the request's: ``HTTP/2``, ...); and a
table ``bodies(flow_seq, part, data)`` with part 0 for the request and 1 for the response
(no row for an empty body; parts 2 and 3 hold the originals of a changed flow, which
filters do not look at). The connection must have ``register_sql_functions()`` applied.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from inspector.flow import Flow, FlowResponse

__all__ = ["HELP", "OPERATORS", "Filter", "FilterError", "parse", "register_sql_functions"]


class FilterError(ValueError):
    """A filter expression that does not parse; ``position`` is where (0-based)."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


# --- matching helpers shared by Python and SQL evaluation ---------------------------------

SQL = tuple[str, list[object]]
RowTest = Callable[[Any], bool]


@lru_cache(maxsize=512)
def _compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | flags)


def header_text(pairs: list[tuple[bytes, bytes]]) -> str:
    """Header pairs as ``Name: value`` lines (latin-1): the text ``~h`` searches."""
    return b"\n".join(map(b": ".join, pairs)).decode("latin-1")


# re.IGNORECASE matches these letters to ASCII ones: dotted and dotless i (U+0130,
# U+0131), long s (U+017F) and the Kelvin sign (U+212A). Nothing else folds onto ASCII.
_FOLDS_TO_ASCII = {"i": "\u0130\u0131", "s": "\u017f", "k": "\u212a"}
_REGEX_SPECIALS = frozenset(".^$*+?{}[]\\|()")


@lru_cache(maxsize=512)
def _ascii_literal(pattern: str) -> bytes | None:
    """The lowercased bytes of a pattern with no regex syntax in it, else None."""
    if pattern.isascii() and _REGEX_SPECIALS.isdisjoint(pattern):
        return pattern.lower().encode("ascii")
    return None


@lru_cache(maxsize=512)
def _folds(literal: bytes) -> tuple[str, ...]:
    """The characters IGNORECASE would match to one of the literal's letters."""
    text = literal.decode("ascii")
    return tuple(ch for letter, chars in _FOLDS_TO_ASCII.items() if letter in text for ch in chars)


def _literal_verdict(pattern: str, data: bytes) -> bool | None:
    """The regex's verdict on UTF-8 ``data`` when ``pattern`` is a plain word, else None.

    ASCII case folding (``bytes.lower``, SQLite's ``lower``) finds what IGNORECASE finds,
    unless the text holds one of the few letters that fold onto ASCII: then None too.
    """
    literal = _ascii_literal(pattern)
    if literal is None:
        return None
    if literal in data.lower():
        return True
    if any(ch.encode() in data for ch in _folds(literal)):
        return None
    return False


def _search(pattern: str, text: str | None) -> bool:
    return _searcher(pattern)(text)


@lru_cache(maxsize=512)
def _searcher(pattern: str) -> Callable[[str | None], bool]:
    """A case-insensitive search for ``pattern`` in a text (None: no match), with the
    per-pattern work done once, for many texts."""
    regex = _compile(pattern)
    literal = _ascii_literal(pattern)
    word = None if literal is None else literal.decode("ascii")

    def search(text: str | None) -> bool:
        if text is None:
            return False
        if word is not None:
            if text.isascii():  # holds none of the letters that fold onto ASCII
                return word in text.lower()
            verdict = _literal_verdict(pattern, text.encode("utf-8", "surrogatepass"))
            if verdict is not None:
                return verdict
        return regex.search(text) is not None

    return search


def _lines_match(pattern: str, text: str | None) -> bool:
    # One search over all the lines: ^ and $ match at each line's start and end.
    if text is None:
        return False
    verdict = _literal_verdict(pattern, text.encode("utf-8", "surrogatepass"))
    if verdict is not None:
        return verdict
    return _compile(pattern, re.MULTILINE).search(text) is not None


def _body_matches(pattern: str, data: bytes | None) -> bool:
    # An empty body never matches: the store keeps no row for it.
    if not data:
        return False
    verdict = _literal_verdict(pattern, data)  # as UTF-8; latin-1 only adds no ASCII folds
    if verdict is not None:
        return verdict
    if _compile(pattern).search(data.decode("latin-1")) is not None:
        return True
    if data.isascii():
        return False  # the UTF-8 reading would be the same text
    return _compile(pattern).search(data.decode("utf-8", errors="replace")) is not None


def _text_sql(pattern: str, column: str, function: str) -> SQL:
    """``function(pattern, column)`` as SQL, done by SQLite itself for a plain word."""
    literal = _ascii_literal(pattern)
    if literal is None:
        return f"{function}(?, {column})", [pattern]
    test = f"ifnull(instr(lower({column}), ?), 0) > 0"
    params: list[object] = [literal.decode("ascii")]
    folds = _folds(literal)
    if folds:
        found = " OR ".join(f"instr({column}, ?) > 0" for _ in folds)
        test = f"{test} OR (({found}) AND {function}(?, {column}))"
        params += [*folds, pattern]
    return f"({test})", params


def _same_method(a: str | None, b: str) -> bool:
    # ASCII-only case folding, the same as SQLite's NOCASE collation.
    return (
        a is not None
        and a.encode("utf-8", "surrogatepass").lower() == b.encode("utf-8", "surrogatepass").lower()
    )


def _memoized(test: Callable[[str | None], bool]) -> Callable[[str | None], bool]:
    """``test`` remembering its verdicts: hosts and methods repeat over thousands of rows."""
    verdicts: dict[str | None, bool] = {}

    def memo(value: str | None) -> bool:
        verdict = verdicts.get(value)
        if verdict is None:
            verdict = verdicts[value] = test(value)
        return verdict

    return memo


def _all(tests: list[RowTest]) -> RowTest:
    # Nested closures: calling two functions beats a generator per row (a long chain
    # would nest too deep).
    if len(tests) > 8:
        return lambda row: all(test(row) for test in tests)
    first, *rest = tests
    if not rest:
        return first
    second = _all(rest)
    return lambda row: first(row) and second(row)


def _any(tests: list[RowTest]) -> RowTest:
    if len(tests) > 8:
        return lambda row: any(test(row) for test in tests)
    first, *rest = tests
    if not rest:
        return first
    second = _any(rest)
    return lambda row: first(row) or second(row)


def register_sql_functions(conn: sqlite3.Connection) -> None:
    """Make the functions that ``Filter.sql()`` fragments call available on ``conn``."""
    conn.create_function("flt_search", 2, _search, deterministic=True)
    conn.create_function("flt_lines", 2, _lines_match, deterministic=True)
    conn.create_function("flt_body", 2, _body_matches, deterministic=True)


# --- the filter classes -------------------------------------------------------------------


class Filter:
    """A parsed filter: ``f(flow) -> bool``, ``str(f)`` re-parses to an equal filter."""

    __slots__ = ()

    def __call__(self, flow: Flow) -> bool:
        raise NotImplementedError

    def sql(self) -> SQL:
        """A ``WHERE`` fragment (never NULL) and its parameters; see the module docstring."""
        raise NotImplementedError

    def row_test(self) -> RowTest | None:
        """This filter as a test on a flow list row, or None when it needs more than one.

        A row is any object with the attributes ``method``, ``host``, ``url``, ``status``
        (None without a response), ``error`` (None without an error), ``marked`` and
        ``replay_of``, holding what the flow's request, response and error say. The test
        gives the filter's verdict on the flow, so a list of 100,000 rows is filtered in
        memory without reading a session file.
        """
        return None

    def _key(self) -> tuple[object, ...]:
        return ()

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def __repr__(self) -> str:
        return f"parse({str(self)!r})"


class Operator(Filter):
    """A ``~x`` term; subclasses set ``code``, ``help`` and ``argument`` (None: no argument)."""

    __slots__ = ()
    code: ClassVar[str]
    help: ClassVar[str]
    argument: ClassVar[str | None] = None

    def __str__(self) -> str:
        return self.code


class _ArgOperator(Operator):
    __slots__ = ("arg",)
    argument = "TEXT"

    def __init__(self, arg: str) -> None:
        self.arg = arg

    def _key(self) -> tuple[object, ...]:
        return (self.arg,)

    def __str__(self) -> str:
        return f"{self.code} {quote(self.arg)}"


class _RegexOperator(_ArgOperator):
    __slots__ = ("_find",)
    argument = "REGEX"

    def __init__(self, arg: str) -> None:
        super().__init__(arg)
        try:
            _compile(arg, re.MULTILINE)
        except re.error as e:
            raise ValueError(f"bad regex for {self.code}: {e.msg}") from None
        self._find = _searcher(arg)  # a rule's filter asks it of every flow


class Method(_ArgOperator):
    __slots__ = ()
    code = "~m"
    argument = "METHOD"
    help = "request method, exact (any case): ~m POST"

    def __call__(self, flow: Flow) -> bool:
        return _same_method(flow.request.method, self.arg)

    def sql(self) -> SQL:
        return "(flows.method = ? COLLATE NOCASE)", [self.arg]

    def row_test(self) -> RowTest:
        same = _memoized(lambda method: _same_method(method, self.arg))
        return lambda row: same(row.method)


class Domain(_RegexOperator):
    __slots__ = ()
    code = "~d"
    help = "upstream host name or address: ~d 'example\\.com$'"

    def __call__(self, flow: Flow) -> bool:
        return self._find(flow.request.host)

    def sql(self) -> SQL:
        return _text_sql(self.arg, "flows.host", "flt_search")

    def row_test(self) -> RowTest:
        search = _memoized(_searcher(self.arg))
        return lambda row: search(row.host)


class Url(_RegexOperator):
    __slots__ = ()
    code = "~u"
    help = "full URL (a bare word means ~u WORD): ~u /api/"

    def __call__(self, flow: Flow) -> bool:
        return self._find(flow.request.url)

    def sql(self) -> SQL:
        return _text_sql(self.arg, "flows.url", "flt_search")

    def row_test(self) -> RowTest:
        search = _searcher(self.arg)
        return lambda row: search(row.url)


_CODE_RE = re.compile(r"[1-9][0-9]{2}")
_CLASS_RE = re.compile(r"[1-9][xX]{2}")


class Code(_ArgOperator):
    __slots__ = ("_high", "_low")
    code = "~c"
    argument = "CODE"
    help = "response status code, or a class: ~c 404, ~c 5xx"

    def __init__(self, arg: str) -> None:
        super().__init__(arg)
        if _CODE_RE.fullmatch(arg):
            self._low = self._high = int(arg)
        elif _CLASS_RE.fullmatch(arg):
            self._low = int(arg[0]) * 100
            self._high = self._low + 99
        else:
            raise ValueError(
                f"bad status for ~c: {arg!r} (use a code like 404 or a class like 4xx)"
            )

    def __call__(self, flow: Flow) -> bool:
        resp = flow.response
        return resp is not None and self._low <= resp.status_code <= self._high

    def sql(self) -> SQL:
        if self._low == self._high:
            return "(flows.status IS ?)", [self._low]
        return "(flows.status IS NOT NULL AND flows.status BETWEEN ? AND ?)", [
            self._low,
            self._high,
        ]

    def row_test(self) -> RowTest:
        low, high = self._low, self._high
        return lambda row: row.status is not None and low <= row.status <= high


def _either(a: SQL, b: SQL) -> SQL:
    return f"({a[0]} OR {b[0]})", [*a[1], *b[1]]


def _response_head(resp: FlowResponse | None) -> str | None:
    return None if resp is None else header_text(resp.headers)


class Header(_RegexOperator):
    __slots__ = ()
    code = "~h"
    help = "request or response headers as 'Name: value' lines (^ $ match per line): ~h '^x-key:'"

    def __call__(self, flow: Flow) -> bool:
        return _lines_match(self.arg, header_text(flow.request.headers)) or _lines_match(
            self.arg, _response_head(flow.response)
        )

    def sql(self) -> SQL:
        return _either(
            _text_sql(self.arg, "flows.req_head_text", "flt_lines"),
            _text_sql(self.arg, "flows.resp_head_text", "flt_lines"),
        )


class RequestHeader(_RegexOperator):
    __slots__ = ()
    code = "~hq"
    help = "a request header line: ~hq 'cookie: .*session'"

    def __call__(self, flow: Flow) -> bool:
        return _lines_match(self.arg, header_text(flow.request.headers))

    def sql(self) -> SQL:
        return _text_sql(self.arg, "flows.req_head_text", "flt_lines")


class ResponseHeader(_RegexOperator):
    __slots__ = ()
    code = "~hs"
    help = "a response header line: ~hs 'cache-control: no-store'"

    def __call__(self, flow: Flow) -> bool:
        return _lines_match(self.arg, _response_head(flow.response))

    def sql(self) -> SQL:
        return _text_sql(self.arg, "flows.resp_head_text", "flt_lines")


def _body_sql(pattern: str, part: str) -> SQL:
    """One pass over the bodies table (rather than a subquery per flow)."""
    test, params = _text_sql(pattern, "data", "flt_body")
    return f"flows.seq IN (SELECT flow_seq FROM bodies WHERE {test}{part})", params


class Body(_RegexOperator):
    __slots__ = ()
    code = "~b"
    help = "the recorded request or response body (as sent, before decoding): ~b token"

    def __call__(self, flow: Flow) -> bool:
        resp = flow.response
        return _body_matches(self.arg, flow.request.body.data) or (
            resp is not None and _body_matches(self.arg, resp.body.data)
        )

    def sql(self) -> SQL:
        return _body_sql(self.arg, " AND part < 2")  # parts 2 and 3 are originals kept


class RequestBody(_RegexOperator):
    __slots__ = ()
    code = "~bq"
    help = "the recorded request body: ~bq '\"user\":'"

    def __call__(self, flow: Flow) -> bool:
        return _body_matches(self.arg, flow.request.body.data)

    def sql(self) -> SQL:
        return _body_sql(self.arg, " AND part = 0")


class ResponseBody(_RegexOperator):
    __slots__ = ()
    code = "~bs"
    help = "the recorded response body: ~bs 'error'"

    def __call__(self, flow: Flow) -> bool:
        resp = flow.response
        return resp is not None and _body_matches(self.arg, resp.body.data)

    def sql(self) -> SQL:
        return _body_sql(self.arg, " AND part = 1")


class ContentType(_RegexOperator):
    __slots__ = ()
    code = "~t"
    help = "request or response Content-Type: ~t json"

    def __call__(self, flow: Flow) -> bool:
        resp = flow.response
        return self._find(flow.request.header("content-type")) or (
            resp is not None and self._find(resp.header("content-type"))
        )

    def sql(self) -> SQL:
        return _either(
            _text_sql(self.arg, "flows.req_content_type", "flt_search"),
            _text_sql(self.arg, "flows.resp_content_type", "flt_search"),
        )


@dataclass(frozen=True, slots=True)
class FlagQuestion:
    """An operator without an argument: one yes/no question about a flow, asked three ways.

    ``of_flow`` asks a Flow, ``where`` asks the store (an SQL condition on ``flows``, never
    NULL) and ``of_row`` a list row (None where rows do not hold the answer). Calling the
    question gives its ``Flag`` filter, as calling an operator class does.
    """

    code: str
    help: str
    of_flow: Callable[[Flow], bool]
    where: str
    of_row: RowTest | None = None
    argument: ClassVar[None] = None

    def __call__(self) -> Flag:
        return Flag(self)


class Flag(Operator):
    """A ``~x`` term without an argument: the filter of one row of ``FLAGS``."""

    __slots__ = ("question",)

    def __init__(self, question: FlagQuestion) -> None:
        self.question = question

    def __call__(self, flow: Flow) -> bool:
        return self.question.of_flow(flow)

    def sql(self) -> SQL:
        return f"({self.question.where})", []

    def row_test(self) -> RowTest | None:
        return self.question.of_row

    def _key(self) -> tuple[object, ...]:
        return (self.question.code,)

    def __str__(self) -> str:
        return self.question.code


FLAGS = (
    FlagQuestion(
        "~e",
        "exchanges with an exception (connect, TLS, protocol, timeout, ...)",
        lambda flow: flow.error is not None,
        "flows.error_class IS NOT NULL",
        lambda row: row.error is not None,
    ),
    FlagQuestion(
        "~s",
        "exchanges with a response",
        lambda flow: flow.response is not None,
        "flows.status IS NOT NULL",
        lambda row: row.status is not None,
    ),
    FlagQuestion(
        "~q",
        "exchanges with no response (yet)",
        lambda flow: flow.response is None,
        "flows.status IS NULL",
        lambda row: row.status is None,
    ),
    FlagQuestion(
        "~marked",
        "flows marked by the user",
        lambda flow: flow.marked,
        "flows.marked = 1",
        lambda row: bool(row.marked),
    ),
    FlagQuestion(
        "~replay",
        "flows made by replaying another flow",
        lambda flow: flow.replay_of is not None,
        "flows.replay_of IS NOT NULL",
        lambda row: row.replay_of is not None,
    ),
    FlagQuestion(
        "~modified",
        "flows changed by a rule, an addon (-M, --map-local, -H, -B, --block-list, -s)"
        " or an edit in the UI",
        lambda flow: bool(flow.modified_by),
        "flows.modified = 1",
    ),
    FlagQuestion(
        "~http2",
        "exchanges the client made over HTTP/2 (ALPN h2 or prior knowledge)",
        lambda flow: flow.request.http_version == "HTTP/2",
        "flows.http_version = 'HTTP/2'",
        lambda row: row.version == "2",
    ),
    FlagQuestion(
        "~websocket",
        "WebSocket connections (the proxy relays no other protocol switch, so: status 101)",
        lambda flow: flow.response is not None and flow.response.status_code == 101,
        "flows.status IS 101",  # IS: a flow with no status is not one, also under NOT
        lambda row: row.status == 101,
    ),
)


OPERATORS: dict[str, type[Operator] | FlagQuestion] = {
    kind.code: kind
    for kind in (
        Method,
        Domain,
        Url,
        Code,
        Header,
        RequestHeader,
        ResponseHeader,
        Body,
        RequestBody,
        ResponseBody,
        ContentType,
        *FLAGS,
    )
}


class Not(Filter):
    __slots__ = ("inner",)

    def __init__(self, inner: Filter) -> None:
        self.inner = inner

    def __call__(self, flow: Flow) -> bool:
        return not self.inner(flow)

    def sql(self) -> SQL:
        where, params = self.inner.sql()
        return f"(NOT {where})", params

    def row_test(self) -> RowTest | None:
        inner = self.inner.row_test()
        return None if inner is None else lambda row: not inner(row)

    def _key(self) -> tuple[object, ...]:
        return (self.inner,)

    def __str__(self) -> str:
        inner = str(self.inner)
        return f"!({inner})" if isinstance(self.inner, _Group) else f"!{inner}"


class _Group(Filter):
    __slots__ = ("parts",)
    joiner: ClassVar[str]
    sql_joiner: ClassVar[str]

    def __init__(self, parts: list[Filter]) -> None:
        flat: list[Filter] = []
        for part in parts:
            flat.extend(part.parts if type(part) is type(self) else (part,))  # type: ignore[attr-defined]
        self.parts = tuple(flat)

    def sql(self) -> SQL:
        wheres, params = [], []
        for part in self.parts:
            where, ps = part.sql()
            wheres.append(where)
            params.extend(ps)
        return f"({self.sql_joiner.join(wheres)})", params

    def _part_tests(self) -> list[RowTest] | None:
        tests = [part.row_test() for part in self.parts]
        return None if None in tests else tests  # type: ignore[return-value]

    def _key(self) -> tuple[object, ...]:
        return self.parts


class And(_Group):
    __slots__ = ()
    joiner = " & "
    sql_joiner = " AND "

    def __call__(self, flow: Flow) -> bool:
        return all(part(flow) for part in self.parts)

    def row_test(self) -> RowTest | None:
        tests = self._part_tests()
        return None if tests is None else _all(tests)

    def __str__(self) -> str:
        return self.joiner.join(f"({p})" if isinstance(p, Or) else str(p) for p in self.parts)


class Or(_Group):
    __slots__ = ()
    joiner = " | "
    sql_joiner = " OR "

    def __call__(self, flow: Flow) -> bool:
        return any(part(flow) for part in self.parts)

    def row_test(self) -> RowTest | None:
        tests = self._part_tests()
        return None if tests is None else _any(tests)

    def __str__(self) -> str:
        return self.joiner.join(str(p) for p in self.parts)


# --- quoting ------------------------------------------------------------------------------

_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t"}
_QUOTE_OUT = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NEEDS_QUOTES = re.compile(r"""[\s()&|"'\\]|^[~!]|^$""")


def quote(arg: str) -> str:
    """``arg`` as the parser reads it back: bare when safe, else double-quoted with escapes."""
    if not _NEEDS_QUOTES.search(arg):
        return arg
    return '"' + "".join(_QUOTE_OUT.get(ch, ch) for ch in arg) + '"'


# --- tokenizer and parser -----------------------------------------------------------------

_PUNCT = "()!&|"
# Letters, but ~http2 keeps its digit (and ~c404 still reads as ~c 404).
_OPERATOR_NAME = re.compile(r"~(?:http2(?![0-9A-Za-z_])|[a-zA-Z]*)")
_OPERATOR_START = re.compile(r"~[a-zA-Z]")


class _Lexer:
    """Reads tokens on demand: the parser says whether it wants a term or an argument."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> int:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.pos

    def peek(self) -> str:
        """The next term-level token kind: one of ``()!&|``, ``~``, ``word`` or ``""`` (end)."""
        self.skip_space()
        if self.pos >= len(self.text):
            return ""
        ch = self.text[self.pos]
        if ch in _PUNCT or ch == "~":
            return ch
        return "word"

    def take_punct(self) -> tuple[str, int]:
        start = self.pos
        self.pos += 1
        return self.text[start], start

    def take_operator(self) -> tuple[str, int]:
        m = _OPERATOR_NAME.match(self.text, self.pos)
        assert m is not None
        self.pos = m.end()
        return m.group(), m.start()

    def take_argument(self) -> str | None:
        """A quoted or bare argument, or None when there is none here."""
        self.skip_space()
        if self.pos >= len(self.text):
            return None
        ch = self.text[self.pos]
        if ch in "\"'":
            return self._quoted(ch)
        if _OPERATOR_START.match(self.text, self.pos):
            return None  # an operator, not an argument: quote it to mean the text
        return self._word() or None

    def _quoted(self, quote_char: str) -> str:
        start = self.pos
        self.pos += 1
        out: list[str] = []
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == quote_char:
                self.pos += 1
                return "".join(out)
            if ch == "\\" and self.pos + 1 < len(text):
                nxt = text[self.pos + 1]
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                self.pos += 2
                continue
            out.append(ch)
            self.pos += 1
        raise FilterError(
            f"unterminated quote at position {start}: add the closing {quote_char}", start
        )

    def _word(self) -> str:
        start = self.pos
        depth = 0
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch.isspace():
                break
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            elif ch in "&|" and depth == 0:
                break
            self.pos += 1
        return text[start : self.pos]


def _known() -> str:
    return " ".join(OPERATORS)


class _Parser:
    __slots__ = ("lex",)

    def __init__(self, text: str) -> None:
        self.lex = _Lexer(text)

    def parse(self) -> Filter:
        if not self.lex.text.strip():
            raise FilterError("empty filter expression: write e.g. ~m GET or ~c 404", 0)
        result = self.parse_or()
        kind = self.lex.peek()
        if kind:
            pos = self.lex.pos
            raise FilterError(f"unexpected {kind} at position {pos}: no ( to close", pos)
        return result

    def parse_or(self) -> Filter:
        parts = [self.parse_and()]
        while self.lex.peek() == "|":
            self.lex.take_punct()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else Or(parts)

    def parse_and(self) -> Filter:
        parts = [self.parse_unary()]
        while True:
            kind = self.lex.peek()
            if kind == "&":
                self.lex.take_punct()
            elif kind not in ("(", "!", "~", "word"):
                break
            parts.append(self.parse_unary())
        return parts[0] if len(parts) == 1 else And(parts)

    def parse_unary(self) -> Filter:
        if self.lex.peek() == "!":
            self.lex.take_punct()
            return Not(self.parse_unary())
        return self.parse_primary()

    def parse_primary(self) -> Filter:
        kind = self.lex.peek()
        pos = self.lex.pos
        if kind == "(":
            self.lex.take_punct()
            inner = self.parse_or()
            if self.lex.peek() != ")":
                at = self.lex.pos
                raise FilterError(
                    f"missing ) at position {at}: the ( at position {pos} is not closed", at
                )
            self.lex.take_punct()
            return inner
        if kind == "~":
            return self.parse_operator()
        if kind == "word":
            word = self.lex.take_argument()
            assert word is not None
            return self.build(Url, word, pos)
        if kind == "":
            raise FilterError(f"expected a filter at position {pos} (end of expression)", pos)
        if kind == ")":
            raise FilterError(f"unexpected ) at position {pos}: expected a filter first", pos)
        raise FilterError(f"expected a filter before {kind} at position {pos}", pos)

    def parse_operator(self) -> Filter:
        code, pos = self.lex.take_operator()
        kind = OPERATORS.get(code.lower())
        if kind is None:
            raise FilterError(
                f"unknown operator {code} at position {pos}: known operators are {_known()}", pos
            )
        if isinstance(kind, FlagQuestion):
            return kind()
        arg_pos = self.lex.skip_space()
        arg = self.lex.take_argument()
        if arg is None:
            raise FilterError(
                f"{kind.code} needs a {kind.argument} argument at position {arg_pos} "
                f"(e.g. {kind.help.rsplit(': ', 1)[-1]})",
                arg_pos,
            )
        return self.build(kind, arg, arg_pos)

    @staticmethod
    def build(cls: Callable[[str], Filter], arg: str, pos: int) -> Filter:
        try:
            return cls(arg)
        except ValueError as e:
            raise FilterError(f"{e} (at position {pos})", pos) from None


def parse(expr: str) -> Filter:
    """Parse a filter expression; raises ``FilterError`` saying what is wrong and where."""
    return _Parser(expr).parse()


def _help_text() -> str:
    rows = [(f"{op.code} {op.argument or ''}".rstrip(), op.help) for op in OPERATORS.values()]
    rows += [
        ("!X", "not X"),
        ("X & Y", "X and Y (whitespace between terms also means and)"),
        ("X | Y", "X or Y (! binds tighter than &, & tighter than |)"),
        ("(X)", "grouping"),
        ("WORD", "a bare word means ~u WORD"),
    ]
    width = max(len(left) for left, _ in rows) + 2
    lines = ["Filter expressions:"]
    lines += [f"  {left.ljust(width)}{right}" for left, right in rows]
    lines += [
        "Regexes (REGEX) ignore case. Quote an argument with spaces, parentheses, & or |:",
        "  ~h \"content-type: text/.*\"   ~u 'a(b|c)'   ~m POST & !(~c 2xx | ~d internal)",
    ]
    return "\n".join(lines)


HELP = _help_text()
