"""The sans-IO HTTP/1.1 core: parsing, framing checks, state machine and sending."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Callable

import httpx
import pytest
import requests

from protocol.connection import (
    CLIENT,
    CLOSED,
    DONE,
    ERROR,
    IDLE,
    MUST_CLOSE,
    SEND_BODY,
    SERVER,
    SWITCHED,
    Connection,
)
from protocol.errors import (
    BadStatusLine,
    HTTPException,
    IncompleteRead,
    LineTooLong,
    LocalProtocolError,
    RemoteDisconnected,
    RemoteProtocolError,
    UnknownProtocol,
    UnknownTransferEncoding,
)
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
from tests.conftest import needs_curl
from tests.parser_fixtures import HOST, client_after, drain, merge_data, server_with

GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


# ---------------------------------------------------------------- requests (server side)


def test_simple_get_request() -> None:
    conn = server_with(GET)
    assert drain(conn) == [
        Request(b"GET", b"/", Headers([(b"Host", b"example.com")]), b"1.1"),
        EndOfMessage(),
        NEED_DATA,
    ]
    assert conn.their_state is DONE and conn.our_state is IDLE


def test_request_with_content_length_body() -> None:
    conn = server_with(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    events = drain(conn)
    assert events[1:] == [Data(b"hello"), EndOfMessage(), NEED_DATA]


def test_request_body_arrives_in_pieces() -> None:
    conn = server_with(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhel")
    assert drain(conn)[1:] == [Data(b"hel"), NEED_DATA]
    conn.receive_data(b"lo worl")
    conn.receive_data(b"d!")
    assert drain(conn) == [Data(b"lo worl"), EndOfMessage(), PAUSED]
    assert conn.trailing_data == (b"d!", False)


def test_chunked_request_with_extensions_and_trailers() -> None:
    raw = (
        b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5;name=value;q="a \\"quoted\\" ext"\r\nhello\r\n'
        b"6 ; bws = x\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
    )
    events = merge_data(drain(server_with(raw)))
    assert events[1:] == [
        Data(b"hello world"),
        EndOfMessage(Headers([(b"X-Checksum", b"abc"), (b"X-Other", b"1")])),
        NEED_DATA,
    ]


def test_chunk_size_is_case_insensitive_hex() -> None:
    body = b"x" * 26
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n1A\r\n" + body
    raw += b"\r\n0\r\n\r\n"
    assert merge_data(drain(server_with(raw)))[1:] == [Data(body), EndOfMessage(), NEED_DATA]


def test_header_case_order_and_duplicates_are_kept_and_whitespace_trimmed() -> None:
    raw = (
        b"GET / HTTP/1.1\r\nhOsT: a\r\nX-Dup: 1\r\nx-dup:2\r\n"
        b"X-Pad: \t spaced  out \t\r\nX-Empty:\r\n\r\n"
    )
    request = drain(server_with(raw))[0]
    assert request.headers.raw == [
        (b"hOsT", b"a"),
        (b"X-Dup", b"1"),
        (b"x-dup", b"2"),
        (b"X-Pad", b"spaced  out"),
        (b"X-Empty", b""),
    ]
    assert request.headers.get_all("x-dup") == [b"1", b"2"]


def test_obs_text_in_values_and_utf8_in_target_are_accepted() -> None:
    raw = "GET /caf\u00e9 HTTP/1.1\r\nHost: a\r\nX-Name: Jos\u00e9\r\n\r\n".encode()
    request = drain(server_with(raw))[0]
    assert request.target == "/caf\u00e9".encode()
    assert request.headers.get("x-name") == "Jos\u00e9".encode()


def test_request_target_forms() -> None:
    for target in (b"/a?b=c", b"http://h:8/x", b"h.example:443", b"*"):
        method = b"CONNECT" if target == b"h.example:443" else b"OPTIONS"
        raw = method + b" " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n"
        assert drain(server_with(raw))[0].target == target


def test_leading_empty_lines_before_request_are_ignored() -> None:
    conn = server_with(b"\r\n\r\n" + GET)
    assert drain(conn)[0].method == b"GET"


def test_pipelined_requests_wait_for_start_next_cycle() -> None:
    conn = server_with(GET + b"DELETE /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert drain(conn)[-1] is PAUSED
    assert conn.next_event() is PAUSED
    conn.send(Response(200, Headers([(b"Content-Length", b"0")])))
    conn.send(EndOfMessage())
    conn.start_next_cycle()
    assert drain(conn)[0].method == b"DELETE"


def test_http10_request_needs_no_host_and_closes() -> None:
    conn = server_with(b"GET / HTTP/1.0\r\n\r\n")
    assert drain(conn)[0].http_version == b"1.0"
    assert conn.keep_alive is False
    assert conn.their_state is MUST_CLOSE


def test_http10_keep_alive_keeps_the_connection() -> None:
    conn = server_with(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
    drain(conn)
    assert conn.keep_alive is True and conn.their_state is DONE


def test_connection_close_request() -> None:
    conn = server_with(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    drain(conn)
    assert conn.keep_alive is False
    conn.send(Response(200, Headers([(b"Content-Length", b"2")])))
    conn.send(Data(b"ok"))
    conn.send(EndOfMessage())
    assert conn.our_state is MUST_CLOSE
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()


def test_minor_version_above_one_is_accepted() -> None:
    assert drain(server_with(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"))[0].http_version == b"1.2"


def test_expect_100_continue() -> None:
    conn = server_with(
        b"PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n"
    )
    assert drain(conn)[-1] is NEED_DATA
    assert conn.they_expect_100_continue is True
    assert conn.send(Response(100, Headers())) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert conn.they_expect_100_continue is False
    conn.receive_data(b"abc")
    assert drain(conn) == [Data(b"abc"), EndOfMessage(), NEED_DATA]


def test_expect_is_ignored_on_http10() -> None:
    conn = server_with(b"PUT /f HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n")
    drain(conn)
    assert conn.they_expect_100_continue is False


def test_connect_request_switches_after_2xx() -> None:
    conn = server_with(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n\x16\x03\x01tls")
    events = drain(conn)
    assert events[0].method == b"CONNECT" and events[1:] == [EndOfMessage(), PAUSED]
    conn.send(Response(200, Headers(), b"Connection established"))
    assert conn.our_state is SWITCHED and conn.their_state is SWITCHED
    assert conn.trailing_data == (b"\x16\x03\x01tls", False)
    assert conn.next_event() is PAUSED


def test_connect_refused_stays_http() -> None:
    conn = server_with(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n")
    drain(conn)
    conn.send(Response(407, Headers([(b"Content-Length", b"0")])))
    conn.send(EndOfMessage())
    assert conn.our_state is DONE


def test_upgrade_request_switches_after_101() -> None:
    conn = server_with(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframe"
    )
    drain(conn)
    conn.send(Response(101, Headers([(b"Upgrade", b"websocket")])))
    assert conn.our_state is SWITCHED
    assert conn.trailing_data == (b"frame", False)


def test_server_cannot_send_101_without_upgrade_request() -> None:
    conn = server_with(GET)
    drain(conn)
    with pytest.raises(LocalProtocolError, match="upgrade"):
        conn.send(Response(101, Headers()))


def test_eof_between_requests_is_connection_closed() -> None:
    conn = server_with(GET)
    drain(conn)
    conn.send(Response(204, Headers()))
    conn.send(EndOfMessage())
    conn.start_next_cycle()
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    assert conn.their_state is CLOSED
    assert conn.next_event() == ConnectionClosed()


def test_eof_on_fresh_server_connection() -> None:
    conn = server_with(b"")
    assert conn.next_event() == ConnectionClosed()


def test_eof_in_the_middle_of_a_request_head() -> None:
    conn = server_with(b"GET / HTTP/1.1\r\nHo")
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="incomplete request head"):
        conn.next_event()
    assert conn.their_state is ERROR


def test_eof_in_the_middle_of_a_request_body() -> None:
    conn = server_with(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    conn.receive_data(b"")
    assert conn.next_event().method == b"POST"
    assert conn.next_event() == Data(b"abc")
    with pytest.raises(IncompleteRead) as info:
        conn.next_event()
    assert info.value.expected == 7


def test_data_after_eof_is_refused() -> None:
    conn = server_with(b"")
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"more")


def test_error_state_is_sticky() -> None:
    conn = server_with(b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()
    with pytest.raises(RemoteProtocolError, match="already broke"):
        conn.next_event()


# ---------------------------------------------------------------- request framing errors

_HOST = b"Host: a\r\n"

FRAMING_ERRORS = [
    # (id, raw request, exception, status_hint, message fragment)
    (
        "cl-and-te",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        RemoteProtocolError,
        400,
        "both Content-Length and Transfer-Encoding",
    ),
    (
        "te-and-cl",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        RemoteProtocolError,
        400,
        "ambiguous",
    ),
    (
        "differing-cl-fields",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\n",
        RemoteProtocolError,
        400,
        "conflicting Content-Length",
    ),
    (
        "differing-cl-list",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Content-Length: 3, 4\r\n\r\n",
        RemoteProtocolError,
        400,
        "conflicting Content-Length",
    ),
    (
        "negative-cl",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Content-Length: -1\r\n\r\n",
        RemoteProtocolError,
        400,
        "invalid Content-Length",
    ),
    (
        "plus-cl",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Content-Length: +5\r\n\r\n",
        RemoteProtocolError,
        400,
        "invalid Content-Length",
    ),
    (
        "hex-cl",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Content-Length: 0x5\r\n\r\n",
        RemoteProtocolError,
        400,
        "invalid Content-Length",
    ),
    (
        "space-in-cl",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Content-Length: 1 2\r\n\r\n",
        RemoteProtocolError,
        400,
        "invalid Content-Length",
    ),
    (
        "empty-cl",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Content-Length:\r\n\r\n",
        RemoteProtocolError,
        400,
        "invalid Content-Length",
    ),
    (
        "huge-cl",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Content-Length: 1234567890123456789012\r\n\r\n",
        RemoteProtocolError,
        413,  # beyond any limit
        "larger than any 64-bit length",
    ),
    (
        "te-not-ending-in-chunked",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Transfer-Encoding: chunked, gzip\r\n\r\n",
        RemoteProtocolError,
        400,
        "does not end in chunked",
    ),
    (
        "te-gzip-only",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Transfer-Encoding: gzip\r\n\r\n",
        RemoteProtocolError,
        400,
        "does not end in chunked",
    ),
    (
        "te-unknown-coding",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Transfer-Encoding: frobnicate, chunked\r\n\r\n",
        UnknownTransferEncoding,
        501,
        "unknown transfer-coding",
    ),
    (
        "te-known-but-unsupported",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
        UnknownTransferEncoding,
        501,
        "only chunked",
    ),
    (
        "te-chunked-twice",
        b"POST / HTTP/1.1\r\n"
        + _HOST
        + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        RemoteProtocolError,
        400,
        "more than once",
    ),
    (
        "te-empty",
        b"POST / HTTP/1.1\r\n" + _HOST + b"Transfer-Encoding:\r\n\r\n",
        RemoteProtocolError,
        400,
        "empty Transfer-Encoding",
    ),
    (
        "te-in-http10",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        RemoteProtocolError,
        400,
        "HTTP/1.0",
    ),
    (
        "obs-fold",
        b"GET / HTTP/1.1\r\n" + _HOST + b"X-Long: a\r\n  continued\r\n\r\n",
        RemoteProtocolError,
        400,
        "obs-fold",
    ),
    (
        "obs-fold-tab",
        b"GET / HTTP/1.1\r\n" + _HOST + b"X-Long: a\r\n\tcontinued\r\n\r\n",
        RemoteProtocolError,
        400,
        "obs-fold",
    ),
    (
        "space-before-colon",
        b"GET / HTTP/1.1\r\n" + _HOST + b"Transfer-Encoding : chunked\r\n\r\n",
        RemoteProtocolError,
        400,
        "whitespace between field name and colon",
    ),
    (
        "tab-before-colon",
        b"GET / HTTP/1.1\r\n" + _HOST + b"Content-Length\t: 5\r\n\r\n",
        RemoteProtocolError,
        400,
        "whitespace between field name and colon",
    ),
    (
        "bare-lf-in-header",
        b"GET / HTTP/1.1\r\n" + _HOST + b"X-A: 1\nX-B: 2\r\n\r\n",
        RemoteProtocolError,
        400,
        "bare LF",
    ),
    (
        "bare-lf-head",
        b"GET / HTTP/1.1\nHost: a\n\n",
        RemoteProtocolError,
        400,
        "bare LF",
    ),
    (
        "nul-in-value",
        b"GET / HTTP/1.1\r\n" + _HOST + b"X-A: a\x00b\r\n\r\n",
        RemoteProtocolError,
        400,
        "control character",
    ),
    (
        "control-in-value",
        b"GET / HTTP/1.1\r\n" + _HOST + b"X-A: a\x01b\r\n\r\n",
        RemoteProtocolError,
        400,
        "control character",
    ),
    (
        "cr-in-value",
        b"GET / HTTP/1.1\r\n" + _HOST + b"X-A: a\rb\r\n\r\n",
        RemoteProtocolError,
        400,
        "control character",
    ),
    (
        "del-in-value",
        b"GET / HTTP/1.1\r\n" + _HOST + b"X-A: a\x7fb\r\n\r\n",
        RemoteProtocolError,
        400,
        "control character",
    ),
    (
        "no-colon",
        b"GET / HTTP/1.1\r\n" + _HOST + b"just words\r\n\r\n",
        RemoteProtocolError,
        400,
        "missing colon",
    ),
    (
        "empty-name",
        b"GET / HTTP/1.1\r\n" + _HOST + b": value\r\n\r\n",
        RemoteProtocolError,
        400,
        "empty field name",
    ),
    (
        "bad-name-char",
        b"GET / HTTP/1.1\r\n" + _HOST + b"X(A): 1\r\n\r\n",
        RemoteProtocolError,
        400,
        "invalid character in field name",
    ),
    (
        "space-in-target",
        b"GET /a b HTTP/1.1\r\n" + _HOST + b"\r\n",
        RemoteProtocolError,
        400,
        "malformed request line",
    ),
    (
        "control-in-target",
        b"GET /a\x01b HTTP/1.1\r\n" + _HOST + b"\r\n",
        RemoteProtocolError,
        400,
        "request target",
    ),
    (
        "bad-method",
        b"G(T / HTTP/1.1\r\n" + _HOST + b"\r\n",
        RemoteProtocolError,
        400,
        "invalid method",
    ),
    (
        "double-space",
        b"GET  / HTTP/1.1\r\n" + _HOST + b"\r\n",
        RemoteProtocolError,
        400,
        "malformed request line",
    ),
    (
        "not-http",
        b"hello there\r\n\r\n",
        RemoteProtocolError,
        400,
        "malformed request line",
    ),
    (
        "lowercase-version",
        b"GET / http/1.1\r\n" + _HOST + b"\r\n",
        RemoteProtocolError,
        400,
        "malformed request line",
    ),
    (
        "http2-version",
        b"GET / HTTP/2.0\r\n" + _HOST + b"\r\n",
        UnknownProtocol,
        505,
        "HTTP/2.0",
    ),
    (
        "odd-version",
        b"GET / HTTP/1.1.1\r\n" + _HOST + b"\r\n",
        UnknownProtocol,
        505,
        "HTTP/1.1.1",
    ),
    (
        "no-host",
        b"GET / HTTP/1.1\r\n\r\n",
        RemoteProtocolError,
        400,
        "without a Host",
    ),
    (
        "two-hosts",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        RemoteProtocolError,
        400,
        "more than one Host",
    ),
]


@pytest.mark.parametrize(
    ("raw", "exc", "hint", "fragment"),
    [case[1:] for case in FRAMING_ERRORS],
    ids=[case[0] for case in FRAMING_ERRORS],
)
def test_request_framing_errors(raw: bytes, exc: type, hint: int, fragment: str) -> None:
    conn = server_with(raw)
    with pytest.raises(exc, match=None) as info:
        conn.next_event()
    assert isinstance(info.value, HTTPException)
    assert info.value.status_hint == hint
    assert fragment in str(info.value)
    assert conn.their_state is ERROR


def test_identical_content_lengths_are_collapsed() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok"
    assert drain(server_with(raw))[1:] == [Data(b"ok"), EndOfMessage(), NEED_DATA]


def test_error_messages_quote_what_was_found() -> None:
    conn = server_with(b"GET / HTTP/1.1\r\nHost: a\r\nX-Evil : 1\r\n\r\n")
    with pytest.raises(RemoteProtocolError, match=r"b'X-Evil : 1'"):
        conn.next_event()


def test_long_junk_is_quoted_truncated() -> None:
    conn = server_with(b"GET / HTTP/1.1\r\nHost: a\r\nX" + b"y" * 500 + b"\r\n\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert "..." in str(info.value) and len(str(info.value)) < 250


BAD_CHUNK_LINES = [b"-5", b"zz", b"0x5", b"1" * 17, b" 5", b"5 x", b"5;", b"5;a=", b"", b"+5"]


@pytest.mark.parametrize("line", BAD_CHUNK_LINES, ids=[repr(x) for x in BAD_CHUNK_LINES])
def test_bad_chunk_size_lines(line: bytes) -> None:
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + line + b"\r\n"
    conn = server_with(raw + b"hello\r\n0\r\n\r\n")
    with pytest.raises(RemoteProtocolError, match="invalid chunk size line") as info:
        drain(conn)
    assert info.value.status_hint == (413 if line == b"1" * 17 else 400)  # 413: past 64 bits


def test_sixteen_hex_digit_chunk_size_is_accepted() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000005\r\n"
    assert merge_data(drain(server_with(raw + b"hello\r\n0\r\n\r\n")))[1] == Data(b"hello")


def test_chunk_data_longer_than_declared() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"
    with pytest.raises(RemoteProtocolError, match="longer than its size line"):
        drain(server_with(raw))


def test_chunk_size_line_too_long() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;" + b"a" * 200
    with pytest.raises(LineTooLong, match="chunk size"):
        drain(server_with(raw, max_line=100))


def test_buffered_chunks_come_out_as_one_data_event() -> None:
    body = b"".join(b"3\r\n%03d\r\n" % i for i in range(50))
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    events = drain(server_with(raw + b"0\r\n\r\n"))
    assert events[1:] == [Data(b"".join(b"%03d" % i for i in range(50))), EndOfMessage(), NEED_DATA]


def test_valid_chunks_are_delivered_before_a_later_chunk_error() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    conn = server_with(raw + b"3\r\nabc\r\n2\r\nde\r\nzz\r\n")
    assert conn.next_event().method == b"POST"
    assert conn.next_event() == Data(b"abcde")
    with pytest.raises(RemoteProtocolError, match="invalid chunk size line"):
        conn.next_event()
    assert conn.their_state is ERROR


def test_buffer_compaction_keeps_pipelined_bodies_intact() -> None:
    bodies = [bytes([65 + i]) * 70_000 for i in range(3)]
    wire = b"".join(
        b"PUT /%d HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n%s" % (i, body)
        for i, body in enumerate(bodies)
    )
    conn = Connection(SERVER)
    conn.receive_data(wire[:30_000])
    conn.receive_data(wire[30_000:70_100])  # the next request's head starts in here
    seen: list[tuple[bytes, bytes]] = []
    current: list[bytes] = []
    fed = 70_100
    for _ in range(1000):
        event = conn.next_event()
        if type(event) is Request:
            target = event.target
        elif type(event) is Data:
            current.append(event.data)
        elif type(event) is EndOfMessage:
            seen.append((target, b"".join(current)))
            current = []
        elif event is PAUSED:  # more arrives while the next request waits its turn
            conn.receive_data(wire[fed : fed + 7000])
            fed += 7000
            conn.send(Response(204, Headers()))
            conn.send(EndOfMessage())
            conn.start_next_cycle()
        elif event is NEED_DATA:
            if fed >= len(wire):
                break
            conn.receive_data(wire[fed : fed + 7000])
            fed += 7000
    assert seen == [(b"/%d" % i, body) for i, body in enumerate(bodies)]


# ---------------------------------------------------------------- limits


def test_request_line_too_long_gives_414() -> None:
    conn = server_with(b"GET /" + b"a" * 300, max_line=256)
    with pytest.raises(LineTooLong) as info:
        conn.next_event()
    assert info.value.status_hint == 414
    assert str(info.value) == "got more than 256 bytes when reading request line"


def test_request_line_too_long_in_complete_head() -> None:
    conn = server_with(b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: a\r\n\r\n", max_line=256)
    with pytest.raises(LineTooLong) as info:
        conn.next_event()
    assert info.value.status_hint == 414


def test_header_line_too_long_gives_431() -> None:
    conn = server_with(GET[:-2] + b"X-Big: " + b"v" * 300 + b"\r\n\r\n", max_line=256)
    with pytest.raises(LineTooLong, match="header line") as info:
        conn.next_event()
    assert info.value.status_hint == 431


def test_too_many_headers_gives_431() -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(101))
    conn = server_with(b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n")
    with pytest.raises(RemoteProtocolError, match="got more than 100 headers") as info:
        conn.next_event()
    assert info.value.status_hint == 431


def test_exactly_max_headers_is_fine() -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(9))
    assert (
        len(
            drain(server_with(b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n", max_headers=10))[
                0
            ].headers
        )
        == 10
    )


def test_header_block_too_big_gives_431() -> None:
    fields = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 50) for i in range(20))
    conn = server_with(b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n", max_header_bytes=500)
    with pytest.raises(RemoteProtocolError, match="more than the limit of 500") as info:
        conn.next_event()
    assert info.value.status_hint == 431


def test_endless_head_is_cut_off_with_431() -> None:
    conn = Connection(SERVER, max_line=100, max_header_bytes=1000)
    conn.receive_data(b"GET / HTTP/1.1\r\n")
    with pytest.raises(RemoteProtocolError, match="larger than") as info:
        for _ in range(200):
            conn.receive_data(b"X-Header: value\r\n")
            assert conn.next_event() is NEED_DATA
    assert info.value.status_hint == 431


# ---------------------------------------------------------------- responses (client side)


def test_response_with_content_length() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert drain(conn) == [
        Response(200, Headers([(b"Content-Length", b"5")]), b"OK", b"1.1"),
        Data(b"hello"),
        EndOfMessage(),
        NEED_DATA,
    ]
    assert conn.our_state is DONE and conn.their_state is DONE and conn.keep_alive
    conn.start_next_cycle()
    assert conn.our_state is IDLE and conn.their_state is IDLE


def test_chunked_response_with_trailers() -> None:
    conn = client_after()
    conn.receive_data(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\nExpires: never\r\n\r\n"
    )
    events = merge_data(drain(conn))
    assert events[1:] == [
        Data(b"abcde"),
        EndOfMessage(Headers([(b"Expires", b"never")])),
        NEED_DATA,
    ]


def test_read_until_close_response() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome")
    assert drain(conn)[1:] == [Data(b"some"), NEED_DATA]
    assert conn.keep_alive is False
    conn.receive_data(b" more")
    conn.receive_data(b"")
    assert drain(conn) == [Data(b" more"), EndOfMessage(), ConnectionClosed()]
    assert conn.their_state is CLOSED


def test_response_without_reason_phrase() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n")
    response = drain(conn)[0]
    assert (response.status_code, response.reason) == (404, b"")


def test_reason_phrase_with_spaces_and_obs_text() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 200 Tr\xe8s  bien\r\nContent-Length: 0\r\n\r\n")
    assert drain(conn)[0].reason == b"Tr\xe8s  bien"


@pytest.mark.parametrize("code", [204, 304])
def test_no_body_statuses(code: int) -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % code)
    assert drain(conn)[1:] == [EndOfMessage(), NEED_DATA]
    assert conn.keep_alive


def test_head_response_has_no_body() -> None:
    conn = client_after(b"HEAD")
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    assert drain(conn)[1:] == [EndOfMessage(), NEED_DATA]


def test_head_response_with_chunked_header_has_no_body() -> None:
    conn = client_after(b"HEAD")
    conn.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert drain(conn)[1:] == [EndOfMessage(), NEED_DATA]


def test_304_may_carry_transfer_encoding() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert drain(conn)[1:] == [EndOfMessage(), NEED_DATA]


def test_informational_responses_come_before_the_final_one() -> None:
    conn = client_after()
    conn.receive_data(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    )
    events = drain(conn)
    assert [e.status_code for e in events[:3]] == [100, 103, 200]
    assert events[0].informational and events[1].informational and not events[2].informational
    assert events[3:] == [EndOfMessage(), NEED_DATA]


def test_client_sees_100_continue_while_sending_body() -> None:
    conn = Connection(CLIENT)
    conn.send(
        Request(
            b"PUT",
            b"/f",
            Headers([*HOST, (b"Content-Length", b"3"), (b"Expect", b"100-continue")]),
        )
    )
    conn.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert conn.next_event().status_code == 100
    assert conn.send(Data(b"abc")) == b"abc"
    conn.send(EndOfMessage())
    conn.receive_data(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    assert conn.next_event().status_code == 201


def test_101_switches_after_upgrade_request() -> None:
    conn = client_after(headers=[*HOST, (b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")])
    conn.receive_data(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00")
    events = drain(conn)
    assert events[0].status_code == 101 and events[1] is PAUSED
    assert conn.our_state is SWITCHED and conn.their_state is SWITCHED
    assert conn.trailing_data == (b"\x81\x00", False)


def test_101_without_upgrade_request_is_an_error() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    with pytest.raises(RemoteProtocolError, match="asked for no upgrade"):
        conn.next_event()


def test_connect_2xx_switches() -> None:
    conn = client_after(b"CONNECT")
    conn.receive_data(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03")
    assert drain(conn)[1] is PAUSED
    assert conn.their_state is SWITCHED
    assert conn.trailing_data == (b"\x16\x03\x03", False)


def test_connect_refused_response_has_a_body() -> None:
    conn = client_after(b"CONNECT")
    conn.receive_data(b"HTTP/1.1 407 Auth\r\nContent-Length: 4\r\n\r\nnope")
    assert drain(conn)[1:] == [Data(b"nope"), EndOfMessage(), NEED_DATA]


@pytest.mark.parametrize("code", [100, 103, 204])
def test_transfer_encoding_on_bodyless_status_is_an_error(code: int) -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 %d X\r\nTransfer-Encoding: chunked\r\n\r\n" % code)
    with pytest.raises(RemoteProtocolError, match=f"Transfer-Encoding in a {code} response"):
        conn.next_event()


def test_response_cl_and_te_is_an_error() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
    with pytest.raises(RemoteProtocolError, match="ambiguous"):
        conn.next_event()


def test_response_unknown_transfer_coding() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")
    with pytest.raises(UnknownTransferEncoding) as info:
        conn.next_event()
    assert info.value.status_hint == 501


@pytest.mark.parametrize(
    "line", [b"HTTP/1.1 OK", b"ICY 200 OK", b"HTTP/1.1 20 OK", b"HTTP/1.1  200 OK", b"hello"]
)
def test_bad_status_lines(line: bytes) -> None:
    conn = client_after()
    conn.receive_data(line + b"\r\n\r\n")
    with pytest.raises(BadStatusLine) as info:
        conn.next_event()
    assert info.value.line == line.decode()


@pytest.mark.parametrize("line", [b"HTTP/2.0 200 OK", b"HTTP/0.9 200 OK", b"HTTP/1 200 OK"])
def test_unknown_protocol_versions(line: bytes) -> None:
    conn = client_after()
    conn.receive_data(line + b"\r\n\r\n")
    with pytest.raises(UnknownProtocol) as info:
        conn.next_event()
    assert info.value.status_hint == 505


def test_status_line_too_long() -> None:
    conn = client_after(max_line=100)
    conn.receive_data(b"HTTP/1.1 200 " + b"O" * 200)
    with pytest.raises(LineTooLong, match="status line"):
        conn.next_event()


def test_bare_lf_response_is_accepted_and_normalised() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.0 200 OK\nContent-Length: 2\nX-Mixed: 1\r\n\nok")
    assert drain(conn) == [
        Response(200, Headers([(b"Content-Length", b"2"), (b"X-Mixed", b"1")]), b"OK", b"1.0"),
        Data(b"ok"),
        EndOfMessage(),
        NEED_DATA,
    ]


def test_bare_lf_chunked_response_with_trailers() -> None:
    conn = client_after()
    conn.receive_data(
        b"\nHTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n2;x=y\r\nde\n0\nT: 1\n\n"
    )
    events = merge_data(drain(conn))
    assert events[0].headers.raw == [(b"Transfer-Encoding", b"chunked")]
    assert events[1:] == [Data(b"abcde"), EndOfMessage(Headers([(b"T", b"1")])), NEED_DATA]


def test_crlf_body_after_bare_lf_head_is_not_mistaken_for_the_head_end() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 200 OK\nContent-Length: 6\n\n\r\n\r\nxx")
    assert drain(conn)[1:] == [Data(b"\r\n\r\nxx"), EndOfMessage(), NEED_DATA]


def test_server_closes_without_response() -> None:
    conn = client_after()
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()


def test_server_closes_mid_head() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Le")
    conn.receive_data(b"")
    with pytest.raises(RemoteDisconnected) as info:
        conn.next_event()
    assert isinstance(info.value, ConnectionResetError)


def test_server_closes_mid_content_length_body() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n1234")
    conn.receive_data(b"")
    assert conn.next_event() == Response(200, Headers([(b"Content-Length", b"10")]), b"OK")
    assert conn.next_event() == Data(b"1234")
    with pytest.raises(IncompleteRead) as info:
        conn.next_event()
    # The 4 bytes went out as Data: partial is empty, but the count says how far it got.
    assert repr(info.value) == "IncompleteRead(4 bytes read, 6 more expected)"
    assert (info.value.partial, info.value.received, info.value.expected) == (b"", 4, 6)


def test_server_closes_mid_chunk() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\nabc")
    conn.receive_data(b"")
    with pytest.raises(IncompleteRead) as info:
        drain(conn)
    assert info.value.expected == 7
    assert repr(info.value) == "IncompleteRead(3 bytes read, 7 more expected)"


def test_server_closes_before_last_chunk() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    conn.receive_data(b"")
    with pytest.raises(IncompleteRead) as info:
        drain(conn)
    assert repr(info.value) == "IncompleteRead(3 bytes read)"  # no chunk size line yet


def test_response_before_request_is_an_error() -> None:
    conn = Connection(CLIENT)
    conn.receive_data(b"HTTP/1.1 200 OK\r\n\r\n")
    with pytest.raises(RemoteProtocolError, match="before any request"):
        conn.next_event()


def test_http10_response_closes_unless_keep_alive() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    drain(conn)
    assert conn.keep_alive is False and conn.our_state is MUST_CLOSE
    conn = client_after()
    conn.receive_data(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
    drain(conn)
    assert conn.keep_alive is True


def test_connection_close_response() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\nextra")
    assert conn.next_event().status_code == 200
    assert conn.next_event() == EndOfMessage()
    assert conn.their_state is MUST_CLOSE
    with pytest.raises(RemoteProtocolError, match="closing"):
        conn.next_event()  # nothing may follow: a caller waiting for EOF must not spin
    assert conn.trailing_data == (b"extra", False)


def test_response_trailer_block_limits() -> None:
    conn = client_after(max_headers=3)
    trailers = b"".join(b"T-%d: v\r\n" % i for i in range(5))
    conn.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + trailers)
    conn.receive_data(b"\r\n")
    with pytest.raises(RemoteProtocolError, match="trailers"):
        drain(conn)


# ---------------------------------------------------------------- sending


def test_send_request_head_bytes() -> None:
    conn = Connection(CLIENT)
    head = conn.send(Request(b"POST", b"/p?q=1", Headers([("Host", "h"), ("Content-Length", "3")])))
    assert head == b"POST /p?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n"
    assert conn.send(Data(b"abc")) == b"abc"
    assert conn.send(EndOfMessage()) == b""
    assert conn.our_state is DONE


def test_send_chunked_body_and_trailers() -> None:
    conn = Connection(CLIENT)
    conn.send(Request(b"POST", b"/", Headers([*HOST, (b"Transfer-Encoding", b"chunked")])))
    assert conn.send(Data(b"hello")) == b"5\r\nhello\r\n"
    assert conn.send(Data(b"")) == b""
    assert conn.send(Data(b"x" * 300)) == b"12c\r\n" + b"x" * 300 + b"\r\n"
    assert conn.send(EndOfMessage(Headers([(b"X-Sum", b"1")]))) == b"0\r\nX-Sum: 1\r\n\r\n"


def test_send_chunked_end_without_trailers() -> None:
    conn = Connection(CLIENT)
    conn.send(Request(b"POST", b"/", Headers([*HOST, (b"Transfer-Encoding", b"chunked")])))
    assert conn.send(EndOfMessage()) == b"0\r\n\r\n"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"X-A", b"a\r\nInjected: 1"),
        (b"X-A", b"a\nb"),
        (b"X-A", b"a\rb"),
        (b"X-A", b"a\x00b"),
        (b"X-A", b"a\x1bb"),
        (b"X A", b"v"),
        (b"X-A:", b"v"),
        (b"X-A: b", b"v"),
        (b"", b"v"),
        (b"X\r\nY", b"v"),
    ],
)
def test_send_refuses_bad_header_fields(name: bytes, value: bytes) -> None:
    conn = Connection(CLIENT)
    with pytest.raises(LocalProtocolError) as info:
        conn.send(Request(b"GET", b"/", Headers([*HOST, (name, value)])))
    assert isinstance(info.value, ValueError)
    assert conn.our_state is IDLE  # nothing was sent; the connection is still usable


def test_send_refuses_text_where_bytes_belong() -> None:
    with pytest.raises(LocalProtocolError, match="must be bytes"):
        Connection(CLIENT).send(Request("GET", "/", Headers(HOST)))  # type: ignore[arg-type]
    conn = server_with(GET)
    drain(conn)
    with pytest.raises(LocalProtocolError, match="must be bytes"):
        conn.send(Response(200, Headers(), "OK"))  # type: ignore[arg-type]


def test_send_refuses_header_fields_that_are_not_byte_pairs() -> None:
    headers = Headers(HOST)
    headers.raw.append(("X-Text", "str"))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="X-Text"):
        Connection(CLIENT).send(Request(b"GET", b"/", headers))


@pytest.mark.parametrize(
    "target", [b"/a b", b"/a\r\nHost: evil", b"/\x00", b"/a\tb", b"", b"/\x7f"]
)
def test_send_refuses_bad_targets(target: bytes) -> None:
    with pytest.raises(LocalProtocolError, match="invalid request target"):
        Connection(CLIENT).send(Request(b"GET", target, Headers(HOST)))


@pytest.mark.parametrize("method", [b"G ET", b"GET\r\n", b"", b"G(T"])
def test_send_refuses_bad_methods(method: bytes) -> None:
    with pytest.raises(LocalProtocolError, match="invalid method"):
        Connection(CLIENT).send(Request(method, b"/", Headers(HOST)))


def test_send_refuses_bad_version_and_reason() -> None:
    with pytest.raises(LocalProtocolError, match="HTTP version"):
        Connection(CLIENT).send(Request(b"GET", b"/", Headers(HOST), b"2.0"))
    conn = server_with(GET)
    drain(conn)
    with pytest.raises(LocalProtocolError, match="reason phrase"):
        conn.send(Response(200, Headers(), b"OK\r\nSet-Cookie: x"))
    with pytest.raises(LocalProtocolError, match="status code"):
        conn.send(Response(42, Headers()))


def test_send_body_length_is_enforced() -> None:
    conn = Connection(CLIENT)
    conn.send(Request(b"PUT", b"/", Headers([*HOST, (b"Content-Length", b"4")])))
    conn.send(Data(b"ab"))
    with pytest.raises(LocalProtocolError, match="only 2 left"):
        conn.send(Data(b"cde"))
    with pytest.raises(LocalProtocolError, match="2 bytes short"):
        conn.send(EndOfMessage())
    conn.send(Data(b"cd"))
    conn.send(EndOfMessage())


def test_send_body_without_framing_is_refused() -> None:
    conn = Connection(CLIENT)
    conn.send(Request(b"POST", b"/", Headers(HOST)))
    with pytest.raises(LocalProtocolError, match="no body"):
        conn.send(Data(b"x"))


def test_send_trailers_need_chunked() -> None:
    conn = Connection(CLIENT)
    conn.send(Request(b"PUT", b"/", Headers([*HOST, (b"Content-Length", b"0")])))
    with pytest.raises(LocalProtocolError, match="chunked"):
        conn.send(EndOfMessage(Headers([(b"X", b"1")])))


def test_send_conflicting_framing_is_refused() -> None:
    headers = [*HOST, (b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")]
    with pytest.raises(LocalProtocolError, match="both"):
        Connection(CLIENT).send(Request(b"POST", b"/", Headers(headers)))
    headers = [*HOST, (b"Transfer-Encoding", b"gzip")]
    with pytest.raises(LocalProtocolError, match="must end in chunked"):
        Connection(CLIENT).send(Request(b"POST", b"/", Headers(headers)))
    headers = [*HOST, (b"Transfer-Encoding", b"chunked, chunked")]
    with pytest.raises(LocalProtocolError, match="applied once"):
        Connection(CLIENT).send(Request(b"POST", b"/", Headers(headers)))
    headers = [*HOST, (b"Content-Length", b"3"), (b"Content-Length", b"4")]
    with pytest.raises(LocalProtocolError, match="Content-Length"):
        Connection(CLIENT).send(Request(b"POST", b"/", Headers(headers)))


def test_send_in_wrong_state() -> None:
    conn = Connection(CLIENT)
    with pytest.raises(LocalProtocolError, match="Data"):
        conn.send(Data(b"x"))
    with pytest.raises(LocalProtocolError, match="Response"):
        conn.send(Response(200, Headers()))
    conn.send(Request(b"GET", b"/", Headers(HOST)))
    with pytest.raises(LocalProtocolError, match="Request"):
        conn.send(Request(b"GET", b"/", Headers(HOST)))
    with pytest.raises(LocalProtocolError):
        conn.start_next_cycle()
    with pytest.raises(LocalProtocolError, match="not an HTTP event"):
        conn.send("GET / HTTP/1.1")  # type: ignore[arg-type]


def test_server_cannot_respond_before_a_request() -> None:
    conn = Connection(SERVER)
    with pytest.raises(LocalProtocolError):
        conn.send(Response(200, Headers()))
    with pytest.raises(LocalProtocolError, match="server connection cannot send a Request"):
        conn.send(Request(b"GET", b"/", Headers(HOST)))


def test_server_head_and_204_responses_have_no_body() -> None:
    conn = server_with(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    drain(conn)
    conn.send(Response(200, Headers([(b"Content-Length", b"100")])))
    with pytest.raises(LocalProtocolError, match="no body"):
        conn.send(Data(b"x"))
    conn.send(EndOfMessage())
    assert conn.our_state is DONE


def test_server_response_without_framing_is_close_delimited() -> None:
    conn = server_with(GET)
    drain(conn)
    assert conn.send(Response(200, Headers([(b"Content-Type", b"text/plain")]))).startswith(
        b"HTTP/1.1 200 OK\r\n"
    )
    assert conn.keep_alive is False
    assert conn.send(Data(b"anything")) == b"anything"
    conn.send(EndOfMessage())
    assert conn.our_state is MUST_CLOSE


def test_server_fills_in_missing_reason_phrase() -> None:
    conn = server_with(GET)
    drain(conn)
    head = conn.send(Response(413, Headers([(b"Content-Length", b"0")])))
    assert head.startswith(b"HTTP/1.1 413 Content Too Large\r\n")


def test_send_connection_closed() -> None:
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    drain(conn)
    assert conn.send(ConnectionClosed()) == b""
    assert conn.our_state is CLOSED


def test_client_connection_close_request_means_no_keep_alive() -> None:
    conn = client_after(headers=[*HOST, (b"Connection", b"close")])
    assert conn.keep_alive is False and conn.our_state is MUST_CLOSE


def test_client_to_server_round_trip_keeps_headers_exactly() -> None:
    headers = Headers(
        [
            (b"Host", b"h"),
            (b"x-lower", b"v"),
            (b"X-UPPER", b"V"),
            (b"X-Dup", b"1"),
            (b"X-Dup", b"2"),
        ]
    )
    client = Connection(CLIENT)
    wire = client.send(Request(b"PATCH", b"/r", headers))
    server = server_with(wire)
    assert server.next_event() == Request(b"PATCH", b"/r", headers)


def test_role_must_be_client_or_server() -> None:
    with pytest.raises(ValueError, match="role"):
        Connection("client")  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", ["max_line", "max_headers", "max_header_bytes"])
def test_limits_must_be_positive(limit: str) -> None:
    with pytest.raises(ValueError, match=limit):
        Connection(SERVER, **{limit: 0})


def test_keep_alive_cycle_many_times() -> None:
    client, server = Connection(CLIENT), Connection(SERVER)
    for i in range(5):
        server.receive_data(client.send(Request(b"GET", b"/%d" % i, Headers(HOST))))
        client.send(EndOfMessage())
        assert server.next_event().target == b"/%d" % i
        assert server.next_event() == EndOfMessage()
        body = b"r%d" % i
        wire = server.send(Response(200, Headers([(b"Content-Length", b"%d" % len(body))])))
        wire += server.send(Data(body)) + server.send(EndOfMessage())
        client.receive_data(wire)
        assert merge_data(drain(client))[1:] == [Data(body), EndOfMessage(), NEED_DATA]
        client.start_next_cycle()
        server.start_next_cycle()


def test_states_are_named() -> None:
    assert [repr(s) for s in (IDLE, SEND_BODY, DONE, MUST_CLOSE, CLOSED, SWITCHED, ERROR)] == [
        "IDLE",
        "SEND_BODY",
        "DONE",
        "MUST_CLOSE",
        "CLOSED",
        "SWITCHED",
        "ERROR",
    ]
    assert repr(CLIENT) == "CLIENT" and repr(SERVER) == "SERVER"


def test_http10_connect_from_python_tunnels_switches() -> None:
    conn = server_with(b"CONNECT example.com:443 HTTP/1.0\r\n\r\n\x16\x03")
    assert drain(conn)[1:] == [EndOfMessage(), PAUSED]
    conn.send(Response(200, Headers(), b"Connection established", b"1.0"))
    assert conn.our_state is SWITCHED and conn.trailing_data == (b"\x16\x03", False)


def test_body_bytes_pass_through_without_copies() -> None:
    conn = Connection(CLIENT)
    conn.send(Request(b"GET", b"/", Headers(HOST)))
    conn.send(EndOfMessage())
    conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n")
    assert conn.next_event().status_code == 200
    chunk = bytes(range(256)) * 400
    conn.receive_data(chunk)
    assert conn.next_event().data is chunk  # the received object itself, not a copy


def test_reusable_input_buffers_are_not_aliased() -> None:
    conn = Connection(SERVER)
    scratch = bytearray(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
    conn.receive_data(scratch)
    scratch[:] = b"X" * len(scratch)
    conn.receive_data(memoryview(b"cd"))
    events = merge_data(drain(conn))
    assert events[0].headers.get("host") == b"a"
    assert events[1:] == [Data(b"abcd"), EndOfMessage(), NEED_DATA]


def test_header_value_redos_input_is_refused() -> None:
    value = b"a " * 20000 + b"\x01"
    conn = server_with(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + value + b"\r\n\r\n")
    with pytest.raises(RemoteProtocolError, match="control character"):
        conn.next_event()


@pytest.mark.parametrize(
    ("raw", "exc", "fragment"),
    [
        (b"GET /\r\n", RemoteProtocolError, "malformed request line"),
        (b"GET / HTTP/2.0\r\nHost: a\r\n", UnknownProtocol, "HTTP/2.0"),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00", RemoteProtocolError, "malformed request line"),
        (bytes(range(256)), RemoteProtocolError, "malformed request line"),
        (b"GET / HTTP/1.1\nHost: a", RemoteProtocolError, "bare LF"),
        (b"GET / HTTP/1.1\rHost: a\r", RemoteProtocolError, "CR not followed by LF"),
        (b"GET / HTTP/1.1\r\nHost: a\rX: b", RemoteProtocolError, "CR not followed by LF"),
    ],
    ids=[
        "http09",
        "http2",
        "tls-handshake",
        "binary",
        "bare-lf-first-line",
        "bare-cr-first-line",
        "bare-cr-header-line",
    ],
)
def test_bad_request_start_is_refused_before_the_head_ends(
    raw: bytes, exc: type, fragment: str
) -> None:
    conn = server_with(raw)
    with pytest.raises(exc) as info:
        conn.next_event()
    assert fragment in str(info.value) or fragment in repr(info.value.args)


def test_good_request_line_waits_for_the_rest_of_the_head() -> None:
    conn = Connection(SERVER)
    for piece in [b"\r", b"\n", b"G", b"ET /x HTTP/1.1\r", b"\nHost: a\r\n"]:
        conn.receive_data(piece)
        assert conn.next_event() is NEED_DATA
    conn.receive_data(b"\r\n")
    assert conn.next_event().target == b"/x"


def test_bad_status_line_is_refused_before_the_head_ends() -> None:
    conn = client_after()
    conn.receive_data(b"\x15\x03\x03\x00\x02\x02\x28")  # a TLS alert from a TLS-only server
    with pytest.raises(BadStatusLine):
        conn.next_event()
    conn = client_after()
    conn.receive_data(b"HTTP/1.1 2xx OK\r\nServer: x\r\n")
    with pytest.raises(BadStatusLine):
        conn.next_event()
    conn = client_after()
    conn.receive_data(b"HTT")
    assert conn.next_event() is NEED_DATA


def test_chunk_size_line_with_bare_lf_is_refused_at_once() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n"
    with pytest.raises(RemoteProtocolError, match="bare LF"):
        drain(server_with(raw))


# ---------------------------------------------------------------- real sockets


def _client_exchange(
    sock: socket.socket, conn: Connection, method: bytes, target: bytes, body: bytes = b""
) -> tuple[Response, bytes]:
    """Send one request through ``conn`` over ``sock`` and read the whole response."""
    headers = [(b"Host", b"127.0.0.1"), (b"Content-Length", b"%d" % len(body))]
    sock.sendall(conn.send(Request(method, target, Headers(headers))))
    sock.sendall(conn.send(Data(body)) + conn.send(EndOfMessage()))
    response, chunks = None, []
    for _ in range(10_000):
        event = conn.next_event()
        if event is NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif type(event) is Response and not event.informational:
            response = event
        elif type(event) is Data:
            chunks.append(event.data)
        elif type(event) is EndOfMessage:
            assert response is not None
            return response, b"".join(chunks)
    raise AssertionError("response never completed")


def test_client_against_stdlib_server_keep_alive(echo_server) -> None:
    with socket.create_connection(("127.0.0.1", echo_server.port), timeout=5) as sock:
        conn = Connection(CLIENT)
        response, body = _client_exchange(sock, conn, b"POST", b"/echo", b"payload")
        assert response.status_code == 200 and response.reason == b"OK"
        echoed = json.loads(body)
        assert (echoed["method"], echoed["path"], echoed["body"]) == ("POST", "/echo", "payload")
        conn.start_next_cycle()
        response, body = _client_exchange(sock, conn, b"GET", b"/chunked/2500")
        assert response.headers.get("transfer-encoding") == b"chunked"
        assert body == b"z" * 2500
        conn.start_next_cycle()
        response, body = _client_exchange(sock, conn, b"HEAD", b"/bytes/100")
        assert response.headers.get("content-length") == b"100" and body == b""
        conn.start_next_cycle()
        response, body = _client_exchange(sock, conn, b"GET", b"/status/404")
        assert (response.status_code, body) == (404, b"status 404\n")
        conn.start_next_cycle()
        response, body = _client_exchange(sock, conn, b"GET", b"/status/204")
        assert (response.status_code, body) == (204, b"")
        assert conn.keep_alive


def test_client_against_stdlib_server_read_until_close(echo_server) -> None:
    with socket.create_connection(("127.0.0.1", echo_server.port), timeout=5) as sock:
        conn = Connection(CLIENT)
        response, body = _client_exchange(sock, conn, b"GET", b"/close/5000")
        assert response.headers.get("connection") == b"close" and body == b"y" * 5000
        assert conn.keep_alive is False and conn.their_state is MUST_CLOSE
        assert conn.next_event() == ConnectionClosed()
        assert conn.their_state is CLOSED


def _serve_one(results: list[object]) -> tuple[socket.socket, threading.Thread]:
    """A one-shot HTTP server whose parsing is all Connection(SERVER)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def run() -> None:
        sock, _ = listener.accept()
        with sock:
            sock.settimeout(10)
            conn = Connection(SERVER)
            body = []
            for _ in range(10_000):
                event = conn.next_event()
                if event is NEED_DATA:
                    if conn.they_expect_100_continue:
                        sock.sendall(conn.send(Response(100, Headers())))
                    conn.receive_data(sock.recv(65536))
                elif type(event) is Request:
                    results.append(event)
                elif type(event) is Data:
                    body.append(event.data)
                elif type(event) is EndOfMessage:
                    results.append(b"".join(body))
                    results.append(event.trailers)
                    break
            reply = [(b"Content-Length", b"2"), (b"Connection", b"close")]
            sock.sendall(conn.send(Response(200, Headers(reply))) + conn.send(Data(b"ok")))
            sock.sendall(conn.send(EndOfMessage()))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener, thread


def _run_client(client: Callable[[str], bytes]) -> tuple[Request, bytes, Headers, bytes]:
    results: list[object] = []
    listener, thread = _serve_one(results)
    try:
        reply = client(f"http://127.0.0.1:{listener.getsockname()[1]}/up?x=1")
        thread.join(10)
    finally:
        listener.close()
    request, body, trailers = results
    return request, body, trailers, reply  # type: ignore[return-value]


def test_server_parses_urllib() -> None:
    def client(url: str) -> bytes:
        with urllib.request.urlopen(url, data=b"form=1&b=2", timeout=5) as response:
            return response.read()

    request, body, _, reply = _run_client(client)
    assert (request.method, request.target, body, reply) == (
        b"POST",
        b"/up?x=1",
        b"form=1&b=2",
        b"ok",
    )
    assert request.headers.get("content-type") == b"application/x-www-form-urlencoded"


def test_server_parses_requests_chunked_upload() -> None:
    def client(url: str) -> bytes:
        return requests.put(url, data=iter([b"part one, ", b"part two"]), timeout=5).content

    request, body, _, reply = _run_client(client)
    assert request.headers.get("transfer-encoding") == b"chunked"
    assert (request.method, body, reply) == (b"PUT", b"part one, part two", b"ok")


def test_server_parses_httpx() -> None:
    def client(url: str) -> bytes:
        return httpx.post(url, content=b"\x00\xffbinary", headers={"X-Test": "yes"}).content

    request, body, _, reply = _run_client(client)
    assert (body, reply, request.headers.get("x-test")) == (b"\x00\xffbinary", b"ok", b"yes")


@needs_curl
def test_server_parses_curl_with_expect_100_continue() -> None:
    def client(url: str) -> bytes:
        cmd = ["curl", "-sS", "--max-time", "5", "-X", "PUT", "--data-binary", "@-"]
        cmd += ["-H", "Expect: 100-continue", url]
        return subprocess.run(cmd, input=b"from curl", capture_output=True, check=True).stdout

    request, body, _, reply = _run_client(client)
    assert request.headers.get("expect") == b"100-continue"
    assert (body, reply) == (b"from curl", b"ok")
