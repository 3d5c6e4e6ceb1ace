"""The filter language: parsing, precedence, matching, errors, help and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.filters import FLAGS, HELP, OPERATORS, Filter, FilterError, parse
from inspector.flow import Flow, FlowBody, FlowError, FlowRequest, FlowResponse, Phase


def make_flow(
    method: str = "GET",
    host: str = "api.example.com",
    path: str = "/v1/users?id=7",
    *,
    scheme: str = "https",
    port: int = 443,
    req_headers: list[tuple[bytes, bytes]] | None = None,
    req_body: bytes = b"",
    status: int | None = 200,
    resp_headers: list[tuple[bytes, bytes]] | None = None,
    resp_body: bytes = b"",
    error: str | None = None,
) -> Flow:
    flow = Flow(
        FlowRequest(
            method,
            scheme,
            host,
            port,
            path,
            headers=req_headers if req_headers is not None else [(b"Host", host.encode())],
            body=FlowBody(req_body, len(req_body)),
        )
    )
    if status is not None:
        flow.response = FlowResponse(
            status,
            headers=resp_headers
            if resp_headers is not None
            else [(b"Content-Type", b"application/json")],
            body=FlowBody(resp_body, len(resp_body)),
        )
    if error is not None:
        flow.error = FlowError(error, "boom", Phase.CONNECT)
    return flow


GET_OK = make_flow()
POST_404 = make_flow(
    "POST",
    "shop.test",
    "/cart",
    scheme="http",
    port=8080,
    req_headers=[(b"Content-Type", b"application/x-www-form-urlencoded"), (b"Cookie", b"s=1")],
    req_body=b"item=42&qty=1",
    status=404,
    resp_headers=[(b"Content-Type", b"text/html; charset=utf-8"), (b"X-Trace", b"abc")],
    resp_body="<h1>Nicht gefunden \u2014 \u00f6</h1>".encode(),
)
REFUSED = make_flow(
    "GET", "127.0.0.1", "/", scheme="http", port=9, status=None, error="ConnectionRefusedError"
)
PENDING = make_flow("PUT", "up.test", "/f", status=None)
ALL = {"get_ok": GET_OK, "post_404": POST_404, "refused": REFUSED, "pending": PENDING}


def selected(expr: str) -> set[str]:
    f = parse(expr)
    return {name for name, flow in ALL.items() if f(flow)}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("~m get", {"get_ok", "refused"}),
        ("~m POST", {"post_404"}),
        ("~m POS", set()),  # exact, not a regex
        ("~d example", {"get_ok"}),
        ("~d '^127\\.'", {"refused"}),
        ("~d EXAMPLE\\.COM$", {"get_ok"}),
        ("~u /v1/users", {"get_ok"}),
        ("~u https://api", {"get_ok"}),
        ("~u :8080/cart", {"post_404"}),
        ("cart", {"post_404"}),  # a bare word is ~u
        ("~c 404", {"post_404"}),
        ("~c 4xx", {"post_404"}),
        ("~c 2XX", {"get_ok"}),
        ("~c 500", set()),
        ("~h '^cookie: s='", {"post_404"}),
        ("~h x-trace", {"post_404"}),
        ("~h 'host: api'", {"get_ok"}),
        ("~hq x-trace", set()),
        ("~hs x-trace", {"post_404"}),
        ("~hq cookie", {"post_404"}),
        ("~b qty=1", {"post_404"}),
        ("~b 'gefunden \u2014 \u00f6'", {"post_404"}),  # UTF-8 text
        ("~b 'NICHT'", {"post_404"}),
        ("~bq nicht", set()),
        ("~bs nicht", {"post_404"}),
        ("~bq item", {"post_404"}),
        ("~t json", {"get_ok"}),
        ("~t form", {"post_404"}),
        ("~t html", {"post_404"}),
        ("~e", {"refused"}),
        ("~s", {"get_ok", "post_404"}),
        ("~q", {"refused", "pending"}),
        ("!~e", {"get_ok", "post_404", "pending"}),
        ("~q & !~e", {"pending"}),
        ("~q !~e", {"pending"}),  # whitespace means &
        ("~m POST | ~e", {"post_404", "refused"}),
        ("~m GET & ~s | ~m PUT", {"get_ok", "pending"}),
        ("~m GET & (~s | ~m PUT)", {"get_ok"}),
        ("!(~m GET | ~m PUT)", {"post_404"}),
        ("!~m GET & !~m PUT", {"post_404"}),
        ("!!~e", {"refused"}),
        ("~marked", set()),
        ("~replay", set()),
    ],
)
def test_operators_select_the_right_flows(expr: str, names: set[str]) -> None:
    assert selected(expr) == names


def test_marked_and_replay() -> None:
    flow = make_flow()
    assert not parse("~marked")(flow)
    flow.marked = True
    flow.replay_of = "abc"
    assert parse("~marked & ~replay")(flow)


def test_latin1_body_bytes_match() -> None:
    flow = make_flow(resp_body=b"caf\xe9 \x00\xff binary")
    assert parse("~b 'caf\u00e9'")(flow)
    assert parse("~b '\u00ff binary'")(flow)
    assert not parse("~b nothing")(flow)


def test_empty_body_never_matches() -> None:
    assert not parse("~b '.*'")(make_flow())


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ("~m GET", "~m GET"),
        ("  ~m   GET  ", "~m GET"),
        ("a b c", "~u a & ~u b & ~u c"),
        ("a | b c", "~u a | ~u b & ~u c"),
        ("(a | b) c", "(~u a | ~u b) & ~u c"),
        ("((a))", "~u a"),
        ("!(a & b)", "!(~u a & ~u b)"),
        ("a & (b & c)", "~u a & ~u b & ~u c"),
        ("~u a(b|c)d", '~u "a(b|c)d"'),
        ("~u (x|y)", '~u "(x|y)"'),
        ("~u a|b", "~u a | ~u b"),  # | outside parentheses is the operator
        ("~u 'a|b'", '~u "a|b"'),
        ('~h "content-type: text/.*"', '~h "content-type: text/.*"'),
        ("~u 'it\\'s'", '~u "it\'s"'),
        ('~u "tab\\there"', '~u "tab\\there"'),
        ('~u "\\d+"', '~u "\\\\d+"'),
        ("~u \\d+", '~u "\\\\d+"'),
        ("~u !x", '~u "!x"'),
        ("~u '~m'", '~u "~m"'),
        ("~M get", "~m get"),
        ("!~e|~s", "!~e | ~s"),
    ],
)
def test_parse_and_print(expr: str, text: str) -> None:
    f = parse(expr)
    assert str(f) == text
    assert parse(text) == f


def test_escapes_in_quotes() -> None:
    assert parse('~u "a\\"b"') == parse("~u 'a\"b'")
    assert parse('~u "a\\\\b"').arg == "a\\b"  # type: ignore[attr-defined]
    assert parse('~u "\\d"').arg == "\\d"  # type: ignore[attr-defined]
    assert parse('~u "x\\ny"').arg == "x\ny"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("expr", "position", "words"),
    [
        ("~m GET & ~x", 9, "unknown operator ~x at position 9: known operators are ~m ~d ~u"),
        ("~", 0, "unknown operator ~ at position 0"),
        ("(~m GET", 7, "missing ) at position 7: the ( at position 0 is not closed"),
        ("(a | (b)", 8, "missing ) at position 8"),
        ("a)", 1, "unexpected ) at position 1"),
        (")", 0, "unexpected ) at position 0"),
        ("~u (", 3, "bad regex for ~u: missing ), unterminated subpattern (at position 3)"),
        ("~h '[a-'", 3, "bad regex for ~h"),
        ("~c abc", 3, "bad status for ~c: 'abc' (use a code like 404 or a class like 4xx)"),
        ("~c 42", 3, "bad status for ~c"),
        ("~c 6xxx", 3, "bad status for ~c"),
        ("~m", 2, "~m needs a METHOD argument at position 2 (e.g. ~m POST)"),
        ("~u & a", 3, "~u needs a REGEX argument at position 3"),
        ("~u ~m GET", 3, "~u needs a REGEX argument"),
        ("", 0, "empty filter expression"),
        ("   ", 0, "empty filter expression"),
        ("a &", 3, "expected a filter at position 3 (end of expression)"),
        ("a | | b", 4, "expected a filter before | at position 4"),
        ("& a", 0, "expected a filter before & at position 0"),
        ("!", 1, "expected a filter at position 1"),
        ("~u 'abc", 3, "unterminated quote at position 3: add the closing '"),
        ('~u "abc\\"', 3, 'unterminated quote at position 3: add the closing "'),
    ],
)
def test_errors_say_what_and_where(expr: str, position: int, words: str) -> None:
    with pytest.raises(FilterError) as info:
        parse(expr)
    assert words in str(info.value)
    assert info.value.position == position
    assert info.value.message == str(info.value)


def test_filter_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse("~nope")


def test_help_lists_every_operator() -> None:
    for code, cls in OPERATORS.items():
        assert code == cls.code
        assert cls.help in HELP
        line = next(line for line in HELP.splitlines() if line.strip().startswith(code + " "))
        if cls.argument:
            assert cls.argument in line
    for word in ("!X", "X & Y", "X | Y", "(X)", "WORD"):
        assert word in HELP


def test_filters_are_hashable_and_comparable() -> None:
    assert parse("~m GET & ~c 2xx") == parse("~m GET&~c 2xx")
    assert parse("~m GET") != parse("~m POST")
    assert parse("~u a") != parse("~d a")
    assert len({parse("~e"), parse("~e"), parse("~s")}) == 2
    assert repr(parse("~e | ~s")) == "parse('~e | ~s')"


# --- properties -------------------------------------------------------------------------

_args = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12
).filter(lambda s: _valid_regex(s))


def _valid_regex(s: str) -> bool:
    import re

    try:
        re.compile(s)
    except re.error:
        return False
    return True


_leaf = st.one_of(
    st.sampled_from([question.code for question in FLAGS]),
    st.builds(lambda a: f"~m {_q(a)}", _args),
    st.builds(lambda c, a: f"{c} {_q(a)}", st.sampled_from(["~u", "~d", "~h", "~b", "~t"]), _args),
    st.sampled_from(["~c 200", "~c 4xx", "~c 503"]),
    st.from_regex(r"[a-z0-9/._-]{1,8}", fullmatch=True),
)


def _q(arg: str) -> str:
    from inspector.filters import quote

    return quote(arg)


_expr = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.builds(lambda e: f"!{e}", inner),
        st.builds(lambda e: f"({e})", inner),
        st.builds(lambda a, b: f"{a} & {b}", inner, inner),
        st.builds(lambda a, b: f"{a} | {b}", inner, inner),
        st.builds(lambda a, b: f"{a} {b}", inner, inner),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(_expr)
def test_printing_round_trips(expr: str) -> None:
    f = parse(expr)
    text = str(f)
    again = parse(text)
    assert again == f
    assert str(again) == text


@settings(max_examples=300, deadline=None)
@given(_args)
def test_any_argument_survives_quoting(arg: str) -> None:
    f = parse(f"~u {_q(arg)}")
    assert f.arg == arg  # type: ignore[attr-defined]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="~mdeucsqhb!&|()'\" \\x4a2-", max_size=20))
def test_arbitrary_text_parses_or_raises_filter_error(text: str) -> None:
    try:
        f = parse(text)
    except FilterError as e:
        assert 0 <= e.position <= len(text)
        return
    assert isinstance(f, Filter)
    f(GET_OK)
    f(REFUSED)


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet="abcKkSsIi019 -_:=", max_size=6),
    st.binary(max_size=40)
    | st.text(max_size=20).map(lambda t: t.encode("utf-8"))
    | st.text(alphabet="ab kis\u0130\u0131\u017f\u212a\xe9", max_size=12).map(str.encode),
)
def test_literal_body_search_equals_the_regex(pattern: str, data: bytes) -> None:
    import re

    from inspector.filters import _body_matches

    rx = re.compile(pattern, re.IGNORECASE)
    want = bool(data) and (
        rx.search(data.decode("latin-1")) is not None
        or rx.search(data.decode("utf-8", errors="replace")) is not None
    )
    assert _body_matches(pattern, data) == want


def test_header_regex_anchors_match_per_line() -> None:
    flow = make_flow(req_headers=[(b"Host", b"a.test"), (b"X-Key", b"secret")])
    assert parse("~h '^x-key: secret$'")(flow)
    assert parse("~h '^host: a\\.test$'")(flow)
    assert not parse("~h '^secret'")(flow)


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet="abcKkSsIi019 -_:=/", max_size=6),
    st.text(max_size=20) | st.text(alphabet="ab kis:\n\u0130\u0131\u017f\u212a\xe9", max_size=12),
)
def test_literal_text_search_equals_the_regex(pattern: str, text: str) -> None:
    import re

    from inspector.filters import _lines_match, _search

    assert _search(pattern, text) == (re.search(pattern, text, re.IGNORECASE) is not None)
    multiline = re.search(pattern, text, re.IGNORECASE | re.MULTILINE) is not None
    assert _lines_match(pattern, text) == multiline


def test_every_flag_asks_one_question_of_flows_sessions_and_list_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each FLAGS row's three evaluators (flow, SQL, list row) select the same flows."""
    from inspector.store import Store
    from inspector.tui.rows import FlowRow

    marked, replayed, modified = make_flow(), make_flow("POST", status=None), make_flow()
    marked.marked = True
    replayed.replay_of = marked.id
    modified.modified_by = ["-H|~q|X-Debug|1"]
    over_h2 = make_flow()
    over_h2.request.http_version = over_h2.response.http_version = "HTTP/2"  # type: ignore[union-attr]
    flows = [make_flow(), make_flow(status=None, error="TimeoutError"), marked, replayed, modified]
    flows.append(over_h2)
    flows.append(make_flow(status=101))  # a WebSocket connection
    with Store(tmp_path / "s.db") as store:
        for flow in flows:
            store.put(flow)
        store.flush()
        for question in FLAGS:
            flag = parse(question.code)
            expected = {f.id for f in flows if flag(f)}
            assert expected and expected != {f.id for f in flows}, f"{question.code}: both ways"
            assert {f.id for f in store.iter_flows(question.code)} == expected, question.code
            test = flag.row_test()
            if test is not None:
                rows = {f.id for n, f in enumerate(flows) if test(FlowRow.from_flow(f, n))}
                assert rows == expected, question.code
