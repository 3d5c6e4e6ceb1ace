"""The proxy's upstream side over protocol.aio: HTTP/1.0 framing, tunnels, switched streams.

Raw sockets on both sides, so the exact bytes each peer gets are checked.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

from inspector.config import Mode
from tests.client_fixtures import recv_until
from tests.proxy_fixtures import LiveProxy, live_proxy, read_head, read_response
from tests.servers import EchoServer


def read_to_close(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """Everything the peer sends until it closes (bounded)."""
    data = b""
    while len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def dechunk(wire: bytes) -> tuple[bytes, bytes]:
    """(body, trailer block) of a complete chunked body."""
    body = b""
    while True:
        size_line, _, wire = wire.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return body, wire[:-2]
        body, wire = body + wire[:size], wire[size + 2 :]


def chunked_upstream(sock: socket.socket) -> None:
    recv_until(sock, b"\r\n\r\n")
    sock.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
        b"Trailer: X-Sum\r\n\r\n"
        b"5\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n"
    )
    recv_until(sock, b"never", limit=1)  # keep the connection open: the proxy must close


def test_http10_client_gets_a_chunked_response_dechunked_and_close_delimited(
    proxy: LiveProxy, raw_server
) -> None:
    upstream = raw_server(chunked_upstream)
    with proxy.connect() as s:
        s.sendall(b"GET http://127.0.0.1:%d/ HTTP/1.0\r\n\r\n" % upstream.port)
        answer = read_to_close(s)
    head, _, body = answer.partition(b"\r\n\r\n")
    fields = head.lower().split(b"\r\n")[1:]
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert not any(f.startswith((b"transfer-encoding:", b"content-length:")) for f in fields)
    assert b"connection: close" in fields
    assert body == b"hello, world"  # de-chunked, trailers dropped, ended by the close
    (flow,) = proxy.finished(1)
    assert flow.response.body.data == b"hello, world"  # type: ignore[union-attr]
    assert flow.response.trailers == [(b"X-Sum", b"12")]  # type: ignore[union-attr]


def test_http11_client_still_gets_chunks_and_trailers(proxy: LiveProxy, raw_server) -> None:
    upstream = raw_server(chunked_upstream)
    with proxy.connect() as s:
        s.sendall(b"GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n" % upstream.port)
        answer = recv_until(s, b"0\r\nX-Sum: 12\r\n\r\n")
    head, _, chunked = answer.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head.split(b"\r\n")
    assert dechunk(chunked) == (b"hello, world", b"X-Sum: 12\r\n")


def test_http10_connect_with_tunnel_bytes_gets_407_and_the_proxy_goes_on(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    with live_proxy(tmp_path, proxy_auth=("user", "pass")) as proxy:
        with proxy.connect(timeout=5) as s:
            # HTTP/1.0 CONNECT, and a TLS record before any answer: the request is
            # complete but the connection cannot carry another one.
            s.sendall(b"CONNECT example.test:443 HTTP/1.0\r\n\r\n\x16\x03\x01\x00\x05hello")
            answer = read_to_close(s)
        assert answer.startswith(b"HTTP/1.1 407 ")
        assert b"Connection: close\r\n" in answer
        with proxy.connect(timeout=5) as s:  # the event loop is free: the next client is served
            s.sendall(
                b"GET http://127.0.0.1:%d/status/200 HTTP/1.1\r\nHost: x\r\n"
                b"Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n" % echo_server.port
            )
            status, _, _ = read_response(s)
        assert status == 200


def test_ignored_host_tunnel_keeps_bytes_that_came_with_the_upstream_proxys_answer(
    tmp_path: Path, raw_server
) -> None:
    seen: list[bytes] = []

    def chained_proxy(sock: socket.socket) -> None:
        seen.append(recv_until(sock, b"\r\n\r\n"))
        # The far end speaks first (SMTP, SSH): its greeting shares a segment with the 200.
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\nhello from far\n")
        sock.sendall(recv_until(sock, b"\n"))

    chain = raw_server(chained_proxy)
    mode = Mode.parse(f"upstream:http://127.0.0.1:{chain.port}")
    with live_proxy(tmp_path, mode=mode, ignore_hosts=re.compile(r"far\.test")) as proxy:
        with proxy.connect(timeout=5) as s:
            s.sendall(b"CONNECT far.test:25 HTTP/1.1\r\nHost: far.test:25\r\n\r\n")
            assert read_head(s).startswith(b"HTTP/1.1 200 ")
            assert recv_until(s, b"\n") == b"hello from far\n"
            s.sendall(b"ping\n")
            assert recv_until(s, b"\n") == b"ping\n"
        (flow,) = proxy.finished(1)
    assert seen[0].startswith(b"CONNECT far.test:25 HTTP/1.1\r\n")
    assert flow.request.method == "CONNECT" and flow.error is None
    assert (flow.request.body.size, flow.response.body.size) == (5, 20)  # type: ignore[union-attr]


def test_upstream_proxy_refusing_connect_is_a_502_that_says_so(tmp_path: Path, raw_server) -> None:
    def refusing(sock: socket.socket) -> None:
        recv_until(sock, b"\r\n\r\n")
        sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    chain = raw_server(refusing)
    mode = Mode.parse(f"upstream:http://127.0.0.1:{chain.port}")
    with live_proxy(tmp_path, mode=mode, ignore_hosts=re.compile(r"far\.test")) as proxy:
        with proxy.connect(timeout=5) as s:
            s.sendall(b"CONNECT far.test:25 HTTP/1.1\r\nHost: far.test:25\r\n\r\n")
            status, _, body = read_response(s)
        (flow,) = proxy.finished(1)
    assert status == 502
    assert b"upstream far.test:25 failed during connect: TunnelError: the proxy " in body
    assert b"answered CONNECT far.test:25 with 403 Forbidden" in body
    assert (flow.error.exc_class, flow.error.phase) == ("TunnelError", "connect")  # type: ignore[union-attr]
