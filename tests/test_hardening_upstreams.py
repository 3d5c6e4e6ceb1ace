"""Failing upstreams: one misbehaving peer per fault, seen through the real proxy.

For each fault: what the client gets (502/504, or a closed connection once the
response had started), the exception event recorded on the flow (class and
phase), and that the proxy serves the next request normally.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from inspector.store import Store
from tests.proxy_process import ProxyProcess
from tests.servers import EchoServer, RawServer, answers, hangs, read_request_head, reset

CLOSED = 0

Handler = Callable[[socket.socket], None]


def informational_flood(conn: socket.socket) -> None:
    read_request_head(conn)
    for _ in range(2000):
        conn.sendall(b"HTTP/1.1 102 Processing\r\n\r\n")


def endless_body(dropped: threading.Event) -> Handler:
    """A body without end, until the proxy drops the connection: then ``dropped`` is set."""

    def handle(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
        block = b"e" * 65536
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                conn.sendall(block)
        except ConnectionError:  # reset or broken pipe; a proxy that stopped reading times out
            dropped.set()

    return handle


def trickle(conn: socket.socket) -> None:
    read_request_head(conn)
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow":
        conn.sendall(bytes([byte]))
        time.sleep(0.02)


@dataclass(frozen=True)
class Fault:
    name: str
    handler: Handler
    statuses: frozenset[int]
    classes: frozenset[str]
    phases: frozenset[str]


def fault(name: str, handler: Handler, statuses, classes, phases) -> Fault:  # type: ignore[no-untyped-def]
    return Fault(name, handler, frozenset(statuses), frozenset(classes), frozenset(phases))


DISCONNECTS = {"RemoteDisconnected", "ConnectionResetError", "IncompleteRead", "BrokenPipeError"}
PROTOCOL = {"RemoteProtocolError", "BadStatusLine", "LineTooLong", "HTTPException", "InvalidChunk"}

FAULTS = [
    fault(
        "reset-before-status",
        answers(b"", then_reset=True),
        {502},
        DISCONNECTS,
        {"status line", "send"},
    ),
    fault("close-before-status", answers(b""), {502}, DISCONNECTS, {"status line"}),
    fault(
        "reset-mid-headers",
        answers(b"HTTP/1.1 200 OK\r\nContent-Le", then_reset=True),
        {502},
        DISCONNECTS,
        {"headers", "status line"},
    ),
    fault(
        "reset-mid-body",
        answers(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", then_reset=True),
        {200, CLOSED},
        DISCONNECTS,
        {"body"},
    ),
    fault(
        "garbage-status-line",
        answers(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
        {502},
        PROTOCOL,
        {"status line"},
    ),
    fault(
        "overlong-status-line",
        answers(b"HTTP/1.1 200 " + b"O" * 70000 + b"\r\n\r\n"),
        {502},
        {"LineTooLong"},
        {"status line"},
    ),
    fault(
        "too-many-headers",
        answers(
            b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(500)) + b"\r\n"
        ),
        {502},
        PROTOCOL,
        {"headers"},
    ),
    fault(
        "truncated-content-length",
        answers(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-this"),
        {200, CLOSED},
        {"IncompleteRead"},
        {"body"},
    ),
    fault(
        "bad-chunk",
        answers(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"),
        {200, CLOSED},
        PROTOCOL,
        {"body"},
    ),
    fault(
        "unterminated-chunks",
        answers(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
        {200, CLOSED},
        DISCONNECTS | PROTOCOL,
        {"body"},
    ),
    fault(
        "cl-and-te",
        answers(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        {502},
        PROTOCOL,
        {"headers"},
    ),
    fault("informational-flood", informational_flood, {502}, PROTOCOL, {"headers", "status line"}),
    fault("hang", hangs, {504}, {"TimeoutError"}, {"status line"}),
]


# The hang waits this long; the healthy checks and the trickle share it, so it is generous
# enough for a loaded machine.
READ_TIMEOUT = "3"


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, upstream_ca_file: Path
) -> Iterator[ProxyProcess]:
    p = ProxyProcess(
        tmp_path_factory.mktemp("faults"),
        "--read-timeout",
        READ_TIMEOUT,
        "--connect-timeout",
        "2",
        "--upstream-ca",
        str(upstream_ca_file),
    )
    yield p
    p.stop()


def _get(proxy: ProxyProcess, url: str, timeout: float = 15.0) -> tuple[int, bytes]:
    """GET ``url`` through the proxy; (status or CLOSED when cut short, body read)."""
    host_port = url.split("/")[2]
    request = f"GET {url} HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\n\r\n".encode()
    data = b""
    with socket.create_connection((proxy.host, proxy.port), timeout=timeout) as s:
        s.sendall(request)
        try:
            while chunk := s.recv(65536):
                data += chunk
                if len(data) > 2_000_000:
                    break
        except (ConnectionResetError, TimeoutError):
            return CLOSED, data
    if not data.startswith(b"HTTP/1.1 "):
        return CLOSED, data
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    if b"content-length:" in head.lower():
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        if len(body) < length:
            return CLOSED, body  # the proxy cut a started response short: the client sees that
    return status, body


def _recorded_error(proxy: ProxyProcess, url: str, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store = Store(proxy.session, readonly=True)
        try:
            for flow in store.iter_flows():
                if flow.request.url == url and flow.error is not None:
                    return flow.error
        finally:
            store.close()
        time.sleep(0.1)
    raise AssertionError(f"no error recorded for {url}")


def _still_serving(proxy: ProxyProcess, healthy: EchoServer) -> None:
    status, body = _get(proxy, f"{healthy.url}/status/200")
    assert status == 200 and body == b"status 200\n"


@pytest.mark.parametrize("f", FAULTS, ids=lambda f: f.name)
def test_upstream_fault(f: Fault, proxy: ProxyProcess, healthy: EchoServer, raw_server) -> None:  # type: ignore[no-untyped-def]
    peer = raw_server(f.handler)
    url = f"{peer.url}/{f.name}"
    status, body = _get(proxy, url)
    assert status in f.statuses, f"{f.name}: client got {status or 'a closed connection'}"
    error = _recorded_error(proxy, url)
    assert error.exc_class in f.classes, f"{f.name}: recorded {error.exc_class}"
    assert error.phase in f.phases, f"{f.name}: recorded phase {error.phase}"
    if status in (502, 504):
        assert error.exc_class.encode() in body, "the error page names the exception"
    _still_serving(proxy, healthy)


def test_refused(proxy: ProxyProcess, healthy: EchoServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        url = f"http://127.0.0.1:{port}/refused"
        status, body = _get(proxy, url)
    assert status == 502 and b"ConnectionRefusedError" in body
    error = _recorded_error(proxy, url)
    assert (error.exc_class, error.phase) == ("ConnectionRefusedError", "connect")
    _still_serving(proxy, healthy)


def test_endless_body_is_dropped_when_the_client_leaves(
    proxy: ProxyProcess, healthy: EchoServer, raw_server
) -> None:  # type: ignore[no-untyped-def]
    dropped = threading.Event()
    peer = raw_server(endless_body(dropped))
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
        s.sendall(f"GET {peer.url}/endless HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = 0
        while received < 1_000_000:
            received += len(s.recv(65536))
    assert dropped.wait(20), "the proxy still holds the upstream connection after the client left"
    _still_serving(proxy, healthy)


def test_slow_trickle_still_arrives(proxy: ProxyProcess, raw_server) -> None:  # type: ignore[no-untyped-def]
    peer = raw_server(trickle)
    status, body = _get(proxy, f"{peer.url}/trickle")
    assert (status, body) == (200, b"slow")


def _tls_peer(raw_server, ca: trustme.CA, *names: str, **cert_kwargs) -> RawServer:  # type: ignore[no-untyped-def]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names, **cert_kwargs).configure_cert(ctx)
    return raw_server(answers(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), tls=ctx)


def _connect_get(proxy: ProxyProcess, host: str, port: int, client_ctx: ssl.SSLContext) -> int:
    """CONNECT through the proxy, TLS with the proxy's CA, one GET; the status the client sees."""
    with socket.create_connection((proxy.host, proxy.port), timeout=15) as raw:
        raw.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        assert read_request_head(raw).startswith(b"HTTP/1.1 200")
        with client_ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    return int(data.split(b" ")[1])


@pytest.fixture
def proxy_client_ctx(proxy: ProxyProcess) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(proxy.confdir / "ca.pem"))


EXPIRED = {
    "not_before": dt.datetime(2019, 1, 1, tzinfo=dt.UTC),
    "not_after": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
}


@pytest.mark.parametrize(
    ("cert_names", "cert_kwargs"),
    [(("127.0.0.1",), EXPIRED), (("other.example",), {})],
    ids=["expired", "wrong-host"],
)
def test_bad_upstream_certificates(
    cert_names, cert_kwargs, proxy, healthy, raw_server, upstream_ca, proxy_client_ctx
) -> None:  # type: ignore[no-untyped-def]
    peer = _tls_peer(raw_server, upstream_ca, *cert_names, **cert_kwargs)
    assert _connect_get(proxy, "127.0.0.1", peer.port, proxy_client_ctx) == 502
    error = _recorded_error(proxy, f"https://127.0.0.1:{peer.port}/x")
    assert error.phase == "tls"
    assert "SSL" in error.exc_class or "Certificate" in error.exc_class
    _still_serving(proxy, healthy)


def test_reset_during_upstream_handshake(proxy, healthy, raw_server, proxy_client_ctx) -> None:  # type: ignore[no-untyped-def]
    def handle(conn: socket.socket) -> None:
        conn.recv(1024)  # the ClientHello
        reset(conn)

    peer = raw_server(handle)
    assert _connect_get(proxy, "127.0.0.1", peer.port, proxy_client_ctx) == 502
    error = _recorded_error(proxy, f"https://127.0.0.1:{peer.port}/x")
    assert error.phase == "tls"
    _still_serving(proxy, healthy)
