"""Upstream failures and malformed clients: what the client gets, what is recorded, what is printed.

After every failure the same proxy must still serve a normal request.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from inspector.render import flow_line
from tests.proxy_fixtures import LiveProxy, live_proxy, read_response
from tests.servers import EchoServer, answers, hangs, read_request_head, reset

CLOSED = 0


# The read-timeout case waits this long; every healthy check after a fault shares it, so it
# is generous enough for a loaded machine (the echo server answers in milliseconds).
READ_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with live_proxy(tmp_path_factory.mktemp("errors"), read_timeout=READ_TIMEOUT) as p:
        yield p


def get(proxy: LiveProxy, url: str) -> tuple[int, bytes]:
    """One GET through the proxy: (status, body), or (CLOSED, partial) when cut short."""
    host = url.split("/")[2]
    with proxy.connect() as s:
        s.sendall(f"GET {url} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        try:
            status, headers, body = read_response(s)
        except (ConnectionError, OSError):
            return CLOSED, b""
        if int(headers.get("content-length", len(body))) != len(body):
            return CLOSED, body
        if headers.get("transfer-encoding") == "chunked" and not body.endswith(b"0\r\n\r\n"):
            return CLOSED, body
        return status, body


def last_finished(proxy: LiveProxy, url: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for event in reversed(proxy.events):
            if event.flow.request.url == url and event.flow.finished:
                return event.flow
        time.sleep(0.02)
    raise AssertionError(f"no finished flow for {url}")


FAULTS = [
    # name, handler, client status, exception class, phase
    (
        "reset-before-status",
        answers(b"", then_reset=True),
        502,
        "ConnectionResetError",
        "status line",
    ),
    ("close-before-status", answers(b""), 502, "RemoteDisconnected", "status line"),
    (
        "reset-mid-headers",
        answers(b"HTTP/1.1 200 OK\r\nContent-Le", then_reset=True),
        502,
        "ConnectionResetError",
        "headers",
    ),
    (
        "garbage-status-line",
        answers(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
        502,
        "BadStatusLine",
        "status line",
    ),
    (
        "reset-mid-body",
        answers(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", then_reset=True),
        CLOSED,
        "ConnectionResetError",
        "body",
    ),
    (
        "truncated-body",
        answers(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly"),
        CLOSED,
        "IncompleteRead",
        "body",
    ),
    (
        "bad-chunk",
        answers(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"),
        CLOSED,
        "InvalidChunk",  # an IncompleteRead that is a RemoteProtocolError (issue #13)
        "body",
    ),
    ("read-timeout", hangs, 504, "TimeoutError", "status line"),
]


@pytest.mark.parametrize(
    ("name", "handler", "status", "exc_class", "phase"), FAULTS, ids=[f[0] for f in FAULTS]
)
def test_upstream_fault(  # type: ignore[no-untyped-def]
    name, handler, status, exc_class, phase, proxy, healthy, raw_server
) -> None:
    peer = raw_server(handler)
    url = f"{peer.url}/{name}"
    got, body = get(proxy, url)
    assert got == status
    flow = last_finished(proxy, url)
    assert flow.error is not None
    assert (flow.error.exc_class, flow.error.phase) == (exc_class, phase)
    line = flow_line(flow)
    assert line.startswith(f"GET {url} -> ERROR {exc_class}: ")
    if status in (502, 504):
        expected = f"inspector: upstream 127.0.0.1:{peer.port} failed during {phase}: {exc_class}"
        assert body.decode().startswith(expected)
    assert get(proxy, f"{healthy.url}/status/200") == (200, b"status 200\n")


def test_truncated_body_says_how_far_it_got(proxy: LiveProxy, raw_server) -> None:  # type: ignore[no-untyped-def]
    peer = raw_server(answers(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly"))
    url = f"{peer.url}/short"
    get(proxy, url)
    flow = last_finished(proxy, url)
    assert flow.error is not None and flow.response is not None
    assert flow.error.message == "IncompleteRead(4 bytes read, 96 more expected)"
    assert (flow.response.body.data, flow.response.body.size) == (b"only", 4)


def test_refused(proxy: LiveProxy, healthy: EchoServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
        status, body = get(proxy, url)
    assert status == 502
    assert body.startswith(b"inspector: upstream 127.0.0.1:")
    assert b"failed during connect: ConnectionRefusedError: [Errno 111]" in body
    flow = last_finished(proxy, url)
    assert flow_line(flow) == (
        f"GET {url} -> ERROR ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert get(proxy, f"{healthy.url}/status/200")[0] == 200


def test_connect_timeout_gives_504(tmp_path: Path) -> None:
    # A listening socket whose backlog is full never completes new handshakes.
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        fillers = []
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(full.getsockname())
            fillers.append(c)
        with live_proxy(tmp_path, connect_timeout=0.3) as proxy:
            url = f"http://127.0.0.1:{full.getsockname()[1]}/"
            status, body = get(proxy, url)
            flow = last_finished(proxy, url)
        for c in fillers:
            c.close()
    assert status == 504 and b"TimeoutError" in body
    assert (flow.error.exc_class, flow.error.phase) == ("TimeoutError", "connect")  # type: ignore[union-attr]


def test_the_keep_alive_client_connection_survives_an_upstream_error(
    proxy: LiveProxy, healthy: EchoServer
) -> None:
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        bad = f"http://127.0.0.1:{dead.getsockname()[1]}/"
        good = f"{healthy.url}/status/200"
        with proxy.connect() as s:
            s.sendall(f"GET {bad} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert read_response(s)[0] == 502
            s.sendall(f"GET {good} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert read_response(s)[:1] == (200,)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400),
        (b"GET http://127.0.0.1:1/ HTTP/1.1\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
        (
            b"POST http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (b"GET http://127.0.0.1:1/ HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ],
    ids=["bad-header-name", "header-too-big", "cl-and-te", "http2-version"],
)
def test_malformed_client_request(
    data: bytes, status: int, proxy: LiveProxy, healthy: EchoServer
) -> None:
    with proxy.connect() as s:
        s.sendall(data)
        got, headers, body = read_response(s)
        assert s.recv(1) == b""  # and the connection is closed
    assert got == status
    assert headers["connection"] == "close"
    assert body.startswith(b"inspector: cannot parse the request: ")
    assert get(proxy, f"{healthy.url}/status/200")[0] == 200


def test_broken_request_body_gets_400(proxy: LiveProxy, healthy: EchoServer) -> None:
    url = f"{healthy.url}/echo"
    with proxy.connect() as s:
        s.sendall(
            f"POST {url} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\nzz\r\n".encode()
        )
        status, headers, body = read_response(s)
        assert s.recv(1) == b""
    assert status == 400 and headers["connection"] == "close"
    assert body.startswith(b"inspector: cannot parse the request: ")
    flow = last_finished(proxy, url)
    assert flow.error is not None and flow.error.phase == "client"


def test_client_gone_before_the_response_is_a_client_error_not_an_internal_one(  # type: ignore[no-untyped-def]
    proxy: LiveProxy, healthy: EchoServer, raw_server, capfd: pytest.CaptureFixture[str]
) -> None:
    arrived, gone = threading.Event(), threading.Event()
    block = b"x" * 65536

    def answer_late(conn: socket.socket) -> None:
        read_request_head(conn)
        arrived.set()
        assert gone.wait(10)
        # The answer comes only after the client's reset; it is large enough that the
        # proxy cannot deliver it even if it has not yet noticed the reset when it begins.
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(block) * 64))
        for _ in range(64):
            conn.sendall(block)

    peer = raw_server(answer_late)
    url = f"{peer.url}/late"
    with proxy.connect() as s:
        s.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert arrived.wait(10), "the request never reached the upstream"
        reset(s)
    gone.set()
    flow = last_finished(proxy, url)
    assert flow.error is not None and flow.error.phase == "client"
    assert flow.error.exc_class == "ConnectionResetError"  # uvloop raised RuntimeError here
    assert "internal error" not in capfd.readouterr().err
    assert get(proxy, f"{healthy.url}/status/200") == (200, b"status 200\n")
