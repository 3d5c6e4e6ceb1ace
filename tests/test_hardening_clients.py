"""Hostile clients: a corpus of malformed and smuggling-shaped requests thrown at the proxy.

For each case the proxy must answer with one of the expected statuses (and close
after an error) or forward the request safely, must never forward an ambiguous
message upstream, and must serve a normal request right afterwards.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from inspector.store import Store
from tests.proxy_process import ProxyProcess
from tests.servers import EchoServer

CLOSED = 0  # pseudo-status: the proxy closed the connection without answering
UP = b"{UP}"  # replaced by the upstream's host:port


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expect: frozenset[int]
    forwards: bool = False  # may the upstream see (one) request?
    half_close: bool = False  # shut down our sending side after the data (client went away)

    @property
    def rejects(self) -> bool:
        return not self.forwards


def case(
    name: str, data: bytes, *expect: int, forwards: bool = False, half_close: bool = False
) -> Case:
    return Case(name, data, frozenset(expect), forwards, half_close)


def req(head: bytes, body: bytes = b"") -> bytes:
    return head.replace(b"\n", b"\r\n") + b"\r\n" + body


GET = b"GET http://{UP}/echo HTTP/1.1\nHost: {UP}\n"
POST = b"POST http://{UP}/echo HTTP/1.1\nHost: {UP}\n"

CORPUS = [
    # --- request smuggling vectors ---
    case(
        "cl-and-te",
        req(POST + b"Content-Length: 4\nTransfer-Encoding: chunked\n", b"0\r\n\r\n"),
        400,
    ),
    case(
        "te-and-cl",
        req(POST + b"Transfer-Encoding: chunked\nContent-Length: 4\n", b"0\r\n\r\n"),
        400,
    ),
    case(
        "duplicate-differing-cl",
        req(POST + b"Content-Length: 5\nContent-Length: 6\n", b"hello!"),
        400,
    ),
    case("cl-list-differing", req(POST + b"Content-Length: 5, 6\n", b"hello!"), 400),
    case("cl-plus-sign", req(POST + b"Content-Length: +5\n", b"hello"), 400),
    case("cl-hex", req(POST + b"Content-Length: 0x5\n", b"hello"), 400),
    case("cl-negative", req(POST + b"Content-Length: -1\n", b"hello"), 400),
    case("cl-overflow", req(POST + b"Content-Length: 99999999999999999999999999\n"), 400, 413),
    case("cl-with-space-inside", req(POST + b"Content-Length: 1 0\n", b"helloworld"), 400),
    case("te-identity", req(POST + b"Transfer-Encoding: identity\n", b"hello"), 400, 501),
    case("te-unknown", req(POST + b"Transfer-Encoding: xchunked\n", b"0\r\n\r\n"), 400, 501),
    case(
        "te-chunked-not-last",
        req(POST + b"Transfer-Encoding: chunked, gzip\n", b"0\r\n\r\n"),
        400,
        501,
    ),
    case(
        "te-two-fields",
        req(POST + b"Transfer-Encoding: chunked\nTransfer-Encoding: identity\n", b"0\r\n\r\n"),
        400,
        501,
    ),
    case("te-space-before-colon", req(POST + b"Transfer-Encoding : chunked\n", b"0\r\n\r\n"), 400),
    case("te-vertical-tab", req(POST + b"Transfer-Encoding: chunked\x0b\n", b"0\r\n\r\n"), 400),
    case("te-nul", req(POST + b"Transfer-Encoding: chun\x00ked\n", b"0\r\n\r\n"), 400),
    case("te-obs-fold", req(POST + b"Transfer-Encoding:\n chunked\n", b"0\r\n\r\n"), 400),
    case("obs-fold", req(GET + b"X-Folded: a\n b\n"), 400),
    case(
        "te-in-http10",
        req(
            b"POST http://{UP}/echo HTTP/1.0\nHost: {UP}\nTransfer-Encoding: chunked\n",
            b"0\r\n\r\n",
        ),
        400,
        200,
        forwards=True,
    ),
    case(
        "te-uppercase",
        req(POST + b"Transfer-Encoding: CHUNKED\n", b"5\r\nhello\r\n0\r\n\r\n"),
        200,
        forwards=True,
    ),
    case(
        "te-tab-ows",
        req(POST + b"Transfer-Encoding:\tchunked\n", b"5\r\nhello\r\n0\r\n\r\n"),
        200,
        forwards=True,
    ),
    # --- bad chunks ---
    case(
        "chunk-negative",
        req(POST + b"Transfer-Encoding: chunked\n", b"-1\r\nx\r\n0\r\n\r\n"),
        400,
        CLOSED,
        502,
        forwards=True,
    ),
    case(
        "chunk-overflow",
        req(POST + b"Transfer-Encoding: chunked\n", b"ffffffffffffffffffffff\r\nx\r\n"),
        400,
        CLOSED,
        502,
        forwards=True,
    ),
    case(
        "chunk-not-hex",
        req(POST + b"Transfer-Encoding: chunked\n", b"zz\r\nx\r\n0\r\n\r\n"),
        400,
        CLOSED,
        502,
        forwards=True,
    ),
    case(
        "chunk-0x-prefix",
        req(POST + b"Transfer-Encoding: chunked\n", b"0x5\r\nhello\r\n0\r\n\r\n"),
        400,
        CLOSED,
        502,
        forwards=True,
    ),
    case(
        "chunk-size-junk",
        req(POST + b"Transfer-Encoding: chunked\n", b"5 x\r\nhello\r\n0\r\n\r\n"),
        400,
        CLOSED,
        502,
        forwards=True,
    ),
    case(
        "chunk-missing-crlf",
        req(POST + b"Transfer-Encoding: chunked\n", b"5\r\nhelloXX0\r\n\r\n"),
        400,
        CLOSED,
        502,
        forwards=True,
    ),
    case(
        "chunk-huge-then-close",
        req(POST + b"Transfer-Encoding: chunked\n", b"fffffffff\r\nabc"),
        400,
        413,
        CLOSED,
        502,
        forwards=True,
        half_close=True,
    ),
    case(
        "chunk-ext-control",
        req(POST + b"Transfer-Encoding: chunked\n", b"5;a=\x01\r\nhello\r\n0\r\n\r\n"),
        400,
        CLOSED,
        502,
        forwards=True,
    ),
    case(
        "chunk-bare-lf",
        req(POST + b"Transfer-Encoding: chunked\n", b"5\nhello\n0\n\n"),
        400,
        CLOSED,
        502,
        forwards=True,
    ),
    # --- line endings, NUL and control bytes ---
    case("bare-lf-everywhere", GET + b"\n", 400, CLOSED),
    case("bare-cr-in-header", req(GET + b"X-A: a\rb\n"), 400),
    case(
        "mixed-line-ends", b"GET http://{UP}/echo HTTP/1.1\r\nHost: {UP}\nX: y\r\n\r\n", 400, CLOSED
    ),
    case("nul-in-value", req(GET + b"X-A: a\x00b\n"), 400),
    case("nul-in-target", req(b"GET http://{UP}/a\x00b HTTP/1.1\nHost: {UP}\n"), 400),
    case("control-in-name", req(GET + b"X-\x01A: b\n"), 400),
    case("del-in-value", req(GET + b"X-A: a\x7fb\n"), 400),
    case("non-token-name", req(GET + b"X@A: b\n"), 400),
    case("empty-name", req(GET + b": b\n"), 400),
    case("no-colon", req(GET + b"NoColonHere\n"), 400),
    # --- size limits ---
    case(
        "overlong-request-line",
        req(b"GET http://{UP}/" + b"a" * 70000 + b" HTTP/1.1\nHost: {UP}\n"),
        414,
        400,
        CLOSED,
    ),
    case(
        "thousands-of-headers",
        req(GET + b"".join(b"X-H%d: v\n" % i for i in range(5000))),
        431,
        400,
        CLOSED,
    ),
    case("huge-header-value", req(GET + b"X-Big: " + b"v" * 100_000 + b"\n"), 431, 400, CLOSED),
    case(
        "big-header-block",
        req(GET + b"".join(b"X-M%d: %s\n" % (i, b"m" * 1000) for i in range(90))),
        431,
        400,
        CLOSED,
    ),
    # --- methods ---
    case("method-with-space", req(b"G ET http://{UP}/ HTTP/1.1\nHost: {UP}\n"), 400),
    case("method-with-nul", req(b"GET\x00 http://{UP}/ HTTP/1.1\nHost: {UP}\n"), 400),
    case("method-not-token", req(b"GE(T http://{UP}/ HTTP/1.1\nHost: {UP}\n"), 400),
    case("method-empty", req(b" http://{UP}/ HTTP/1.1\nHost: {UP}\n"), 400),
    case(
        "method-lowercase", req(b"get http://{UP}/ HTTP/1.1\nHost: {UP}\n"), 501, 400, forwards=True
    ),
    case(
        "method-overlong",
        req(b"A" * 2000 + b" http://{UP}/ HTTP/1.1\nHost: {UP}\n"),
        400,
        414,
        501,
        forwards=True,
    ),
    # --- request targets ---
    case("userinfo-in-target", req(b"GET http://user:pw@{UP}/ HTTP/1.1\nHost: {UP}\n"), 400),
    case("space-in-target", req(b"GET http://{UP}/a b HTTP/1.1\nHost: {UP}\n"), 400),
    case("non-ascii-target", req(b"GET http://{UP}/\xc3\xa9 HTTP/1.1\nHost: {UP}\n"), 400),
    case("origin-form-to-proxy", req(b"GET /echo HTTP/1.1\nHost: {UP}\n"), 400),
    case("asterisk-form", req(b"OPTIONS * HTTP/1.1\nHost: {UP}\n"), 400),
    case("authority-form-with-get", req(b"GET {UP} HTTP/1.1\nHost: {UP}\n"), 400),
    case("absolute-bad-port", req(b"GET http://127.0.0.1:99999/ HTTP/1.1\nHost: 127.0.0.1\n"), 400),
    case("absolute-ftp-scheme", req(b"GET ftp://{UP}/ HTTP/1.1\nHost: {UP}\n"), 400, 501),
    case("absolute-empty-host", req(b"GET http:///x HTTP/1.1\nHost: {UP}\n"), 400),
    case("two-host-headers", req(GET + b"Host: other.example\n"), 400),
    case("host-with-control", req(b"GET http://{UP}/ HTTP/1.1\nHost: a\x01b\n"), 400),
    # --- CONNECT oddities ---
    case("connect-no-port", req(b"CONNECT example.test HTTP/1.1\nHost: example.test\n"), 400),
    case("connect-with-url", req(b"CONNECT http://{UP}/ HTTP/1.1\nHost: {UP}\n"), 400),
    case("connect-port-zero", req(b"CONNECT 127.0.0.1:0 HTTP/1.1\nHost: 127.0.0.1:0\n"), 400, 502),
    case("connect-port-too-big", req(b"CONNECT 127.0.0.1:70000 HTTP/1.1\nHost: 127.0.0.1\n"), 400),
    case("connect-userinfo", req(b"CONNECT user@127.0.0.1:443 HTTP/1.1\nHost: 127.0.0.1\n"), 400),
    # --- versions and other protocols on the HTTP/1 port ---
    case("http09", b"GET /\r\n", 400, 505, CLOSED),
    case("pri-not-http2-preface", b"PRI * HTTP/1.1\r\nHost: x\r\n\r\n", 400, CLOSED),
    case("http30", req(b"GET http://{UP}/ HTTP/3.0\nHost: {UP}\n"), 505, 400),
    case("bad-version-name", req(b"GET http://{UP}/ HTTX/1.1\nHost: {UP}\n"), 400),
    case("lowercase-version", req(b"GET http://{UP}/ http/1.1\nHost: {UP}\n"), 400),
    case(
        "tls-on-plain-port",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40,
        400,
        CLOSED,
    ),
    case("garbage-bytes", bytes(range(256)), 400, CLOSED),
    # --- well-formed but unusual: forwarded safely ---
    case(
        "expect-100-small",
        req(POST + b"Content-Length: 5\nExpect: 100-continue\n", b"hello"),
        200,
        100,
        forwards=True,
    ),
    case(
        "trailers",
        req(POST + b"Transfer-Encoding: chunked\n", b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
        200,
        forwards=True,
    ),
    case(
        "duplicate-identical-cl",
        req(POST + b"Content-Length: 5\nContent-Length: 5\n", b"hello"),
        200,
        400,
        forwards=True,
    ),
]


def _fill(data: bytes, upstream: EchoServer) -> bytes:
    return data.replace(UP, f"127.0.0.1:{upstream.port}".encode())


def _status_and_close(sock: socket.socket, timeout: float = 5.0) -> tuple[int, bool]:
    """Read the first response's status (CLOSED when none) and whether the proxy then closed."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    closed = False
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
        if b"\r\n\r\n" in data and not data.startswith(b"HTTP/1.1 100"):
            sock.settimeout(1.0)  # give the proxy a moment to close after an error
    if not data.startswith(b"HTTP/"):
        return CLOSED, closed
    return int(data.split(b" ", 2)[1]), closed


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    p = ProxyProcess(tmp_path_factory.mktemp("hardening"))
    yield p
    p.stop()


def _normal_request_works(proxy: ProxyProcess, upstream: EchoServer) -> None:
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
        s.sendall(
            _fill(
                req(b"GET http://{UP}/status/200 HTTP/1.1\nHost: {UP}\nConnection: close\n"),
                upstream,
            )
        )
        status, _ = _status_and_close(s)
    assert status == 200


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 60
    assert len({c.name for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("hostile", CORPUS, ids=lambda c: c.name)
def test_hostile_request(hostile: Case, proxy: ProxyProcess, upstream: EchoServer) -> None:
    before = len(upstream.received)
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
        try:
            s.sendall(_fill(hostile.data, upstream))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy may hang up before reading everything (overlong input)
        if hostile.half_close:
            s.shutdown(socket.SHUT_WR)
        status, closed = _status_and_close(s)
    assert status in hostile.expect, f"{hostile.name}: got {status or 'no response'}"
    if status >= 400 or status == CLOSED:
        assert closed, f"{hostile.name}: connection left open after {status}"
    if hostile.rejects:
        assert len(upstream.received) == before, f"{hostile.name} reached the upstream"
    else:
        assert len(upstream.received) - before <= 1
    _normal_request_works(proxy, upstream)


def test_pipelined_requests_are_answered_in_order(
    proxy: ProxyProcess, upstream: EchoServer
) -> None:
    paths = [b"/status/201", b"/status/202", b"/status/203"]
    data = b"".join(
        _fill(req(b"GET http://{UP}" + p + b" HTTP/1.1\nHost: {UP}\n"), upstream) for p in paths
    )
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
        s.sendall(
            data
            + _fill(req(b"GET http://{UP}/ HTTP/1.1\nHost: {UP}\nConnection: close\n"), upstream)
        )
        received = b""
        s.settimeout(10)
        while chunk := s.recv(65536):
            received += chunk
    # The echo bodies end in a bare LF, so find status lines anywhere, not only after CRLF.
    statuses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", received)]
    assert statuses == [201, 202, 203, 200]


def test_early_close_mid_body_leaves_the_proxy_serving(
    proxy: ProxyProcess, upstream: EchoServer
) -> None:
    for _ in range(5):
        with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
            s.sendall(_fill(req(POST + b"Content-Length: 100000\n", b"x" * 1000), upstream))
    _normal_request_works(proxy, upstream)


def test_expect_continue_with_a_huge_body_is_not_buffered(
    proxy: ProxyProcess, upstream: EchoServer
) -> None:
    head = req(POST + b"Content-Length: 10000000000\nExpect: 100-continue\n")
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
        s.sendall(_fill(head, upstream))
        s.settimeout(5)
        first = s.recv(65536)
    # Either the proxy lets the client go on (100) or refuses the size; it never hangs silent.
    assert first.startswith((b"HTTP/1.1 100", b"HTTP/1.1 413", b"HTTP/1.1 417"))
    _normal_request_works(proxy, upstream)


def test_session_records_only_real_exchanges(proxy: ProxyProcess) -> None:
    """Rejected garbage is answered, not recorded as a fake exchange with a made-up URL."""
    store = Store(proxy.session, readonly=True)
    try:
        hosts = {flow.request.host for flow in store.iter_flows()}
    finally:
        store.close()
    assert hosts <= {"127.0.0.1"}
