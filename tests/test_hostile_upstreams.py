"""The hostile-upstream corpus (tests/corpus_responses.py) and failing upstream TLS.

For each case: the status the client gets (or a response cut short), the 502/504 page
naming the exception, bytes the client must never see (a smuggled second response,
the body of a 204/304/HEAD response), the proxy's memory within a fixed budget, and a
normal request served right after.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from inspector.store import Store
from tests.corpus import CLOSED
from tests.corpus_responses import RESPONSES, Response
from tests.hostile_harness import RecordingOrigin, normal_request, rss_kib
from tests.proxy_process import ProxyProcess
from tests.servers import RawServer, read_request_head, reset

RSS_BUDGET_KIB = 48 * 1024
# The hang and the stalls wait this long; healthy exchanges share it, so it is generous
# enough for a loaded machine.
READ_TIMEOUT = "3"


@pytest.fixture(scope="module")
def origin() -> Iterator[RecordingOrigin]:
    server = RecordingOrigin({case.name: case.handler for case in RESPONSES})
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, upstream_ca_file: Path
) -> Iterator[ProxyProcess]:
    p = ProxyProcess(
        tmp_path_factory.mktemp("hostile-upstreams"),
        "--read-timeout", READ_TIMEOUT, "--connect-timeout", "2",
        "--upstream-ca", str(upstream_ca_file),
    )  # fmt: skip
    yield p
    p.stop()


@pytest.fixture(scope="module")
def rss_ceiling(proxy: ProxyProcess, origin: RecordingOrigin) -> int:
    for _ in range(20):
        normal_request(proxy, origin, "/warm-up")
    return rss_kib(proxy) + RSS_BUDGET_KIB


def _read_all(sock: socket.socket, timeout: float = 15.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def outcome(data: bytes, method: bytes = b"GET") -> tuple[int, bytes, bytes]:
    """(status or CLOSED when cut short or absent, body, what followed the response)."""
    final = re.search(rb"HTTP/1\.1 ([2-9]\d\d)[^\r\n]*\r\n", data)
    if not data.startswith(b"HTTP/1.1 ") or final is None:
        return CLOSED, b"", b""
    head, sep, rest = data[final.start() :].partition(b"\r\n\r\n")
    if not sep:
        return CLOSED, b"", b""
    status = int(final.group(1))
    fields = head.lower()
    if method == b"HEAD" or status in (204, 304):
        return status, b"", rest
    if b"\r\ntransfer-encoding: chunked" in fields:
        return _dechunked(status, rest)
    match = re.search(rb"\r\ncontent-length: *(\d+)", fields)
    if match is None:
        return status, rest, b""  # read until close
    length = int(match.group(1))
    if len(rest) < length:
        return CLOSED, rest, b""
    return status, rest[:length], rest[length:]


def _dechunked(status: int, rest: bytes) -> tuple[int, bytes, bytes]:
    body = b""
    while True:
        line, sep, rest = rest.partition(b"\r\n")
        if not sep or not re.fullmatch(rb"[0-9a-f]+", line):
            return CLOSED, body, b""
        size = int(line, 16)
        if size == 0:
            trailers_end = (
                rest.find(b"\r\n") if rest.startswith(b"\r\n") else rest.find(b"\r\n\r\n")
            )
            if trailers_end < 0:
                return CLOSED, body, b""
            return status, body, rest[trailers_end + 2 :]
        if len(rest) < size + 2:
            return CLOSED, body, b""
        body, rest = body + rest[:size], rest[size + 2 :]


def _exchange(proxy: ProxyProcess, origin: RecordingOrigin, case: Response) -> bytes:
    up = origin.authority
    first = b"%s http://%s/u/%s HTTP/1.1\r\nHost: %s\r\n" % (
        case.method,
        up,
        case.name.encode(),
        up,
    )
    with socket.create_connection((proxy.host, proxy.port), timeout=15) as s:
        if not case.then_second:
            s.sendall(first + b"Connection: close\r\n\r\n")
            return _read_all(s)
        s.sendall(first + b"\r\n")
        data = b""
        s.settimeout(10)
        while outcome(data)[0] == CLOSED and (chunk := s.recv(65536)):
            data += chunk
        s.sendall(b"GET http://%s/c HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (up, up))
        return data + _read_all(s)


def test_corpus_is_named_once() -> None:
    assert len({c.name for c in RESPONSES}) == len(RESPONSES) >= 60


@pytest.mark.parametrize("case", RESPONSES, ids=lambda c: c.name)
def test_hostile_response(
    case: Response, proxy: ProxyProcess, origin: RecordingOrigin, rss_ceiling: int
) -> None:
    data = _exchange(proxy, origin, case)
    status, body, after = outcome(data, case.method)
    assert status in case.statuses, (
        f"{case.name}: client got {status or 'a cut or no response'}: {data[:300]!r}"
    )
    if status in (502, 504) and case.errors:
        assert any(name.encode() in body for name in case.errors), f"{case.name}: page {body!r}"
    for never in case.never:
        assert never not in data, f"{case.name}: the client received {never!r}"
    if case.then_second:
        second = outcome(after)
        assert second[:2] == (200, b"ok"), f"{case.name}: second response {after[:300]!r}"
    assert rss_kib(proxy) < rss_ceiling, f"{case.name}: proxy memory grew past the budget"
    normal_request(proxy, origin)


# --- failing upstream TLS (through CONNECT and interception) ------------------------------


def _tls_peer(raw_server, ca: trustme.CA, *names: str, **cert_kwargs) -> RawServer:  # type: ignore[no-untyped-def]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names, **cert_kwargs).configure_cert(ctx)
    return raw_server(_answer_ok, tls=ctx)


def _answer_ok(conn: socket.socket) -> None:
    read_request_head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def _connect_get(proxy: ProxyProcess, port: int) -> tuple[int, bytes]:
    """CONNECT, TLS with the proxy's CA, one GET: the status and body the client sees."""
    client_ctx = ssl.create_default_context(cafile=str(proxy.confdir / "ca.pem"))
    with socket.create_connection((proxy.host, proxy.port), timeout=15) as raw:
        raw.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        answer = read_request_head(raw)
        if not answer.startswith(b"HTTP/1.1 200"):
            return int(answer.split(b" ")[1]), answer
        with client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = _read_all(tls)
    return outcome(data)[:2]


EXPIRED = {
    "not_before": dt.datetime(2019, 1, 1, tzinfo=dt.UTC),
    "not_after": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
}


def _other_ca_peer(raw_server, upstream_ca):  # type: ignore[no-untyped-def]
    return _tls_peer(raw_server, trustme.CA(), "127.0.0.1")


def _tls10_only_peer(raw_server, upstream_ca):  # type: ignore[no-untyped-def]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    upstream_ca.issue_cert("127.0.0.1").configure_cert(ctx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the point of this peer
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return raw_server(_answer_ok, tls=ctx)


def _plain_http_peer(raw_server, upstream_ca):  # type: ignore[no-untyped-def]
    def handle(conn: socket.socket) -> None:
        conn.recv(4096)  # the ClientHello, answered in plain HTTP
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    return raw_server(handle)


def _reset_in_handshake_peer(raw_server, upstream_ca):  # type: ignore[no-untyped-def]
    def handle(conn: socket.socket) -> None:
        conn.recv(4096)
        reset(conn)

    return raw_server(handle)


def _silent_in_handshake_peer(raw_server, upstream_ca):  # type: ignore[no-untyped-def]
    def handle(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.recv(4096)  # waits for the proxy to give up

    return raw_server(handle)


TLS_FAILURES = {
    "expired-certificate": lambda rs, ca: _tls_peer(rs, ca, "127.0.0.1", **EXPIRED),
    "wrong-host": lambda rs, ca: _tls_peer(rs, ca, "other.example"),
    "unknown-ca": _other_ca_peer,
    "tls10-only-server": _tls10_only_peer,
    "plain-http-on-tls-port": _plain_http_peer,
    "reset-in-handshake": _reset_in_handshake_peer,
    "silent-in-handshake": _silent_in_handshake_peer,
}


@pytest.mark.parametrize("name", list(TLS_FAILURES))
def test_failing_upstream_tls(
    name: str,
    proxy: ProxyProcess,
    origin: RecordingOrigin,
    raw_server,
    upstream_ca,  # type: ignore[no-untyped-def]
) -> None:
    peer = TLS_FAILURES[name](raw_server, upstream_ca)
    status, body = _connect_get(proxy, peer.port)
    # A failed upstream handshake is a 502 (504 when it timed out) inside the tunnel, or a
    # CONNECT refused up front once the proxy dials before answering it.
    assert status in (502, 504), f"{name}: {status} {body[:300]!r}"
    normal_request(proxy, origin)


def test_refused_connection(proxy: ProxyProcess, origin: RecordingOrigin) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with socket.create_connection((proxy.host, proxy.port), timeout=10) as c:
            # Connection: close, or reading to the end waits out the timeout on a kept-alive 502
            c.sendall(
                b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % port
            )
            status, body, _ = outcome(_read_all(c, 5))
    assert status == 502 and b"ConnectionRefusedError" in body
    normal_request(proxy, origin)


def test_failures_are_recorded_with_their_exception(proxy: ProxyProcess) -> None:
    """Every case the corpus saw fail is in the session with an exception event naming one of
    its classes; runs after the corpus (same module, file order)."""
    by_name = {case.name: case for case in RESPONSES}
    deadline = time.monotonic() + 10
    while True:
        store = Store(proxy.session, readonly=True)
        try:
            flows = [f for f in store.iter_flows() if "/u/" in f.request.path]
        finally:
            store.close()
        failed = {f.request.path.rsplit("/u/", 1)[1]: f.error for f in flows if f.error}
        wanted = {n for n, c in by_name.items() if c.statuses <= {502, 504} and c.errors}
        if wanted <= set(failed) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert wanted <= set(failed), f"not recorded as failed: {sorted(wanted - set(failed))}"
    for name, error in failed.items():
        if by_name[name].errors:
            assert error.exc_class in by_name[name].errors, f"{name}: {error.exc_class}"


def test_an_endless_body_is_dropped_when_the_client_leaves(
    proxy: ProxyProcess,
    origin: RecordingOrigin,
    raw_server,  # type: ignore[no-untyped-def]
) -> None:
    dropped = threading.Event()

    def endless(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
        block = b"e" * 65536
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                conn.sendall(block)
        except ConnectionError:  # reset or broken pipe: the proxy let go
            dropped.set()

    peer = raw_server(endless)
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
        s.sendall(f"GET {peer.url}/endless HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = 0
        while received < 1_000_000:
            received += len(s.recv(65536))
    assert dropped.wait(20), "the proxy still holds the upstream connection after the client left"
    normal_request(proxy, origin)
