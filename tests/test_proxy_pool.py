"""The upstream pool (reuse, idle expiry, per-host limit, retry of a dead pooled
connection) and the client-side timeouts (idle keep-alive, slow request heads)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import requests

from inspector.config import Config
from inspector.flow import Timings
from inspector.proxy.modes import Target
from inspector.proxy.upstream import UpstreamPool
from protocol.headers import Headers
from tests.proxy_fixtures import live_proxy, read_response
from tests.servers import EchoServer, read_request_head


async def one_request(pool: UpstreamPool, target: Target) -> int:
    """GET / on a pooled connection, read the whole response, give the connection back."""
    up = await pool.acquire(pool.key_for(target), Timings())
    await up.send_request(b"GET", b"/status/200", Headers([(b"Host", b"x")]))
    head = await up.receive_response()
    assert await up.read_body() == b"status 200\n"
    pool.release(up)
    return head.status_code


def test_pool_reuses_and_expires_idle_connections(echo_server: EchoServer) -> None:
    async def scenario() -> list[int]:
        pool = UpstreamPool(Config(), idle_timeout=1.0)  # reuse must come within it, loaded or not
        target = Target("http", "127.0.0.1", echo_server.port, "/")
        opened = []
        await one_request(pool, target)
        await one_request(pool, target)
        opened.append(pool.opened)  # reused: still one
        await asyncio.sleep(1.2)
        await one_request(pool, target)
        opened.append(pool.opened)  # the idle one expired: a new one
        await pool.close()
        return opened

    assert asyncio.run(scenario()) == [1, 2]


def test_pool_limits_connections_per_host(echo_server: EchoServer) -> None:
    async def scenario() -> tuple[int, list[int]]:
        pool = UpstreamPool(Config(), max_per_host=2)
        target = Target("http", "127.0.0.1", echo_server.port, "/")
        statuses = await asyncio.gather(*(one_request(pool, target) for _ in range(8)))
        await pool.close()
        return pool.opened, list(statuses)

    opened, statuses = asyncio.run(scenario())
    assert statuses == [200] * 8
    assert opened <= 2


def test_dead_pooled_connection_is_retried_once(tmp_path: Path, raw_server) -> None:  # type: ignore[no-untyped-def]
    accepted = []

    def answer_once_then_drop(conn: socket.socket) -> None:
        accepted.append(conn)
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        read_request_head(conn)  # the next request on this connection...
        # ...is dropped unanswered, as by a server closing an idle keep-alive connection

    peer = raw_server(answer_once_then_drop)
    with live_proxy(tmp_path) as proxy, requests.Session() as s:
        s.proxies = {"http": proxy.url}
        first = s.get(f"{peer.url}/a", timeout=10)
        second = s.get(f"{peer.url}/b", timeout=10)
        flows = proxy.finished(2)
        opened = proxy.runtime.server.pool.opened
    assert (first.status_code, second.status_code) == (200, 200)
    assert all(f.error is None for f in flows)
    assert opened == 2 and len(accepted) == 2


def test_post_on_a_dead_pooled_connection_is_not_retried(tmp_path: Path, raw_server) -> None:  # type: ignore[no-untyped-def]
    def answer_once_then_drop(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        read_request_head(conn)

    peer = raw_server(answer_once_then_drop)
    with live_proxy(tmp_path) as proxy, requests.Session() as s:
        s.proxies = {"http": proxy.url}
        assert s.get(f"{peer.url}/a", timeout=10).status_code == 200
        assert s.post(f"{peer.url}/b", data=b"once", timeout=10).status_code == 502
        flows = proxy.finished(2)
    assert flows[1].error is not None and flows[1].error.phase == "status line"


def test_slow_request_head_gets_408(tmp_path: Path) -> None:
    with live_proxy(tmp_path) as proxy:
        server = proxy.runtime.server  # connections accepted from now on take the new context
        server.context = replace(server.context, head_timeout=0.3)
        with proxy.connect() as s:
            s.sendall(b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: slow")
            status, headers, body = read_response(s)
            assert s.recv(1) == b""
    assert status == 408 and headers["connection"] == "close"
    assert b"did not arrive in time" in body


def test_idle_keep_alive_client_is_closed(tmp_path: Path, echo_server: EchoServer) -> None:
    with live_proxy(tmp_path) as proxy:
        server = proxy.runtime.server
        server.context = replace(server.context, idle_timeout=1.0)  # the request must beat it
        with proxy.connect() as s:
            s.sendall(f"GET {echo_server.url}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert read_response(s)[0] == 200
            assert s.recv(1) == b""  # closed without a word once idle too long


def test_bytes_sent_on_an_idle_pooled_connection_answer_no_one(tmp_path: Path, raw_server) -> None:
    """An origin that speaks while its connection sits idle in the pool (a late second
    response) must not answer the next request with it: that connection is not reused."""
    spoke = threading.Event()
    connections: list[int] = []

    def origin(conn: socket.socket) -> None:
        connections.append(1)
        first = len(connections) == 1
        while read_request_head(conn):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            if first:
                time.sleep(0.2)  # then, unasked, a response nobody requested
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!")
                spoke.set()
                first = False

    peer = raw_server(origin)
    with live_proxy(tmp_path) as proxy, requests.Session() as s:
        s.proxies = {"http": proxy.url}
        assert s.get(f"{peer.url}/a", timeout=10).text == "ok"
        assert spoke.wait(5)
        time.sleep(0.2)  # the unasked bytes are in the proxy's socket buffer by now
        second = s.get(f"{peer.url}/b", timeout=10)
    assert second.text == "ok"
    assert len(connections) == 2  # the spoiled connection was left, a new one opened
