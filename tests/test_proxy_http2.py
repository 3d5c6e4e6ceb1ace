"""HTTP/2 through the proxy: clients speaking h2 (prior knowledge, ALPN), each stream one flow."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from inspector.config import Endpoint, Mode
from protocol.headers import Headers
from protocol.http2 import AsyncHTTP2Connection
from tests.h2_servers import HypercornServer
from tests.proxy_fixtures import live_proxy
from tests.servers import EchoServer


def _reverse_to(server: EchoServer) -> Mode:
    return Mode("reverse", Endpoint("http", "127.0.0.1", server.port))


async def _h2_requests(port: int, paths: list[str], body: bytes = b"") -> list[tuple[int, bytes]]:
    conn = AsyncHTTP2Connection("127.0.0.1", port, read_timeout=10)
    await conn.connect()

    async def one(path: str) -> tuple[int, bytes]:
        method = b"POST" if body else b"GET"
        stream = await conn.open_stream(
            method, b"http", b"example.test", path.encode(), Headers(), end_stream=not body
        )
        if body:
            await stream.send_data(body)
            await stream.send_end()
        response = await stream.receive_response()
        data = b"".join([c async for c in stream.iter_body()])
        return response.status_code, data

    try:
        return await asyncio.gather(*(one(p) for p in paths))
    finally:
        await conn.close()


def test_prior_knowledge_client_each_stream_is_a_flow(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    with live_proxy(tmp_path, mode=_reverse_to(echo_server)) as proxy:
        paths = [f"/s{i}" for i in range(20)]
        results = asyncio.run(_h2_requests(proxy.port, paths))
        flows = proxy.finished(20)
    assert [status for status, _ in results] == [200] * 20
    assert sorted(f.request.path for f in flows) == sorted(paths)
    assert {f.request.http_version for f in flows} == {"HTTP/2"}
    assert all(f.error is None for f in flows)


def test_request_body_without_length_reaches_an_http1_upstream(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    with live_proxy(tmp_path, mode=_reverse_to(echo_server)) as proxy:
        [(status, _)] = asyncio.run(_h2_requests(proxy.port, ["/up"], body=b"x" * 100_000))
        [flow] = proxy.finished(1)
    assert status == 200
    assert echo_server.received[-1].body == b"x" * 100_000
    assert flow.request.body.size == 100_000


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_prior_knowledge(tmp_path: Path, echo_server: EchoServer) -> None:
    with live_proxy(tmp_path, mode=_reverse_to(echo_server)) as proxy:
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "--http2-prior-knowledge",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
                f"http://127.0.0.1:{proxy.port}/curl",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        [flow] = proxy.finished(1)
    assert out.stdout == "2 200", out.stderr
    assert flow.request.http_version == "HTTP/2" and flow.response.status_code == 200


@pytest.fixture(scope="module")
def h2_upstream() -> Iterator[HypercornServer]:
    server = HypercornServer()
    yield server
    server.close()


def test_prior_knowledge_is_spoken_upstream_too(
    tmp_path: Path, h2_upstream: HypercornServer
) -> None:
    mode = Mode("reverse", Endpoint("http", "127.0.0.1", h2_upstream.port))
    with live_proxy(tmp_path, mode=mode) as proxy:
        results = asyncio.run(_h2_requests(proxy.port, [f"/u{i}" for i in range(10)], body=b"abc"))
        flows = proxy.finished(10)
    # hypercorn says which protocol reached it: HTTP/2 end to end
    assert sorted(body for _, body in results) == sorted(
        f"POST /u{i}? http/2 body=3".encode() for i in range(10)
    )
    assert {f.response.http_version for f in flows} == {"HTTP/2"}
