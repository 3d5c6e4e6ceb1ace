"""HTTP/2 through the proxy: clients speaking h2 (prior knowledge, ALPN), each stream one flow."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import h2.connection
import h2.events
import httpx
import pytest

from inspector.config import Endpoint, Mode
from inspector.proxy.http2 import PREFACE
from protocol.headers import Headers
from protocol.http2 import AsyncHTTP2Connection
from tests.h2_servers import HypercornServer, ScriptedH2Server
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


@pytest.mark.parametrize("size", [100_000, 1_000_000])  # inside the request window, past it
def test_request_body_without_length_reaches_an_http1_upstream(
    tmp_path: Path, echo_server: EchoServer, size: int
) -> None:
    with live_proxy(tmp_path, mode=_reverse_to(echo_server)) as proxy:
        [(status, _)] = asyncio.run(_h2_requests(proxy.port, ["/up"], body=b"x" * size))
        [flow] = proxy.finished(1)
    assert status == 200
    assert echo_server.received[-1].body == b"x" * size
    assert flow.request.body.size == size
    # the flow keeps what the client sent: no framing field it did not send
    names = {name.lower() for name, _ in flow.request.headers}
    assert b"transfer-encoding" not in names and b"content-length" not in names


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


@pytest.fixture(scope="module")
def h2_cert_files(upstream_ca, tmp_path_factory) -> tuple[Path, Path]:
    cert = upstream_ca.issue_cert("localhost", "127.0.0.1")
    d = tmp_path_factory.mktemp("h2proxycert")
    cert.private_key_pem.write_to_path(str(d / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    return d / "cert.pem", d / "key.pem"


@pytest.fixture(scope="module")
def h2_tls_upstream(h2_cert_files: tuple[Path, Path]) -> Iterator[HypercornServer]:
    server = HypercornServer(*h2_cert_files)
    yield server
    server.close()


def test_httpx_http2_through_an_intercepted_tunnel(
    tmp_path: Path, h2_tls_upstream: HypercornServer, upstream_ca_file: Path
) -> None:
    with live_proxy(tmp_path, upstream_ca=upstream_ca_file) as proxy:
        with httpx.Client(
            http2=True, proxy=proxy.url, verify=ssl.create_default_context(cafile=proxy.ca_file)
        ) as client:
            responses = [
                client.get(f"https://localhost:{h2_tls_upstream.port}/h{i}") for i in range(3)
            ]
        flows = proxy.finished(3)
    assert [r.http_version for r in responses] == ["HTTP/2"] * 3
    assert [r.text for r in responses] == [f"GET /h{i}? http/2 body=0" for i in range(3)]
    assert {(f.request.http_version, f.response.http_version) for f in flows} == {
        ("HTTP/2", "HTTP/2")
    }
    assert all(f.tls is not None and f.tls.upstream_alpn == "h2" for f in flows)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.parametrize("upstream", ["h2", "http1"])
def test_curl_gets_the_protocol_the_server_chose(
    tmp_path: Path,
    upstream: str,
    h2_tls_upstream: HypercornServer,
    tls_echo_server: EchoServer,
    upstream_ca_file: Path,
) -> None:
    port = h2_tls_upstream.port if upstream == "h2" else tls_echo_server.port
    with live_proxy(tmp_path, upstream_ca=upstream_ca_file) as proxy:
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "--http2",
                "-x",
                proxy.url,
                "--cacert",
                str(proxy.ca_file),
                "-o",
                "/dev/null",
                "-w",
                "%{http_version}",
                f"https://localhost:{port}/v",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        [flow] = proxy.finished(1)
    expected = "2" if upstream == "h2" else "1.1"
    assert out.stdout == expected, out.stderr
    assert flow.request.http_version == ("HTTP/2" if upstream == "h2" else "HTTP/1.1")


def test_no_http2_offers_only_http1(
    tmp_path: Path, h2_tls_upstream: HypercornServer, upstream_ca_file: Path
) -> None:
    with live_proxy(tmp_path, upstream_ca=upstream_ca_file, http2=False) as proxy:
        with httpx.Client(
            http2=True, proxy=proxy.url, verify=ssl.create_default_context(cafile=proxy.ca_file)
        ) as client:
            response = client.get(f"https://localhost:{h2_tls_upstream.port}/n")
        [flow] = proxy.finished(1)
    assert response.http_version == "HTTP/1.1"
    assert response.text == "GET /n? http/1.1 body=0"
    assert flow.response.http_version == "HTTP/1.1"


@pytest.mark.parametrize("http2", [True, False])
def test_preface_on_the_plain_port(tmp_path: Path, http2: bool) -> None:
    """The preface starts HTTP/2 (our SETTINGS come back), or with --no-http2 an error."""
    with live_proxy(tmp_path, http2=http2) as proxy, proxy.connect() as sock:
        sock.sendall(PREFACE)
        reply = sock.recv(65536)
    if http2:
        assert reply[3] == 0x04  # a SETTINGS frame: the server's connection preface
    else:
        assert reply.startswith((b"HTTP/1.1 400", b"HTTP/1.1 505"))


def test_incomplete_preface_times_out_like_a_slow_head(tmp_path: Path) -> None:
    with live_proxy(tmp_path) as proxy:
        server = proxy.runtime.server  # connections accepted from now on take the new context
        server.context = replace(server.context, head_timeout=0.3)
        with proxy.connect() as sock:
            sock.sendall(PREFACE[:10])
            assert sock.recv(65536) == b""  # closed once the head timeout passes


def test_hundred_concurrent_streams_through_the_proxy(
    tmp_path: Path, h2_upstream: HypercornServer
) -> None:
    mode = Mode("reverse", Endpoint("http", "127.0.0.1", h2_upstream.port))
    with live_proxy(tmp_path, mode=mode) as proxy:
        paths = [f"/c{i}" for i in range(100)]
        results = asyncio.run(_h2_requests(proxy.port, paths))
        flows = proxy.finished(100)
    assert [body for _, body in results] == [f"GET {p}? http/2 body=0".encode() for p in paths]
    assert len({f.id for f in flows}) == 100 and all(f.error is None for f in flows)


def test_streams_an_origin_goes_away_before_are_sent_again(tmp_path: Path) -> None:
    """An origin that ends its connection gracefully (GOAWAY naming the last stream it took,
    as nginx does after http2_max_requests) leaves the later streams unprocessed: those
    requests go again on a new connection instead of failing."""
    connections: list[h2.connection.H2Connection] = []

    def script(conn: h2.connection.H2Connection, event: h2.events.Event) -> None:
        if conn not in connections:
            connections.append(conn)
        if not isinstance(event, h2.events.RequestReceived):
            return
        first = conn is connections[0]
        if first and event.stream_id > 5:
            if not conn.state_machine.state.name.startswith("CLOSED"):
                conn.close_connection(error_code=0, last_stream_id=5)
            return  # not taken: the client may send it again
        conn.send_headers(event.stream_id, [(b":status", b"200")])
        conn.send_data(event.stream_id, b"ok", end_stream=True)

    server = ScriptedH2Server(script)
    try:
        mode = Mode("reverse", Endpoint("http", "127.0.0.1", server.port))
        with live_proxy(tmp_path, mode=mode) as proxy:
            asyncio.run(_h2_requests(proxy.port, ["/warm"]))  # the origin's connection is open
            results = asyncio.run(_h2_requests(proxy.port, [f"/g{i}" for i in range(8)]))
            flows = proxy.finished(9)
    finally:
        server.close()
    assert [status for status, _ in results] == [200] * 8
    assert all(f.error is None for f in flows)
    assert len(connections) == 2
