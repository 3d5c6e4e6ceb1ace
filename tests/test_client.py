"""protocol.HTTPConnection / HTTPResponse: the http.client API over real loopback sockets."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import tracemalloc
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protocol
from protocol import HTTPConnection, HTTPResponse
from tests.client_fixtures import (
    BIG,
    RecordingServer,
    connect_forwarder,
    ok_response,
    read_raw_request,
    recv_until,
    serve_big_body,
)
from tests.conftest import needs_ipv6
from tests.servers import EchoServer


def echo(conn: HTTPConnection, method: str = "GET", url: str = "/echo", **kw) -> dict:
    conn.request(method, url, **kw)
    response = conn.getresponse()
    assert response.status == 200
    return json.loads(response.read())


# -- basic exchanges ------------------------------------------------------------


def test_get_reads_status_headers_and_body(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    conn.request("GET", "/bytes/10")
    r = conn.getresponse()
    assert (r.status, r.reason, r.version, r.code, r.getcode()) == (200, "OK", 11, 200, 200)
    assert r.getheader("Content-Length") == "10"
    assert r.getheader("content-type") == "application/octet-stream"
    assert r.read() == b"x" * 10
    assert r.isclosed()
    conn.close()


def test_request_sends_host_and_accept_encoding_like_http_client(echo_server):
    conn = HTTPConnection(f"127.0.0.1:{echo_server.port}", timeout=5)
    got = echo(conn, headers={"X-Test": "yes"})
    assert got["headers"] == [
        ["Host", f"127.0.0.1:{echo_server.port}"],
        ["Accept-Encoding", "identity"],
        ["X-Test", "yes"],
    ]
    conn.close()


def test_caller_host_and_accept_encoding_replace_the_automatic_ones(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    got = echo(conn, headers={"Host": "example.test", "Accept-Encoding": "gzip"})
    assert got["headers"] == [["Host", "example.test"], ["Accept-Encoding", "gzip"]]
    conn.close()


def test_absolute_url_gives_host_from_the_url(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "http://origin.test:81/echo")
    conn.getresponse().read()
    assert server.requests[0].request_line == b"GET http://origin.test:81/echo HTTP/1.1"
    assert server.requests[0].header("Host") == "origin.test:81"
    conn.close()


def test_host_header_omits_default_port_and_brackets_ipv6(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.putrequest("GET", "/")
    conn.endheaders()
    conn.getresponse().read()
    assert server.requests[0].header("Host") == f"127.0.0.1:{server.port}"

    class Port80(HTTPConnection):
        default_port = server.port  # so the port equals the default and is omitted

    conn2 = Port80("127.0.0.1", timeout=5)
    conn2.request("GET", "/")
    conn2.getresponse().read()
    assert server.requests[1].header("Host") == "127.0.0.1"
    conn.close()
    conn2.close()


@needs_ipv6
def test_ipv6_loopback_with_bracketed_host_port():
    server = EchoServer(host="::1")
    try:
        conn = HTTPConnection(f"[::1]:{server.port}", timeout=5)
        assert (conn.host, conn.port) == ("::1", server.port)
        got = echo(conn)
        assert ["Host", f"[::1]:{server.port}"] in got["headers"]
        conn.close()
    finally:
        server.close()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("example.test", ("example.test", 80)),
        ("example.test:8080", ("example.test", 8080)),
        ("example.test:", ("example.test", 80)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::1]", ("::1", 80)),
        # an unbracketed IPv6 address is ambiguous: http.client's rule (last colon
        # starts the port) gives host ":" and port 1, and so does ours
        ("::1", (":", 1)),
    ],
)
def test_host_port_splitting(address, expected):
    conn = HTTPConnection(address)
    assert (conn.host, conn.port) == expected
    theirs = http.client.HTTPConnection(address)
    assert (theirs.host, theirs.port) == expected


@pytest.mark.parametrize("bad", ["example.test:x", "example.test:8o", "[::1]:port", "h:+80"])
def test_nonnumeric_port_is_invalid_url(bad):
    with pytest.raises(protocol.InvalidURL, match="nonnumeric port: '"):
        HTTPConnection(bad)


def test_port_out_of_range_is_invalid_url():
    with pytest.raises(protocol.InvalidURL, match="port out of range: 70000"):
        HTTPConnection("example.test:70000")


def test_http_and_https_default_ports():
    assert HTTPConnection("a.test").port == protocol.HTTP_PORT == 80
    assert protocol.HTTPSConnection("a.test").port == protocol.HTTPS_PORT == 443


# -- request bodies -------------------------------------------------------------


def test_bytes_body_gets_content_length(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/up", body=b"hello body")
    conn.getresponse().read()
    req = server.requests[0]
    assert req.header("Content-Length") == "10"
    assert req.body_wire == b"hello body"
    conn.close()


def test_str_body_is_sent_as_latin1(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("PUT", "/", body="caf\xe9")
    conn.getresponse().read()
    assert server.requests[0].body_wire == b"caf\xe9"
    assert server.requests[0].header("Content-Length") == "4"
    conn.close()


def test_str_body_outside_latin1_has_http_clients_message():
    conn = HTTPConnection("127.0.0.1", 9)
    with pytest.raises(UnicodeEncodeError) as ours:
        conn.request("POST", "/", body="\u20ac")
    theirs_conn = http.client.HTTPConnection("127.0.0.1", 9)
    with pytest.raises(UnicodeEncodeError) as theirs:
        theirs_conn.request("POST", "/", body="\u20ac")
    assert str(ours.value) == str(theirs.value)
    assert "Body ('\u20ac') is not valid Latin-1" in str(ours.value)
    assert conn.sock is None  # nothing was sent


def test_post_without_body_sends_content_length_zero(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/")
    conn.getresponse().read()
    conn.request("GET", "/")
    conn.getresponse().read()
    assert server.requests[0].header("Content-Length") == "0"
    assert server.requests[1].header("Content-Length") is None
    conn.close()


def test_chunked_upload_from_a_generator_byte_for_byte(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)

    def parts():
        yield b"first"
        yield b""  # empty pieces are skipped: an empty chunk would end the body
        yield bytearray(b"-second-")
        yield memoryview(b"third")

    conn.request("POST", "/gen", body=parts())
    conn.getresponse().read()
    req = server.requests[0]
    assert req.header("Transfer-Encoding") == "chunked"
    assert req.header("Content-Length") is None
    assert req.body_wire == b"5\r\nfirst\r\n8\r\n-second-\r\n5\r\nthird\r\n0\r\n\r\n"
    conn.close()


def test_binary_file_body_is_sent_chunked_from_its_position(raw_server, tmp_path):
    """As http.client 3.11: a file without a caller's Content-Length goes chunked."""
    server = RecordingServer(raw_server)
    path = tmp_path / "upload.bin"
    payload = bytes(range(256)) * 100
    path.write_bytes(payload)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5, blocksize=1000)
    with path.open("rb") as f:
        f.read(56)  # only what is left of the file is sent
        conn.request("PUT", "/file", body=f)
    conn.getresponse().read()
    req = server.requests[0]
    assert req.header("Content-Length") is None
    assert req.header("Transfer-Encoding") == "chunked"
    assert req.decoded_body() == payload[56:]
    conn.close()


def test_text_file_body_is_chunked_and_latin1_encoded(raw_server, tmp_path):
    server = RecordingServer(raw_server)
    path = tmp_path / "upload.txt"
    path.write_text("line one\nline two caf\xe9\n", encoding="utf-8")
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    with path.open(encoding="utf-8") as f:
        conn.request("PUT", "/text", body=f)
    conn.getresponse().read()
    req = server.requests[0]
    assert req.header("Transfer-Encoding") == "chunked"
    assert req.decoded_body() == "line one\nline two caf\xe9\n".encode("latin-1")
    conn.close()


def test_bytesio_body_is_chunked_unless_the_caller_gives_a_length(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/", body=io.BytesIO(b"in memory"))
    conn.getresponse().read()
    conn.request("POST", "/", body=io.BytesIO(b"in memory"), headers={"Content-Length": "9"})
    conn.getresponse().read()
    first, second = server.requests
    assert first.header("Transfer-Encoding") == "chunked"
    assert first.body_wire == b"9\r\nin memory\r\n0\r\n\r\n"
    assert (second.header("Content-Length"), second.body_wire) == ("9", b"in memory")
    conn.close()


def test_encode_chunked_with_caller_transfer_encoding(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request(
        "POST",
        "/",
        body=[b"ab", b"cde"],
        headers={"Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    conn.getresponse().read()
    assert server.requests[0].body_wire == b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
    conn.close()


def test_prechunked_body_is_sent_as_is_and_connection_not_reused(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    raw = b"3\r\nabc\r\n0\r\n\r\n"
    conn.request("POST", "/", body=raw, headers={"Transfer-Encoding": "chunked"})
    conn.getresponse().read()
    assert server.requests[0].body_wire == raw
    # the core never saw this body end, so the next request gets a fresh socket
    conn.request("GET", "/")
    conn.getresponse().read()
    assert server.connections == 2
    conn.close()


def test_putrequest_endheaders_then_send_body_keeps_alive(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(2):
        conn.putrequest("POST", "/manual")
        conn.putheader("Content-Length", 6)
        conn.putheader("X-Many", "a", b"b", 3)
        conn.endheaders()
        conn.send(b"abc")
        conn.send(io.BytesIO(b"def"))
        assert conn.getresponse().read() == b"ok"
    assert [r.body_wire for r in server.requests] == [b"abcdef", b"abcdef"]
    assert server.requests[0].header("X-Many") == "a, b, 3"
    assert server.connections == 1
    conn.close()


def test_send_past_declared_length_is_refused(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.putrequest("POST", "/")
    conn.putheader("Content-Length", "2")
    conn.endheaders()
    with pytest.raises(ValueError, match="past the declared Content-Length"):
        conn.send(b"abc")
    conn.close()


def test_send_rejects_non_bytes_data():
    conn = HTTPConnection("127.0.0.1", 9)
    conn.sock = socket.socket()  # never connected: the type check comes first
    try:
        with pytest.raises(TypeError, match="data should be a bytes-like object or an iterable"):
            conn.send(12)
    finally:
        conn.sock.close()


def test_message_body_of_wrong_type_is_refused():
    conn = HTTPConnection("127.0.0.1", 9)
    with pytest.raises(TypeError):
        conn.request("POST", "/", body=object(), headers={"Content-Length": "1"})


# -- keep-alive -----------------------------------------------------------------


def test_keep_alive_reuses_one_tcp_connection(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    for i in range(5):
        conn.request("GET", f"/{i}")
        assert conn.getresponse().read() == b"ok"
    assert server.connections == 1
    assert [r.request_line for r in server.requests] == [b"GET /%d HTTP/1.1" % i for i in range(5)]
    conn.close()


def test_keep_alive_with_echo_server_and_chunked_responses(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    sockets = set()
    for n in (1, 2500, 0, 999):
        conn.request("GET", f"/chunked/{n}")
        sockets.add(id(conn.sock))
        r = conn.getresponse()
        assert r.chunked
        assert r.read() == b"z" * n
    assert len(sockets) == 1
    conn.close()


def test_connection_close_response_makes_the_next_request_reconnect(raw_server):
    server = RecordingServer(
        raw_server, respond=lambda req: ok_response(extra=b"Connection: close\r\n")
    )
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(3):
        conn.request("GET", "/")
        r = conn.getresponse()
        assert r.will_close
        assert conn.sock is None  # the response owns the socket now
        assert r.read() == b"ok"
    assert server.connections == 3
    conn.close()


def test_response_closed_early_forces_a_fresh_connection(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    conn.request("GET", "/bytes/100000")
    r = conn.getresponse()
    assert r.read(10) == b"x" * 10
    r.close()
    conn.request("GET", "/bytes/3")
    assert conn.getresponse().read() == b"xxx"
    conn.close()


def test_pipelined_extra_bytes_stay_with_the_connection(raw_server):
    """Two responses in one segment: the second is kept for the next request."""

    def handler(sock):
        recv_until(sock, b"\r\n\r\n")
        sock.sendall(ok_response(b"one") + ok_response(b"two"))
        recv_until(sock, b"\r\n\r\n")
        sock.recv(1)

    server = raw_server(handler)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/1")
    assert conn.getresponse().read() == b"one"
    conn.request("GET", "/2")
    assert conn.getresponse().read() == b"two"
    conn.close()


# -- response reading -----------------------------------------------------------


def test_read_with_amounts(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    conn.request("GET", "/chunked/2500")
    r = conn.getresponse()
    assert r.length is None
    got = [r.read(1000), r.read(1000), r.read(1000), r.read(1000)]
    assert [len(g) for g in got] == [1000, 1000, 500, 0]
    assert r.isclosed()
    conn.close()


def test_read_amount_clips_to_content_length_and_tracks_length(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    conn.request("GET", "/bytes/10")
    r = conn.getresponse()
    assert r.length == 10
    assert r.read(4) == b"xxxx"
    assert r.length == 6
    assert not r.isclosed()
    assert r.read(100) == b"x" * 6
    assert r.length == 0
    assert r.isclosed()
    conn.close()


def test_readinto_read1_and_peek(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    conn.request("GET", "/bytes/5000")
    r = conn.getresponse()
    peeked = r.peek()
    assert peeked and set(peeked) == {ord("x")}
    buf = bytearray(3000)
    assert r.readinto(buf) == 3000
    assert bytes(buf) == b"x" * 3000
    rest = b""
    while chunk := r.read1(700):
        assert len(chunk) <= 700
        rest += chunk
    assert len(rest) == 2000
    assert r.isclosed()
    assert r.readinto(bytearray(10)) == 0
    conn.close()


def test_readline_and_iteration(raw_server):
    body = b"alpha\nbeta\n\ngamma"
    server = RecordingServer(raw_server, respond=lambda req: ok_response(body))
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.readline() == b"alpha\n"
    assert r.readline(0) == b""
    assert r.readline(2) == b"be"
    assert list(r) == [b"ta\n", b"\n", b"gamma"]
    conn.request("GET", "/")
    with conn.getresponse() as r2:
        assert r2.readable()
        assert r2.readlines() == [b"alpha\n", b"beta\n", b"\n", b"gamma"]
    assert r2.closed
    conn.close()


def test_head_204_and_304_have_no_body_and_keep_alive(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    conn.request("HEAD", "/bytes/100")
    r = conn.getresponse()
    assert r.getheader("Content-Length") == "100"
    assert r.length == 0
    assert r.read() == b""
    for code in (204, 304):
        conn.request("GET", f"/status/{code}")
        r = conn.getresponse()
        assert r.status == code
        assert r.length == 0
        assert r.read() == b""
    conn.request("GET", "/bytes/2")
    assert conn.getresponse().read() == b"xx"
    assert len(echo_server.received) == 4
    conn.close()


def test_read_until_close_body(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    conn.request("GET", "/close/3000")
    r = conn.getresponse()
    assert r.will_close
    assert r.length is None
    assert r.read() == b"y" * 3000
    conn.close()


def test_http10_response_without_length_reads_to_close(raw_server):
    def handler(sock):
        recv_until(sock, b"\r\n\r\n")
        sock.sendall(b"HTTP/1.0 200 OK\r\nX: 1\r\n\r\nold style body")

    server = raw_server(handler)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert (r.version, r.will_close) == (10, True)
    assert r.read() == b"old style body"
    conn.close()


def test_interim_100_continue_responses_are_skipped(raw_server):
    server = RecordingServer(
        raw_server,
        respond=lambda req: (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
            b"Link: </a.css>\r\n\r\n" + ok_response(b"final")
        ),
    )
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.status == 200
    assert r.read() == b"final"
    conn.close()


def test_chunked_trailers_are_kept(raw_server):
    server = RecordingServer(
        raw_server,
        respond=lambda req: (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4\r\nbody\r\n0\r\nX-Checksum: abc\r\n\r\n"
        ),
    )
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.read() == b"body"
    assert r.trailers.get(b"x-checksum") == b"abc"
    conn.close()


def test_headers_message_view(raw_server):
    head_extra = b"Set-Cookie: a=1\r\nX-Dup: one\r\nset-cookie: b=2\r\nX-Dup: two\r\n"
    server = RecordingServer(raw_server, respond=lambda req: ok_response(extra=head_extra))
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    r.read()
    assert r.getheader("x-dup") == "one, two"
    assert r.getheader("set-cookie") == "a=1, b=2"
    assert r.getheader("missing") is None
    assert r.getheader("missing", "dflt") == "dflt"
    assert r.getheaders()[1:] == [
        ("Set-Cookie", "a=1"),
        ("X-Dup", "one"),
        ("set-cookie", "b=2"),
        ("X-Dup", "two"),
    ]
    msg = r.headers
    assert msg is r.msg is r.info()
    assert isinstance(msg, protocol.HTTPMessage)
    assert msg["SET-COOKIE"] == "a=1"
    assert msg.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert msg.getallmatchingheaders("x-dup") == ["X-Dup: one", "X-Dup: two"]
    assert ("X-Dup", "two") in msg.items()
    conn.close()


def test_getheader_before_begin_is_response_not_ready():
    sock = socket.socket()
    try:
        r = HTTPResponse(sock)
        with pytest.raises(protocol.ResponseNotReady):
            r.getheader("x")
        with pytest.raises(protocol.ResponseNotReady):
            r.getheaders()
        r.close()
    finally:
        sock.close()


class FakeSocket:
    """A socket double as http.client's own tests use: makefile() over canned bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str, bufsize: int | None = None) -> io.BytesIO:
        return io.BytesIO(self.data)


def test_response_over_a_socket_double():
    r = HTTPResponse(FakeSocket(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
    r.begin()
    assert (r.status, r.length) == (200, 5)
    assert r.read() == b"hello"
    assert r.isclosed()


def test_response_over_a_socket_double_for_head():
    r = HTTPResponse(FakeSocket(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), method="HEAD")
    r.begin()
    assert r.read() == b""


class RecordingSocketDouble(FakeSocket):
    """A connection-side double: records what is sent, answers canned bytes."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.sent = b""
        self.closed = False

    def sendall(self, data) -> None:
        self.sent += bytes(data)

    def close(self) -> None:
        self.closed = True


def test_connection_over_an_assigned_socket_double():
    conn = HTTPConnection("example.test")
    sock = RecordingSocketDouble(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    conn.sock = sock
    conn.request("GET", "/path", headers={"X": "1"})
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"hi")
    assert sock.sent == (
        b"GET /path HTTP/1.1\r\nHost: example.test\r\nAccept-Encoding: identity\r\nX: 1\r\n\r\n"
    )
    assert not sock.closed


def test_ipv6_zone_id_is_left_out_of_the_host_header():
    for address, host in (("[fe80::1%2]", b"[fe80::1]"), ("[fe80::1%eth0]:81", b"[fe80::1]:81")):
        conn = HTTPConnection(address)
        sock = RecordingSocketDouble(ok_response())
        conn.sock = sock
        conn.request("GET", "/")
        assert b"\r\nHost: " + host + b"\r\n" in sock.sent


def test_getheader_joins_an_iterable_default_like_http_client():
    r = HTTPResponse(FakeSocket(ok_response()))
    r.begin()
    assert r.getheader("missing", ["a", "b"]) == "a, b"
    assert r.getheader("missing", 7) == 7


def test_encode_request_hook_can_send_utf8_targets():
    class Utf8Connection(HTTPConnection):
        def _encode_request(self, request: str) -> bytes:
            return request.encode("utf-8")

    conn = Utf8Connection("example.test")
    conn.sock = sock = RecordingSocketDouble(ok_response())
    conn.request("GET", "/\u2603")
    assert sock.sent.startswith("GET /\u2603 HTTP/1.1\r\n".encode())
    with pytest.raises(UnicodeEncodeError):
        HTTPConnection("example.test").putrequest("GET", "/\u2603")


def test_endheaders_encode_chunked_declares_the_framing():
    conn = HTTPConnection("example.test")
    conn.sock = sock = RecordingSocketDouble(ok_response())
    conn.putrequest("POST", "/")
    conn.endheaders(iter([b"flesh ", b"wound"]), encode_chunked=True)
    head, _, body = sock.sent.partition(b"\r\n\r\n")
    assert b"\r\nTransfer-Encoding: chunked" in head
    assert body == b"6\r\nflesh \r\n5\r\nwound\r\n0\r\n\r\n"


def test_geturl_and_fileno(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.fileno() == conn.sock.fileno()
    assert r.geturl() is None
    r.read()
    with pytest.raises(ValueError):
        r.fileno()
    conn.close()


# -- state machine --------------------------------------------------------------


def test_request_twice_without_getresponse_is_cannot_send_request(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    conn.request("GET", "/")
    with pytest.raises(protocol.CannotSendRequest) as info:
        conn.request("GET", "/")
    assert info.value.args == ("Request-sent",)
    conn.getresponse().read()
    conn.close()


def test_getresponse_out_of_turn_is_response_not_ready(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    with pytest.raises(protocol.ResponseNotReady) as info:
        conn.getresponse()
    assert info.value.args == ("Idle",)
    conn.request("GET", "/")
    r = conn.getresponse()
    with pytest.raises(protocol.ResponseNotReady):
        conn.getresponse()
    r.read()
    conn.close()


def test_putheader_and_endheaders_out_of_turn_are_cannot_send_header(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    with pytest.raises(protocol.CannotSendHeader):
        conn.putheader("X", "1")
    with pytest.raises(protocol.CannotSendHeader):
        conn.endheaders()
    conn.putrequest("GET", "/")
    conn.endheaders()
    with pytest.raises(protocol.CannotSendHeader):
        conn.putheader("X", "1")
    with pytest.raises(protocol.CannotSendHeader):
        conn.endheaders()
    with pytest.raises(protocol.ImproperConnectionState):
        conn.putrequest("GET", "/")
    conn.getresponse().read()
    conn.close()


def test_auto_open_off_gives_not_connected():
    conn = HTTPConnection("127.0.0.1", 9)
    conn.auto_open = 0
    with pytest.raises(protocol.NotConnected):
        conn.request("GET", "/")


def test_close_is_idempotent_and_reconnects_on_next_request(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    conn.close()
    conn.close()
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"hello"
    conn.close()
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"hello"
    conn.close()


# -- validation: nothing is sent ------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "exc", "message"),
    [
        ("GET", "/a\r\nX-Injected: 1", protocol.InvalidURL, "URL can't contain control characters"),
        ("GET", "/a b", protocol.InvalidURL, "found at least ' '"),
        ("GET", "/\x00", protocol.InvalidURL, "found at least '\\\\x00'"),
        ("GET\r\nX: y", "/", ValueError, "method can't contain control characters"),
        ("G\x01T", "/", ValueError, "method can't contain control characters"),
    ],
)
def test_control_characters_in_request_line_are_refused(raw_server, method, url, exc, message):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    with pytest.raises(exc, match=message):
        conn.request(method, url)
    assert conn.sock is None
    conn.request("GET", "/fine")  # the failed attempt left the state machine idle
    conn.getresponse().read()
    assert [r.request_line for r in server.requests] == [b"GET /fine HTTP/1.1"]
    conn.close()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("X-Bad\r\nInjected", "1", "Invalid header name"),
        ("Bad Name", "1", "Invalid header name"),
        ("X:colon", "1", "Invalid header name"),
        ("X-Good", "a\r\nInjected: 1", "Invalid header value"),
        ("X-Good", "a\nb", "Invalid header value"),
        ("X-Good", "nul\x00", "Invalid header value"),
    ],
)
def test_bad_header_names_and_values_are_refused(raw_server, name, value, message):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    with pytest.raises(ValueError, match=message):
        conn.request("GET", "/", headers={name: value})
    assert conn.sock is None
    assert server.requests == []


def test_control_characters_in_host_are_invalid_url():
    with pytest.raises(protocol.InvalidURL, match="URL can't contain control characters"):
        HTTPConnection("bad\r\nhost")


# -- Expect: 100-continue -------------------------------------------------------


def test_expect_continue_waits_for_100_then_sends_body(raw_server):
    seen = {}

    def handler(sock):
        head = recv_until(sock, b"\r\n\r\n")
        seen["early"] = head.split(b"\r\n\r\n", 1)[1]  # nothing of the body yet
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        seen["body"] = sock.recv(100)
        sock.sendall(ok_response(b"got it"))

    server = raw_server(handler)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.expect_continue_timeout = 10  # the server decides, not the timer
    conn.request("PUT", "/", body=b"payload", headers={"Expect": "100-continue"})
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"got it")
    assert seen == {"early": b"", "body": b"payload"}
    conn.close()


def test_expect_continue_final_answer_means_body_is_not_sent(raw_server):
    got_after = []

    def handler(sock):
        recv_until(sock, b"\r\n\r\n")
        sock.sendall(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 2\r\n\r\nno")
        sock.settimeout(0.5)
        try:
            got_after.append(sock.recv(100))
        except TimeoutError:
            got_after.append(b"<nothing>")

    server = raw_server(handler)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.expect_continue_timeout = 10
    conn.request("PUT", "/", body=b"big payload", headers={"Expect": "100-continue"})
    r = conn.getresponse()
    assert (r.status, r.read()) == (417, b"no")
    conn.close()
    server.close()
    for _ in range(50):
        if got_after:
            break
        threading.Event().wait(0.05)
    assert got_after in ([b"<nothing>"], [b""])


def test_expect_continue_silent_server_gets_body_after_bounded_wait(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.expect_continue_timeout = 0.05
    conn.request("POST", "/", body=b"anyway", headers={"Expect": "100-continue"})
    assert conn.getresponse().read() == b"ok"
    assert server.requests[0].body_wire == b"anyway"
    conn.close()


# -- tunnels --------------------------------------------------------------------


def test_set_tunnel_goes_through_connect(raw_server, echo_server):
    seen: list[bytes] = []
    proxy = raw_server(connect_forwarder(seen))
    conn = HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.set_tunnel("127.0.0.1", echo_server.port, headers={"Proxy-Authorization": "Basic eA=="})
    got = echo(conn)
    got2 = echo(conn)
    assert ["Host", f"127.0.0.1:{echo_server.port}"] in got["headers"]
    assert got2["path"] == "/echo"
    assert len(seen) == 1
    assert seen[0].startswith(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n" % echo_server.port)
    assert b"Proxy-Authorization: Basic eA==\r\n" in seen[0]
    conn.close()


def test_tunnel_refused_raises_oserror(raw_server):
    def handler(sock):
        recv_until(sock, b"\r\n\r\n")
        sock.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")

    proxy = raw_server(handler)
    conn = HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.set_tunnel("example.test", 80)
    with pytest.raises(OSError, match="Tunnel connection failed: 407 Proxy Authentication"):
        conn.request("GET", "/")
    assert conn.sock is None


def test_set_tunnel_on_open_connection_is_refused(echo_server):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    conn.connect()
    with pytest.raises(RuntimeError, match="Can't set up tunnel"):
        conn.set_tunnel("example.test")
    conn.close()


# -- debug output ---------------------------------------------------------------


def test_debuglevel_prints_like_http_client(echo_server, capsys):
    conn = HTTPConnection("127.0.0.1", echo_server.port, timeout=5)
    conn.set_debuglevel(1)
    conn.request("GET", "/bytes/1")
    conn.getresponse().read()
    out = capsys.readouterr().out
    assert out.startswith("send: b'GET /bytes/1 HTTP/1.1\\r\\nHost: 127.0.0.1:")
    assert "reply: 'HTTP/1.1 200 OK\\r\\n'" in out
    assert "header: Content-Length: 1" in out
    conn.close()


# -- compatibility --------------------------------------------------------------


class ProtocolHandler(urllib.request.AbstractHTTPHandler):
    def http_open(self, req):
        return self.do_open(protocol.HTTPConnection, req)

    http_request = urllib.request.AbstractHTTPHandler.do_request_


def test_urllib_runs_on_protocol_connections(echo_server):
    opener = urllib.request.build_opener(ProtocolHandler())
    with opener.open(f"{echo_server.url}/echo", data=b"form=1", timeout=5) as resp:
        payload = json.loads(resp.read())
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
    assert payload["method"] == "POST"
    assert payload["body"] == "form=1"
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(f"{echo_server.url}/status/404", timeout=5)
    assert info.value.code == 404
    info.value.close()


def run_scenario(client_module, port: int) -> list:
    """The same http.client-style code, run against either module."""
    out = []
    conn = client_module.HTTPConnection("127.0.0.1", port, timeout=5)
    for method, url, body in [
        ("GET", "/bytes/5", None),
        ("POST", "/echo", b"data"),
        ("HEAD", "/bytes/7", None),
        ("GET", "/chunked/1500", None),
        ("GET", "/status/404", None),
        ("GET", "/status/204", None),
    ]:
        conn.request(method, url, body=body, headers={"X-Scenario": "1"})
        r = conn.getresponse()
        data = r.read()
        if url == "/echo":
            data = json.loads(data)["body"]
        headers = [(k, v) for k, v in r.getheaders() if k != "Date"]
        out.append((r.status, r.reason, r.version, headers, data, r.isclosed()))
    for exc_call in (conn.getresponse, lambda: conn.putheader("X", "1")):
        try:
            exc_call()
        except Exception as exc:
            out.append(type(exc).__name__)
    conn.close()
    return out


def test_same_scenario_through_http_client_and_protocol(echo_server):
    theirs = run_scenario(http.client, echo_server.port)
    ours = run_scenario(protocol, echo_server.port)
    assert ours == theirs
    assert theirs[-2:] == ["ResponseNotReady", "CannotSendHeader"]


def test_public_names_cover_http_client():
    missing = [n for n in http.client.__all__ if not hasattr(protocol, n)]
    assert missing == []
    assert protocol.error is protocol.HTTPException
    assert protocol.NOT_FOUND == 404 and protocol.responses[404] == "Not Found"
    assert issubclass(protocol.RemoteDisconnected, ConnectionResetError)
    assert issubclass(protocol.RemoteDisconnected, protocol.BadStatusLine)
    assert set(protocol.__all__) >= {"HTTPConnection", "HTTPSConnection", "HTTPResponse"}


# -- large bodies, bounded memory -------------------------------------------------


def test_64_mib_download_streams_with_bounded_memory(raw_server):
    server = raw_server(serve_big_body)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/big")
    r = conn.getresponse()
    total = 0
    tracemalloc.start()
    try:
        while chunk := r.read(65536):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == BIG
    assert peak < 4 * 1024 * 1024
    conn.close()


def test_64_mib_chunked_upload_from_generator_with_bounded_memory(raw_server):
    received = []

    def handler(sock):
        data = recv_until(sock, b"\r\n\r\n")
        tail = data.split(b"\r\n\r\n", 1)[1]
        count = len(tail)
        while not tail.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            count += len(chunk)
            tail = (tail + chunk)[-16:]
        received.append(count)
        sock.sendall(ok_response())

    server = raw_server(handler)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=10)

    def body():
        block = b"u" * 65536
        for _ in range(BIG // len(block)):
            yield block

    tracemalloc.start()
    try:
        conn.request("POST", "/up", body=body())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert conn.getresponse().read() == b"ok"
    assert received and received[0] > BIG
    assert peak < 4 * 1024 * 1024
    conn.close()


def test_read_raw_request_helper_round_trip(raw_server):
    """The test helper itself: one chunked request decoded back to the original body."""
    results = []

    def handler(sock):
        request, _ = read_raw_request(sock)
        results.append(request.decoded_body())
        sock.sendall(ok_response())

    server = raw_server(handler)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/", body=iter([b"abc", b"0", b"defg"]))
    conn.getresponse().read()
    assert results == [b"abc0defg"]
    conn.close()


# -- any split, any read pattern ----------------------------------------------------


def chunked_wire(body: bytes, sizes: list[int]) -> bytes:
    out, pos = b"", 0
    for size in sizes:
        piece = body[pos : pos + size]
        if piece:
            out += b"%x\r\n%s\r\n" % (len(piece), piece)
        pos += size
    if pos < len(body):
        out += b"%x\r\n%s\r\n" % (len(body) - pos, body[pos:])
    return out + b"0\r\n\r\n"


@pytest.fixture(scope="module")
def split_server():
    """Answers each connection with the pieces queued in ``plans``, one send per piece."""
    plans: list[list[bytes]] = []

    def handler(sock):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        recv_until(sock, b"\r\n\r\n")
        for piece in plans.pop(0):
            sock.sendall(piece)

    from tests.servers import RawServer

    server = RawServer(handler)
    yield server, plans
    server.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=3000),
    chunked=st.booleans(),
    chunk_sizes=st.lists(st.integers(1, 700), max_size=8),
    cuts=st.lists(st.integers(1, 4000), max_size=6),
    reads=st.lists(st.sampled_from(["read", "read1", "readline", "peek", "readinto"]), max_size=6),
    amount=st.integers(1, 900),
)
def test_body_survives_any_segmenting_and_read_pattern(
    split_server, body, chunked, chunk_sizes, cuts, reads, amount
):
    server, plans = split_server
    if chunked:
        wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked_wire(
            body, chunk_sizes
        )
    else:
        wire = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    points = sorted({c for c in cuts if c < len(wire)})
    plans.append([wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)])
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    got = b""
    for op in reads:
        if op == "read":
            got += r.read(amount)
        elif op == "read1":
            got += r.read1(amount)
        elif op == "readline":
            got += r.readline(amount)
        elif op == "peek":
            assert body[len(got) :].startswith(r.peek())
        else:
            buf = bytearray(amount)
            got += bytes(buf[: r.readinto(buf)])
    got += r.read()
    assert got == body
    assert r.isclosed()
    conn.close()
