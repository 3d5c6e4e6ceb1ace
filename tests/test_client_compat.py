"""protocol behaves as http.client 3.11 where code relies on it (issue #13, items 1-11).

Each test talks to a real peer on loopback; the two sans-IO checks at the end show
the proxy's (server) side keeps its strictness.
"""

from __future__ import annotations

import gzip
import os
import socket
import ssl
import threading
import warnings
from pathlib import Path

import pytest

import protocol
from protocol import HTTPConnection, HTTPResponse, HTTPSConnection
from protocol.connection import SERVER, Connection
from tests.client_fixtures import RecordingServer, ok_response, recv_until


def answering(raw: bytes, *, hold: threading.Event | None = None):
    """A handler that reads one request head, writes ``raw``, then (with ``hold``)
    keeps the connection open until the test sets it."""

    def handler(sock: socket.socket) -> None:
        recv_until(sock, b"\r\n\r\n")
        sock.sendall(raw)
        if hold is not None:
            hold.wait(10)

    return handler


def get_from(raw_server, wire: bytes, hold: threading.Event | None = None) -> HTTPConnection:
    """A connection that has sent ``GET /`` to a peer answering ``wire``."""
    server = raw_server(answering(wire, hold=hold))
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    return conn


# -- 1. a subclass whose connect() only sets self.sock ---------------------------


class OwnSocketConnection(HTTPConnection):
    """As Unix-socket adapters and socket doubles do: connect() sets ``sock`` only."""

    connects = 0

    def connect(self) -> None:
        self.connects += 1
        self.sock = socket.create_connection((self.host, self.port), timeout=5)


def test_subclass_connect_that_only_sets_sock_works(raw_server):
    closing = ok_response(b"bye", b"Connection: close\r\n")
    server = RecordingServer(raw_server, respond=lambda request: closing)
    conn = OwnSocketConnection("127.0.0.1", server.port)
    for path in ("/one", "/two"):  # the second request needs a new socket and a new core
        conn.request("GET", path)
        assert conn.getresponse().read() == b"bye"
    assert conn.connects == server.connections == 2
    assert [r.request_line for r in server.requests] == [
        b"GET /one HTTP/1.1",
        b"GET /two HTTP/1.1",
    ]
    conn.close()


# -- 2. a standalone HTTPResponse reads only its own message ---------------------


class UnbufferedSocket:
    """Gives responses files that read the socket directly, so bytes a response
    does not read stay in the socket for the next one."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def makefile(self, mode: str, *args: object) -> object:
        return self.sock.makefile(mode, buffering=0)


@pytest.mark.parametrize(
    "first",
    [
        ok_response(b"hello"),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n" + ok_response(b"hello"),
    ],
    ids=["content-length", "chunked", "after-100"],
)
def test_standalone_responses_read_one_message_each(raw_server, first):
    server = raw_server(answering(first + ok_response(b"world")))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        wrapped = UnbufferedSocket(sock)
        bodies = []
        for _ in range(2):
            response = HTTPResponse(wrapped, method="GET")
            response.begin()
            bodies.append(response.read())
    assert bodies == [b"hello", b"world"]


# -- 3. the last chunk, then the connection closes --------------------------------


def test_chunked_body_ending_at_the_last_chunk_without_final_crlf_is_complete(raw_server):
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
    conn = get_from(raw_server, wire)  # the handler returns: the server closes
    response = conn.getresponse()
    assert response.read() == b"hello"
    assert response.isclosed()
    conn.close()


def test_chunked_body_cut_inside_the_trailers_is_still_incomplete(raw_server):
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Tr"
    conn = get_from(raw_server, wire)
    with pytest.raises(protocol.IncompleteRead) as info:
        conn.getresponse().read()
    assert info.value.partial == b"hello"
    conn.close()


# -- 4. obs-fold: unfolded in responses, refused in requests ----------------------


def test_obs_fold_in_a_response_header_is_unfolded_to_one_space(raw_server):
    wire = b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n two \r\n\tthree\r\nContent-Length: 2\r\n\r\nok"
    conn = get_from(raw_server, wire)
    response = conn.getresponse()
    assert response.getheader("X-Folded") == "one two three"
    assert response.headers["X-Folded"] == "one two three"
    assert response.read() == b"ok"
    conn.close()


def test_obs_fold_in_a_request_the_proxy_receives_is_still_refused():
    server = Connection(SERVER)
    server.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n")
    with pytest.raises(protocol.RemoteProtocolError, match="obs-fold"):
        server.next_event()


# -- 5. file bodies are chunked unless the caller gives a length ------------------


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_proc_file_body_is_sent_whole_although_fstat_says_zero(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    with open("/proc/self/status", "rb") as f:
        assert os.fstat(f.fileno()).st_size == 0
        conn.request("PUT", "/status", body=f)
    assert conn.getresponse().read() == b"ok"
    req = server.requests[0]
    assert req.header("Transfer-Encoding") == "chunked"
    assert req.header("Content-Length") is None
    assert req.decoded_body().startswith(b"Name:")
    conn.close()


def test_file_that_grows_while_it_is_sent_goes_whole(raw_server, tmp_path):
    """A log still being written: what is there when each block is read goes out."""
    path = tmp_path / "growing.log"
    path.write_bytes(b"first line\n")

    class GrowingFile:
        """A real file that gets a line appended after its first read."""

        def __init__(self) -> None:
            self.file = path.open("rb")
            self.reads = 0

        def read(self, n: int) -> bytes:
            data = self.file.read(n)
            self.reads += 1
            if self.reads == 1:
                with path.open("ab") as writer:
                    writer.write(b"second line\n")
            return data

    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    body = GrowingFile()
    conn.request("POST", "/log", body=body)
    body.file.close()
    assert conn.getresponse().read() == b"ok"
    assert server.requests[0].decoded_body() == b"first line\nsecond line\n"
    conn.close()


# -- 6. the caller's own transfer-codings before chunked --------------------------


def test_caller_transfer_encoding_gzip_chunked_is_accepted(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    packed = gzip.compress(b"squeezed " * 100)
    pieces = [packed[:10], packed[10:]]
    conn.request(
        "POST",
        "/",
        body=pieces,
        headers={"Transfer-Encoding": "gzip, chunked"},
        encode_chunked=True,
    )
    assert conn.getresponse().read() == b"ok"
    req = server.requests[0]
    assert req.header("Transfer-Encoding") == "gzip, chunked"
    assert gzip.decompress(req.decoded_body()) == b"squeezed " * 100
    conn.close()


def test_transfer_encoding_not_ending_in_one_chunked_is_refused_before_sending(raw_server):
    server = RecordingServer(raw_server)
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    for codings in ("chunked, gzip", "chunked, chunked"):
        with pytest.raises(protocol.LocalProtocolError, match="must end in chunked"):
            conn.request("POST", "/", body=[b"x"], headers={"Transfer-Encoding": codings})
        conn.close()
    assert server.requests == []


# -- 7. HTTPSConnection's deprecated arguments ------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key_file": "k.pem", "cert_file": "c.pem"},
        {"cert_file": "c.pem"},
        {"check_hostname": False},
    ],
)
def test_deprecated_https_arguments_warn_as_http_client_does(kwargs, tmp_path):
    files = {name: tmp_path / value for name, value in kwargs.items() if name.endswith("_file")}
    # A context of its own: check_hostname is set on the context given (as http.client does).
    context = ssl.create_default_context()
    with pytest.warns(DeprecationWarning, match="use a custom context instead"):
        if files:  # no such files: loading them fails after the warning
            with pytest.raises(FileNotFoundError):
                HTTPSConnection("localhost", context=context, **files)
        else:
            HTTPSConnection("localhost", context=context, **kwargs)


def test_https_connection_without_deprecated_arguments_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HTTPSConnection("localhost", context=ssl.create_default_context())


# -- 8. a new request while the previous response is unread -----------------------


def test_request_while_the_previous_response_is_unread_goes_out(raw_server):
    server = RecordingServer(raw_server, respond=lambda request: ok_response(request.body_wire))
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/first", body=b"one")
    first = conn.getresponse()
    conn.request("POST", "/second", body=b"two")  # http.client sends it too
    with pytest.raises(protocol.ResponseNotReady):
        conn.getresponse()
    assert first.read() == b"one"
    assert conn.getresponse().read() == b"two"
    assert [r.body_wire for r in server.requests] == [b"one", b"two"]
    conn.close()


# -- 10, 11. header limits raise http.client's errors, and early -------------------


def test_overlong_header_line_is_line_too_long(raw_server):
    wire = b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\nContent-Length: 0\r\n\r\n"
    conn = get_from(raw_server, wire)
    with pytest.raises(protocol.LineTooLong, match="header line"):
        conn.getresponse()
    conn.close()


def test_overlong_header_line_is_refused_before_the_head_ends(raw_server):
    hold = threading.Event()
    conn = get_from(raw_server, b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000, hold)
    try:
        with pytest.raises(protocol.LineTooLong):
            conn.getresponse()  # without the early check this would wait for the timeout
    finally:
        hold.set()
        conn.close()


def test_header_block_over_the_limit_is_a_line_too_long_with_the_431_hint(raw_server):
    lines = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(70))
    conn = get_from(raw_server, b"HTTP/1.1 200 OK\r\n" + lines + b"\r\n")
    with pytest.raises(protocol.LineTooLong) as info:
        conn.getresponse()
    assert isinstance(info.value, protocol.RemoteProtocolError)
    assert info.value.status_hint == 431
    conn.close()


@pytest.mark.parametrize("interim", [b"", b"HTTP/1.1 100 Continue\r\n\r\n"])
def test_101st_header_is_refused_when_it_arrives(raw_server, interim):
    hold = threading.Event()
    headers = b"".join(b"H%d: x\r\n" % i for i in range(101))
    conn = get_from(raw_server, interim + b"HTTP/1.1 200 OK\r\n" + headers, hold)
    try:
        with pytest.raises(protocol.HTTPException, match="got more than 100 headers"):
            conn.getresponse()  # the head never ends: only counting as lines come can tell
    finally:
        hold.set()
        conn.close()


def test_too_many_headers_in_a_request_the_proxy_receives_answer_431():
    server = Connection(SERVER)
    server.receive_data(b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: x\r\n" % i for i in range(101)))
    with pytest.raises(protocol.RemoteProtocolError, match="got more than 100") as info:
        server.next_event()
    assert info.value.status_hint == 431


def test_parse_headers_reads_a_header_block_from_a_file(raw_server):
    server = raw_server(answering(b"A: 1\r\nB: two\r\n words\r\n\r\nbody"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"\r\n\r\n")
        with sock.makefile("rb") as fp:
            message = protocol.parse_headers(fp)
            assert fp.read() == b"body"
    assert (message["A"], message["B"]) == ("1", "two words")
