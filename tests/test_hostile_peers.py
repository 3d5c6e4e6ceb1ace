"""Slow and silent clients, broken client TLS, and WebSocket framing errors, table-driven.

Each entry drives one real socket conversation through the proxy process and says what
must follow: what the client gets, what the origin must (not) see, and, for all of
them, the proxy's memory within a fixed budget and a normal request served after.
WebSocket frames are relayed untouched (the endpoints judge them; the proxy records
what it can): the origin must receive exactly the bytes the client sent, and back.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.hostile_harness import (
    CLOSED,
    RecordingOrigin,
    normal_request,
    rss_kib,
    status_and_close,
)
from tests.proxy_process import ProxyProcess
from tests.servers import wait_until_read

RSS_BUDGET_KIB = 48 * 1024


@dataclass
class Bench:
    proxy: ProxyProcess
    origin: RecordingOrigin

    def connect(self, timeout: float = 10.0) -> socket.socket:
        return socket.create_connection((self.proxy.host, self.proxy.port), timeout=timeout)

    def get(self, path: str, extra: bytes = b"") -> bytes:
        up = self.origin.authority
        return b"GET http://%s%s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (up, path.encode(), up, extra)

    def requests_seen(self) -> int:
        return len(self.origin.seen)


@dataclass(frozen=True)
class Peer:
    category: str
    name: str
    drive: Callable[[Bench], None]  # talks to the proxy and asserts what must follow


def _frame(opcode: int, payload: bytes, *, mask: bool = True, first: int | None = None) -> bytes:
    head = bytes([0x80 | opcode if first is None else first])
    n, bit = len(payload), 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = b"\x11\x22\x33\x44"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


# --- slow and silent clients ---------------------------------------------------------------


def silent_connections(b: Bench) -> None:
    """Fifty connections that never send a byte do not keep others from being served."""
    before = b.origin.received
    quiet = [b.connect() for _ in range(50)]
    try:
        normal_request(b.proxy, b.origin)
    finally:
        for s in quiet:
            s.close()
    assert b.requests_seen() and b.origin.received > before  # only the normal request


def slowloris_head(b: Bench) -> None:
    """A head trickled byte by byte for a second is still answered."""
    with b.connect() as s:
        for byte in b.get("/slow-head", b"Connection: close\r\n"):
            s.sendall(bytes([byte]))
            time.sleep(0.008)
        status, _, _ = status_and_close(s)
    assert status == 200 and b"/slow-head " in b.origin.seen[-1].head


def slow_body(b: Bench) -> None:
    up = b.origin.authority
    head = b"POST http://%s/slow-body HTTP/1.1\r\nHost: %s\r\nContent-Length: 40\r\n\r\n" % (up, up)
    with b.connect() as s:
        s.sendall(head)
        for _ in range(40):
            s.sendall(b"x")
            time.sleep(0.02)
        status, _, _ = status_and_close(s)
    assert status == 200 and b.origin.seen[-1].body == b"x" * 40


def half_close_after_request(b: Bench) -> None:
    with b.connect() as s:
        s.sendall(b.get("/half-close"))
        s.shutdown(socket.SHUT_WR)
        status, _, _ = status_and_close(s)
    assert status == 200


def close_mid_head(b: Bench) -> None:
    before = b.origin.received
    with b.connect() as s:
        s.sendall(b.get("/never")[:30])
    normal_request(b.proxy, b.origin)
    assert b.origin.received - before == len(b.origin.seen[-1].raw), "the cut head went upstream"


def close_mid_body(b: Bench) -> None:
    """The origin never gets a complete request the client did not finish."""
    up = b.origin.authority
    with b.connect() as s:
        s.sendall(
            b"POST http://%s/cut HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\n" % (up, up)
        )
        s.sendall(b"x" * 1000)
    normal_request(b.proxy, b.origin)
    assert not any(b"/cut " in seen.head for seen in b.origin.seen)


def reset_after_request(b: Bench) -> None:
    s = b.connect()
    s.sendall(b.get("/reset"))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # RST


def pipelined_three(b: Bench) -> None:
    with b.connect() as s:
        s.sendall(b.get("/p1") + b.get("/p2") + b.get("/p3", b"Connection: close\r\n"))
        s.settimeout(10)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert [x.head.split(b" ")[1][-3:] for x in b.origin.seen[-3:]] == [b"/p1", b"/p2", b"/p3"]


def never_reads_a_big_response(b: Bench) -> None:
    """A client that stops reading a 64 MiB response: the proxy applies backpressure."""
    s = b.connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b.get("/u/big-body"))
    time.sleep(1.5)
    s.close()


def connection_churn(b: Bench) -> None:
    for _ in range(200):
        b.connect().close()


def expect_100_huge(b: Bench) -> None:
    up = b.origin.authority
    with b.connect() as s:
        s.sendall(
            b"POST http://%s/e HTTP/1.1\r\nHost: %s\r\nContent-Length: 10000000000\r\n"
            b"Expect: 100-continue\r\n\r\n" % (up, up)
        )
        s.settimeout(5)
        first = s.recv(65536)
    assert first.startswith((b"HTTP/1.1 100", b"HTTP/1.1 413", b"HTTP/1.1 417"))


# --- client-side TLS failures inside CONNECT ---------------------------------------------------


def _tunnel(b: Bench) -> socket.socket:
    s = b.connect()
    up = b.origin.authority
    s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (up, up))
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = s.recv(1)
        assert byte, f"closed in the CONNECT answer: {head!r}"
        head += byte
    assert head.startswith(b"HTTP/1.1 200"), head
    return s


def _no_request_reached(b: Bench, before: int) -> None:
    normal_request(b.proxy, b.origin)
    assert b.requests_seen() == before + 1, "a request reached the origin"


def _tls_client_fails(b: Bench, ctx: ssl.SSLContext) -> None:
    before = b.requests_seen()
    s = _tunnel(b)
    with pytest.raises((ssl.SSLError, OSError)):
        ctx.wrap_socket(s, server_hostname="127.0.0.1").sendall(b.get("/tls"))
    s.close()
    _no_request_reached(b, before)


def client_distrusts_the_ca(b: Bench) -> None:
    _tls_client_fails(b, ssl.create_default_context())  # the system store, not our CA


def client_tls10_only(b: Bench) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1
    _tls_client_fails(b, ctx)


def _raw_in_tunnel(
    b: Bench, data: bytes, *, linger: float = 0.0, half_close: bool = False
) -> tuple[int, bool]:
    before = b.requests_seen()
    with _tunnel(b) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        if linger:  # the client gives up on its own: what the proxy says does not matter
            wait_until_read(s)
            time.sleep(linger)
            status, closed = CLOSED, True
        else:
            status, closed, _ = status_and_close(s, timeout=4)
    _no_request_reached(b, before)
    return status, closed


def garbage_in_tunnel(b: Bench) -> None:
    """Neither TLS nor HTTP inside CONNECT: relayed raw like any tunnel, or refused."""
    noise = os.urandom(300).replace(b"\x16", b"\x17").replace(b" ", b"_") + b"\r\n\r\n"
    before = b.requests_seen()
    with _tunnel(b) as s:
        s.sendall(noise)
        s.shutdown(socket.SHUT_WR)
        status, closed, _ = status_and_close(s, timeout=4)
    assert status in (CLOSED, 400) and closed
    normal_request(b.proxy, b.origin)
    relayed = [seen.raw for seen in b.origin.seen[before:-1]]
    assert relayed in ([], [noise]), "the tunnel changed the bytes"


def truncated_client_hello(b: Bench) -> None:
    """A ClientHello cut short, then the client leaves: nothing reaches the origin."""
    _raw_in_tunnel(b, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(20), linger=0.3)


def sslv2_hello(b: Bench) -> None:
    hello = b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10" + os.urandom(37)
    status, closed = _raw_in_tunnel(b, hello, half_close=True)
    assert status in (CLOSED, 400) and closed


def plain_http_in_tunnel(b: Bench) -> None:
    """A client speaking plain HTTP inside CONNECT is served as HTTP, or refused: never hung."""
    up = b.origin.authority
    with _tunnel(b) as s:
        s.sendall(b"GET /in-tunnel HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % up)
        status, _, _ = status_and_close(s, timeout=6)
    assert status in (200, 400, CLOSED)
    if status == 200:
        assert b"/in-tunnel " in b.origin.seen[-1].head


# --- WebSocket framing errors, relayed untouched --------------------------------------------


def _ws_open(b: Bench, path: str) -> socket.socket:
    key = base64.b64encode(os.urandom(16))
    s = b.connect()
    s.sendall(
        b.get(
            path,
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\n",
        )
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, f"closed in the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def client_frames(data: bytes) -> Callable[[Bench], None]:
    def drive(b: Bench) -> None:
        count = len(b.origin.frames)
        with _ws_open(b, "/ws") as s:
            s.sendall(data)
            wait_until_read(s)  # closing first could reset the bytes away before the proxy reads
        assert b.origin.wait_for(lambda: len(b.origin.frames) > count), "no frames recorded"
        assert b.origin.frames[-1] == data, "the frames were not relayed untouched"

    return drive


def origin_frames(name: str, data: bytes) -> Callable[[Bench], None]:
    def drive(b: Bench) -> None:
        with _ws_open(b, f"/ws/{name}") as s:
            s.settimeout(5)
            got = b""
            while len(got) < len(data) and (chunk := s.recv(65536)):
                got += chunk
        assert got == data, "the origin's frames did not reach the client untouched"

    return drive


HUGE_LENGTH = bytes([0x82, 0xFF]) + (2**63 - 1).to_bytes(8, "big") + b"\x01\x02\x03\x04"
ORIGIN_FRAMES = {
    "masked-server-frame": _frame(1, b"masked", mask=True),
    "server-reserved-bits": _frame(1, b"rsv", mask=False, first=0xF1),
    "server-huge-length": bytes([0x82, 0x7F]) + (2**63 - 1).to_bytes(8, "big") + b"abc",
    "server-unknown-opcode": _frame(0xB, b"?", mask=False),
}


def _serve_frames(data: bytes) -> Callable[[socket.socket, bytes], None]:
    def handle(conn: socket.socket, head: bytes) -> None:
        conn.sendall(data)
        wait_until_read(conn)  # closing first could reset the bytes away before the proxy reads

    return handle


PEERS = [
    Peer("slow and silent clients", "silent-connections", silent_connections),
    Peer("slow and silent clients", "slowloris-head", slowloris_head),
    Peer("slow and silent clients", "slow-body", slow_body),
    Peer("slow and silent clients", "half-close-after-request", half_close_after_request),
    Peer("slow and silent clients", "close-mid-head", close_mid_head),
    Peer("slow and silent clients", "close-mid-body", close_mid_body),
    Peer("slow and silent clients", "reset-after-request", reset_after_request),
    Peer("slow and silent clients", "pipelined-three", pipelined_three),
    Peer("slow and silent clients", "never-reads-a-big-response", never_reads_a_big_response),
    Peer("slow and silent clients", "connection-churn", connection_churn),
    Peer("slow and silent clients", "expect-100-huge-length", expect_100_huge),
    Peer("client TLS failures", "client-distrusts-the-ca", client_distrusts_the_ca),
    Peer("client TLS failures", "client-tls10-only", client_tls10_only),
    Peer("client TLS failures", "garbage-in-tunnel", garbage_in_tunnel),
    Peer("client TLS failures", "truncated-client-hello", truncated_client_hello),
    Peer("client TLS failures", "sslv2-hello", sslv2_hello),
    Peer("client TLS failures", "plain-http-in-tunnel", plain_http_in_tunnel),
    *(
        Peer("WebSocket framing", name, client_frames(data))
        for name, data in {
            "unmasked-client-frame": _frame(1, b"hello", mask=False),
            "reserved-bits-set": _frame(1, b"rsv", first=0xF1),
            "unknown-opcode": _frame(0x3, b"?"),
            "fragmented-ping": _frame(9, b"p", first=0x09),
            "oversized-ping": _frame(9, b"p" * 126),
            "huge-length-header": HUGE_LENGTH,
            "continuation-first": _frame(0, b"orphan"),
            "invalid-utf8-text": _frame(1, b"\xff\xfe\xfd"),
            "close-one-byte-payload": _frame(8, b"\x03"),
            "non-minimal-length": bytes([0x81, 0xFE, 0x00, 0x05, 1, 2, 3, 4]) + b"hello",
            "eight-mib-frame": _frame(2, b"\x00" * (8 << 20)),
        }.items()
    ),
    *(
        Peer("WebSocket framing", name, origin_frames(name, data))
        for name, data in ORIGIN_FRAMES.items()
    ),
]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    from tests.corpus_responses import big_body

    handlers = {name: _serve_frames(data) for name, data in ORIGIN_FRAMES.items()}
    origin = RecordingOrigin({**handlers, "big-body": big_body})
    proxy = ProxyProcess(tmp_path_factory.mktemp("hostile-peers"), "--read-timeout", "3")
    yield Bench(proxy, origin)
    proxy.stop()
    origin.close()


@pytest.fixture(scope="module")
def rss_ceiling(bench: Bench) -> int:
    for _ in range(20):
        normal_request(bench.proxy, bench.origin, "/warm-up")
    return rss_kib(bench.proxy) + RSS_BUDGET_KIB


def test_table_is_named_once() -> None:
    assert len({p.name for p in PEERS}) == len(PEERS)


@pytest.mark.parametrize("peer", PEERS, ids=lambda p: p.name)
def test_hostile_peer(peer: Peer, bench: Bench, rss_ceiling: int) -> None:
    peer.drive(bench)
    assert rss_kib(bench.proxy) < rss_ceiling, f"{peer.name}: proxy memory grew past the budget"
    normal_request(bench.proxy, bench.origin)
