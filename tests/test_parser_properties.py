"""Property tests: how bytes are split across receive_data() never changes the events."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.connection import CLIENT, SERVER, Connection
from protocol.errors import HTTPException
from protocol.events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Request,
    Response,
)
from protocol.headers import Headers
from tests.parser_fixtures import HOST, merge_data

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
    b"PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;x=y\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nTrailer-A: 1\r\n\r\n",
    b"\r\nGET /lead HTTP/1.1\r\nHost: a\r\nX-Many: 1\r\nX-Many: 2\r\n\r\n",
]

RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"a\r\n0123456789\r\n3;ext\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    # bare LF line endings, which responses (never requests) may use
    b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nhi\r\n1\n!\n0\nT: v\n\n",
    b"HTTP/1.1 200 OK\nContent-Length: 4\r\n\n\r\n\r\n",
    # obs-fold, which a user agent unfolds to one space (RFC 9112 5.2)
    b"HTTP/1.1 200 OK\r\nX-Fold: a\r\n b \r\n\tc\r\nContent-Length: 1\r\n\r\n!",
]

# Responses that are complete when the server closes right after them.
CLOSED_RESPONSES = [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n",  # no final CRLF
    b"HTTP/1.0 200 OK\r\n\r\nuntil close",
]


def _splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return [p for p in pieces if p]


def _events(conn: Connection, pieces: list[bytes], eof: bool = False) -> list[object]:
    """Feed ``pieces`` one by one, collecting events until the cycle pauses or ends."""
    out: list[object] = []
    feed = [*pieces, b""] if eof else list(pieces)
    for _ in range(100_000):
        event = conn.next_event()
        if event is NEED_DATA:
            if not feed:
                return out
            conn.receive_data(feed.pop(0))
            continue
        out.append(event)
        if event is PAUSED or type(event) is ConnectionClosed:
            return out
        if type(event) is EndOfMessage and not _more_expected(out):
            return out
    raise AssertionError("too many events")


def _more_expected(events: list[object]) -> bool:
    heads = [e for e in events if type(e) in (Request, Response)]
    return bool(heads) and type(heads[-1]) is Response and heads[-1].informational


def _client() -> Connection:
    conn = Connection(CLIENT)
    conn.send(Request(b"GET", b"/", Headers(HOST)))
    conn.send(EndOfMessage())
    return conn


@SETTINGS
@given(index=st.integers(0, len(REQUESTS) - 1), cuts=st.lists(st.integers(0, 10_000)))
def test_request_events_do_not_depend_on_splits(index: int, cuts: list[int]) -> None:
    raw = REQUESTS[index]
    whole = merge_data(_events(Connection(SERVER), [raw]))
    split = merge_data(_events(Connection(SERVER), _splits(raw, cuts)))
    bytewise = merge_data(_events(Connection(SERVER), [raw[i : i + 1] for i in range(len(raw))]))
    assert whole == split == bytewise
    assert type(whole[-1]) is EndOfMessage


@SETTINGS
@given(index=st.integers(0, len(RESPONSES) - 1), cuts=st.lists(st.integers(0, 10_000)))
def test_response_events_do_not_depend_on_splits(index: int, cuts: list[int]) -> None:
    raw = RESPONSES[index]
    whole = merge_data(_events(_client(), [raw]))
    split = merge_data(_events(_client(), _splits(raw, cuts)))
    bytewise = merge_data(_events(_client(), [raw[i : i + 1] for i in range(len(raw))]))
    assert whole == split == bytewise
    assert type(whole[-1]) is EndOfMessage


@SETTINGS
@given(
    first=st.integers(0, len(REQUESTS) - 1),
    second=st.integers(0, len(REQUESTS) - 1),
    cuts=st.lists(st.integers(0, 10_000)),
)
def test_pipelined_requests_with_trailing_bytes(first: int, second: int, cuts: list[int]) -> None:
    conn = Connection(SERVER)
    for piece in _splits(REQUESTS[first] + REQUESTS[second], cuts):
        conn.receive_data(piece)
    events = merge_data(_events(conn, []))
    assert events == merge_data(_events(Connection(SERVER), [REQUESTS[first]]))
    # the second request waits, unparsed, until the cycle is restarted
    assert conn.next_event() is PAUSED
    conn.send(Response(200, Headers([(b"Content-Length", b"0")])))
    conn.send(EndOfMessage())
    conn.start_next_cycle()
    rest = merge_data(_events(conn, []))
    assert rest == merge_data(_events(Connection(SERVER), [REQUESTS[second]]))


@SETTINGS
@given(
    body=st.binary(max_size=3000),
    cuts=st.lists(st.integers(0, 10_000)),
    chunked=st.booleans(),
)
def test_sent_bodies_parse_back_identically(body: bytes, cuts: list[int], chunked: bool) -> None:
    client = Connection(CLIENT)
    framing = (
        (b"Transfer-Encoding", b"chunked") if chunked else (b"Content-Length", b"%d" % len(body))
    )
    wire = client.send(Request(b"POST", b"/b", Headers([*HOST, framing])))
    for piece in _splits(body, cuts):
        wire += client.send(Data(piece))
    wire += client.send(EndOfMessage())
    events = merge_data(_events(Connection(SERVER), _splits(wire, cuts)))
    expected = [Data(body)] if body else []
    assert events[1:] == [*expected, EndOfMessage()]


_names = st.from_regex(rb"\A[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}\Z")
_values = st.from_regex(
    rb"\A([\x21-\x7e\x80-\xff]([\x20-\x7e\x80-\xff]{0,30}[\x21-\x7e\x80-\xff])?)?\Z"
)


@SETTINGS
@given(fields=st.lists(st.tuples(_names, _values), max_size=30))
def test_any_valid_headers_round_trip(fields: list[tuple[bytes, bytes]]) -> None:
    fields = [
        (n, v)
        for n, v in fields
        if n.lower() not in (b"host", b"content-length", b"transfer-encoding", b"connection")
        and n.lower() not in (b"expect", b"upgrade")
    ]
    headers = Headers([*HOST, *fields])
    wire = Connection(CLIENT).send(Request(b"GET", b"/", headers))
    server = Connection(SERVER)
    server.receive_data(wire)
    assert server.next_event() == Request(b"GET", b"/", headers)


@SETTINGS
@given(junk=st.binary(max_size=400), cuts=st.lists(st.integers(0, 1000), max_size=5))
def test_garbage_only_ever_raises_http_exceptions(junk: bytes, cuts: list[int]) -> None:
    for conn in (Connection(SERVER), _client()):
        try:
            _events(conn, _splits(junk, cuts), eof=True)
        except HTTPException as err:
            assert isinstance(err.status_hint, int)
            assert str(err) or repr(err)


@SETTINGS
@given(
    index=st.integers(0, len(REQUESTS) - 1),
    position=st.integers(0, 10_000),
    byte=st.sampled_from([b"\x00", b"\n", b"\r", b" ", b":", b"\x7f", b"\xff", b"\t"]),
)
def test_mutated_requests_parse_or_fail_cleanly(index: int, position: int, byte: bytes) -> None:
    raw = REQUESTS[index]
    at = position % len(raw)
    mutated = raw[:at] + byte + raw[at + 1 :]
    try:
        events = _events(Connection(SERVER), [mutated], eof=True)
    except HTTPException:
        return
    assert all(
        type(e) in (Request, Data, EndOfMessage, ConnectionClosed) or e is PAUSED for e in events
    )


@SETTINGS
@given(index=st.integers(0, len(CLOSED_RESPONSES) - 1), cuts=st.lists(st.integers(0, 10_000)))
def test_responses_ended_by_close_do_not_depend_on_splits(index: int, cuts: list[int]) -> None:
    raw = CLOSED_RESPONSES[index]
    whole = merge_data(_events(_client(), [raw], eof=True))
    split = merge_data(_events(_client(), _splits(raw, cuts), eof=True))
    assert whole == split
    assert type(whole[-1]) is EndOfMessage


@SETTINGS
@given(cuts=st.lists(st.integers(0, 10_000)), interim=st.booleans(), server=st.booleans())
def test_101st_header_line_is_refused_when_it_arrives(
    cuts: list[int], interim: bool, server: bool
) -> None:
    """However the head is split, the error comes with the 101st line, before any end."""
    lines = b"".join(b"H%d: v\r\n" % i for i in range(101))
    if server:
        conn, raw = Connection(SERVER), b"GET / HTTP/1.1\r\n" + lines
    else:
        start = b"HTTP/1.1 100 Continue\r\n\r\n" if interim else b""
        conn, raw = _client(), start + b"HTTP/1.1 200 OK\r\n" + lines
    try:
        _events(conn, _splits(raw, cuts))
    except HTTPException as err:
        assert "got more than 100 headers" in str(err)
        assert err.status_hint == 431
    else:
        raise AssertionError("101 header lines were accepted")


_any_field_byte = st.binary(max_size=6) | st.sampled_from(
    [b"", b" ", b":", b"\r", b"\n", b"\r\n", b"\x00", b"\x7f", b"\t", b"\xff", b"a: b"]
)


@SETTINGS
@given(fields=st.lists(st.tuples(_any_field_byte, _any_field_byte), max_size=6))
def test_the_writer_refuses_exactly_the_fields_outside_the_grammar(
    fields: list[tuple[bytes, bytes]],
) -> None:
    import re

    from protocol import _abnf
    from protocol._writers import field_block
    from protocol.errors import LocalProtocolError

    valid = all(
        re.fullmatch(_abnf.TOKEN, name) and re.fullmatch(rb"[\t\x20-\x7e\x80-\xff]*", value)
        for name, value in fields
    )
    try:
        block = field_block(fields)
    except LocalProtocolError:
        assert not valid
    else:
        assert valid
        assert block == b"".join(name + b": " + value + b"\r\n" for name, value in fields)
        assert field_block([[name, value] for name, value in fields]) == block  # lists too
