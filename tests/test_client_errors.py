"""protocol.HTTPConnection against misbehaving raw-socket servers: clear exceptions, no hangs."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

import protocol
from protocol import HTTPConnection
from tests.client_fixtures import (
    RecordingServer,
    UnansweredListener,
    ok_response,
    recv_until,
)
from tests.servers import reset


def answering(raw: bytes, *, then=None):
    """A handler that reads one request head, writes ``raw``, then calls ``then(sock)``."""

    def handler(sock):
        recv_until(sock, b"\r\n\r\n")
        if raw:
            sock.sendall(raw)
        if then is not None:
            then(sock)

    return handler


def fetch(module, port: int, url: str = "/", *, timeout: float = 5):
    conn = module.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", url)
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def outcome(module, port: int):
    """``("ok", status, body)`` or the exception's class name."""
    try:
        response, body = fetch(module, port)
        return ("ok", response.status, body)
    except Exception as exc:
        return type(exc).__name__


# -- the status line ------------------------------------------------------------


def test_garbage_status_line_is_bad_status_line(raw_server):
    server = raw_server(answering(b"garbage\r\n\r\n"))
    with pytest.raises(protocol.BadStatusLine) as info:
        fetch(protocol, server.port)
    assert "garbage" in str(info.value)


def test_close_before_status_line_is_remote_disconnected(raw_server):
    server = raw_server(answering(b""))
    with pytest.raises(protocol.RemoteDisconnected) as info:
        fetch(protocol, server.port)
    assert isinstance(info.value, ConnectionResetError)
    assert isinstance(info.value, protocol.BadStatusLine)
    assert "closed connection without response" in str(info.value)


def test_close_in_the_middle_of_the_head_is_remote_disconnected(raw_server):
    server = raw_server(answering(b"HTTP/1.1 200 OK\r\nX-Half: 1\r\n"))
    with pytest.raises(protocol.RemoteDisconnected, match="incomplete response head"):
        fetch(protocol, server.port)


def test_unknown_http_version_is_unknown_protocol(raw_server):
    server = raw_server(answering(b"HTTP/2.0 200 OK\r\n\r\n"))
    with pytest.raises(protocol.UnknownProtocol):
        fetch(protocol, server.port)


@pytest.mark.parametrize("line", [b"HTTP/1.1 2000 OK", b"HTTP/1.1 abc OK", b"ICY 200 OK"])
def test_malformed_status_lines(raw_server, line):
    server = raw_server(answering(line + b"\r\n\r\n"))
    with pytest.raises(protocol.BadStatusLine):
        fetch(protocol, server.port)


def test_overlong_status_line_is_line_too_long(raw_server):
    server = raw_server(answering(b"HTTP/1.1 200 " + b"O" * 70000 + b"\r\n\r\n"))
    with pytest.raises(protocol.LineTooLong, match="status line"):
        fetch(protocol, server.port)


def test_overlong_header_block_is_refused(raw_server):
    server = raw_server(answering(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n"))
    with pytest.raises(protocol.HTTPException, match=r"more than the limit|header line"):
        fetch(protocol, server.port)


def test_too_many_headers(raw_server):
    server = raw_server(answering(b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 101 + b"\r\n"))
    with pytest.raises(protocol.HTTPException, match="more than 100 headers"):
        fetch(protocol, server.port)


def test_content_length_with_transfer_encoding_is_refused(raw_server):
    server = raw_server(
        answering(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
    )
    with pytest.raises(protocol.RemoteProtocolError, match="Content-Length and Transfer-Encoding"):
        fetch(protocol, server.port)


def test_unsupported_transfer_coding(raw_server):
    server = raw_server(answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"))
    with pytest.raises(protocol.UnknownTransferEncoding):
        fetch(protocol, server.port)


# -- the body -------------------------------------------------------------------


def test_truncated_content_length_body_is_incomplete_read(raw_server):
    server = raw_server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"))
    with pytest.raises(protocol.IncompleteRead) as info:
        fetch(protocol, server.port)
    assert info.value.partial == b"abc"
    assert info.value.expected == 7
    assert repr(info.value) == "IncompleteRead(3 bytes read, 7 more expected)"


def test_truncated_body_with_read_amount_keeps_the_partial_data(raw_server):
    server = raw_server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcdef"))
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.read(2) == b"ab"
    with pytest.raises(protocol.IncompleteRead) as info:
        r.read(8)
    assert (info.value.partial, info.value.expected) == (b"cdef", 4)
    assert r.isclosed()
    conn.close()


def test_truncated_chunked_body_is_incomplete_read(raw_server):
    server = raw_server(
        answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\nab")
    )
    with pytest.raises(protocol.IncompleteRead) as info:
        fetch(protocol, server.port)
    assert info.value.partial == b"abcab"


def test_bad_chunk_size_is_incomplete_read_and_remote_protocol_error(raw_server):
    """http.client's IncompleteRead (its text, the data so far), and the core's error too."""
    server = raw_server(
        answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
    )
    with pytest.raises(protocol.IncompleteRead) as info:
        fetch(protocol, server.port)
    assert isinstance(info.value, protocol.RemoteProtocolError)
    assert info.value.partial == b"abc"
    assert str(info.value) == repr(info.value) == "IncompleteRead(3 bytes read)"
    assert "invalid chunk size line b'zz'" in str(info.value.__cause__)


def test_chunk_longer_than_its_size_line_is_refused(raw_server):
    server = raw_server(
        answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n")
    )
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    with pytest.raises(protocol.RemoteProtocolError) as info:
        r.read()
    assert isinstance(info.value, protocol.IncompleteRead)
    assert info.value.partial == b"ab"
    assert "longer than its size line" in str(info.value.__cause__)
    conn.close()


def test_data_before_a_protocol_error_is_returned_first(raw_server):
    server = raw_server(
        answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
    )
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.read1() == b"abc"
    with pytest.raises(protocol.RemoteProtocolError):
        r.read1()
    conn.close()


def test_reset_mid_body_is_a_connection_error(raw_server):
    def then(sock):
        reset(sock)

    server = raw_server(
        answering(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000, then=then)
    )
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    with pytest.raises((ConnectionResetError, protocol.IncompleteRead)):
        r.read()
    conn.close()


# -- timeouts and refusals ------------------------------------------------------


def wait_for_close(sock):
    sock.settimeout(5)
    try:
        sock.recv(1)
    except OSError:
        pass


def test_silent_server_times_out_waiting_for_status_line(raw_server):
    server = raw_server(answering(b"", then=wait_for_close))
    conn = HTTPConnection("127.0.0.1", server.port, timeout=0.3)
    conn.request("GET", "/")
    with pytest.raises(TimeoutError):
        conn.getresponse()
    conn.close()


def test_stalled_body_times_out(raw_server):
    server = raw_server(
        answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", then=wait_for_close)
    )
    conn = HTTPConnection("127.0.0.1", server.port, timeout=0.3)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.read(2) == b"ab"
    with pytest.raises(TimeoutError):
        r.read()
    conn.close()


def test_connect_timeout():
    listener = UnansweredListener()
    try:
        conn = HTTPConnection("127.0.0.1", listener.port, timeout=0.3)
        with pytest.raises(TimeoutError):
            conn.request("GET", "/")
        assert conn.sock is None
    finally:
        listener.close()


def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connect is refused
        conn = HTTPConnection("127.0.0.1", port, timeout=5)
        with pytest.raises(ConnectionRefusedError):
            conn.request("GET", "/")


# -- recovery -------------------------------------------------------------------


def test_after_a_bad_response_the_next_request_uses_a_new_connection(raw_server):
    answers = iter([b"garbage\r\n\r\n", ok_response(b"fine")])
    server = RecordingServer(raw_server, respond=lambda req: next(answers))
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/1")
    with pytest.raises(protocol.BadStatusLine):
        conn.getresponse()
    conn.request("GET", "/2")
    assert conn.getresponse().read() == b"fine"
    assert server.connections == 2
    conn.close()


def test_server_closing_idle_keep_alive_connection(raw_server):
    def handler(sock):
        recv_until(sock, b"\r\n\r\n")
        sock.sendall(ok_response())
        # then closes without "Connection: close"

    server = raw_server(handler)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"ok"
    threading.Event().wait(0.1)
    conn.request("GET", "/")  # http.client would say the same: no answer on the old socket
    with pytest.raises((protocol.RemoteDisconnected, ConnectionError)):
        conn.getresponse()
    conn.request("GET", "/")  # and the next attempt reconnects by itself
    assert conn.getresponse().read() == b"ok"
    conn.close()


# -- the same misbehaviour through http.client and protocol ----------------------


COMPARED = {
    "garbage": b"garbage\r\n\r\n",
    "nothing": b"",
    "http2": b"HTTP/2.0 200 OK\r\n\r\n",
    "bad code": b"HTTP/1.1 2000 OK\r\n\r\n",
    "truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    "long status": b"HTTP/1.1 200 " + b"O" * 70000 + b"\r\n\r\n",
    "fine": ok_response(b"body"),
    "interim": b"HTTP/1.1 100 Continue\r\n\r\n" + ok_response(b"after"),
    "until close": b"HTTP/1.0 200 OK\r\n\r\nto the end",
}


@pytest.mark.parametrize("name", list(COMPARED))
def test_http_client_and_protocol_agree(raw_server, name):
    server = raw_server(answering(COMPARED[name]))
    assert outcome(protocol, server.port) == outcome(http.client, server.port)


STRICTER = {
    # http.client reads these "successfully"; the core refuses them, as a proxy must.
    "partial head": (b"HTTP/1.1 200 OK\r\nX: 1\r\n", "RemoteDisconnected"),
    "CL and TE": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "RemoteProtocolError",
    ),
    "bad chunk": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "InvalidChunk",  # an IncompleteRead (as http.client) that is a RemoteProtocolError
    ),
}


@pytest.mark.parametrize("name", list(STRICTER))
def test_protocol_is_stricter_than_http_client_where_it_matters(raw_server, name):
    raw, expected = STRICTER[name]
    server = raw_server(answering(raw))
    assert outcome(protocol, server.port) == expected
    assert issubclass(getattr(protocol, expected), protocol.HTTPException)
