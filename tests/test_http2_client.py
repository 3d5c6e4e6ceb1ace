"""protocol.http2: the asyncio HTTP/2 client against hypercorn and scripted h2 peers."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import h2.connection
import h2.events
import pytest
import trustme

from protocol.headers import Headers
from protocol.http2 import AsyncHTTP2Connection, ConnectionTerminated, StreamReset
from protocol.http2_fields import request_head, to_http2
from tests.h2_servers import HypercornServer, ScriptedH2Server


@pytest.fixture(scope="module")
def cert_files(
    upstream_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    cert = upstream_ca.issue_cert("localhost", "127.0.0.1")
    d = tmp_path_factory.mktemp("h2cert")
    cert.private_key_pem.write_to_path(str(d / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    for extra in cert.cert_chain_pems[1:]:
        with open(d / "cert.pem", "ab") as f:
            f.write(extra.bytes())
    return d / "cert.pem", d / "key.pem"


@pytest.fixture(scope="module")
def hypercorn_tls(cert_files: tuple[Path, Path]) -> Iterator[HypercornServer]:
    server = HypercornServer(*cert_files)
    yield server
    server.close()


@pytest.fixture(scope="module")
def hypercorn_plain() -> Iterator[HypercornServer]:
    server = HypercornServer()
    yield server
    server.close()


@pytest.fixture
def h2_client_context(upstream_ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    upstream_ca.configure_trust(ctx)
    ctx.set_alpn_protocols(["h2"])
    return ctx


async def _get(conn: AsyncHTTP2Connection, path: bytes, body: bytes = b"") -> tuple[int, bytes]:
    stream = await conn.open_stream(
        b"POST" if body else b"GET", b"https", b"localhost", path, Headers(), end_stream=not body
    )
    if body:
        await stream.send_data(body)
        await stream.send_end()
    response = await stream.receive_response()
    data = b"".join([chunk async for chunk in stream.iter_body()])
    return response.status_code, data


def test_get_over_tls_with_alpn(
    hypercorn_tls: HypercornServer, h2_client_context: ssl.SSLContext
) -> None:
    async def main() -> tuple[int, bytes, bytes]:
        conn = AsyncHTTP2Connection(
            "127.0.0.1", hypercorn_tls.port, ssl=h2_client_context, server_hostname="localhost"
        )
        await conn.connect()
        stream = await conn.open_stream(
            b"GET", b"https", b"localhost", b"/a?b=c", Headers(), end_stream=True
        )
        response = await stream.receive_response()
        body = b"".join([c async for c in stream.iter_body()])
        await conn.close()
        return response.status_code, response.http_version, body

    status, version, body = asyncio.run(main())
    assert (status, version) == (200, b"2")
    assert body == b"GET /a?b=c http/2 body=0"


def test_prior_knowledge_on_plain_tcp(hypercorn_plain: HypercornServer) -> None:
    async def main() -> tuple[int, bytes]:
        conn = AsyncHTTP2Connection("127.0.0.1", hypercorn_plain.port)
        await conn.connect()
        try:
            return await _get(conn, b"/pk", body=b"hello")
        finally:
            await conn.close()

    assert asyncio.run(main()) == (200, b"POST /pk? http/2 body=5")


def test_hundred_concurrent_streams_on_one_connection(
    hypercorn_tls: HypercornServer, h2_client_context: ssl.SSLContext
) -> None:
    async def main() -> list[tuple[int, bytes]]:
        conn = AsyncHTTP2Connection(
            "127.0.0.1", hypercorn_tls.port, ssl=h2_client_context, server_hostname="localhost"
        )
        await conn.connect()
        try:
            return await asyncio.gather(*(_get(conn, f"/s{i}".encode()) for i in range(100)))
        finally:
            await conn.close()

    results = asyncio.run(main())
    assert [r[1] for r in results] == [f"GET /s{i}? http/2 body=0".encode() for i in range(100)]


def test_large_download_is_paced_by_the_consumer(
    hypercorn_tls: HypercornServer, h2_client_context: ssl.SSLContext
) -> None:
    size = 32 << 20

    async def main() -> tuple[int, int]:
        conn = AsyncHTTP2Connection(
            "127.0.0.1", hypercorn_tls.port, ssl=h2_client_context, server_hostname="localhost"
        )
        await conn.connect()
        stream = await conn.open_stream(
            b"GET", b"https", b"localhost", f"/big/{size}".encode(), Headers(), end_stream=True
        )
        await stream.receive_response()
        await asyncio.sleep(0.5)  # a consumer that stalls: the server must stop at the window
        buffered = sum(len(e.data) for e in stream._inbox if isinstance(e, h2.events.DataReceived))
        total = 0
        async for chunk in stream.iter_body():
            total += len(chunk)
        await conn.close()
        return buffered, total

    buffered, total = asyncio.run(main())
    assert total == size
    assert buffered <= (1 << 20) + 65536  # the stream window, not the body


def _respond_then(action: str):
    def script(conn: h2.connection.H2Connection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            sid = event.stream_id
            if action == "rst":
                conn.reset_stream(sid, error_code=1)
            elif action == "goaway-mid":
                conn.send_headers(sid, [(b":status", b"200")])
                conn.send_data(sid, b"part")
                conn.close_connection(error_code=2, last_stream_id=0)
            elif action == "trailers":
                conn.send_headers(
                    sid, [(b":status", b"200"), (b"content-type", b"application/grpc")]
                )
                conn.send_data(sid, b"\x00\x00\x00\x00\x00")
                conn.send_headers(
                    sid, [(b"grpc-status", b"5"), (b"grpc-message", b"nope")], end_stream=True
                )

    return script


def _run_scripted(action: str) -> tuple[object, object]:
    server = ScriptedH2Server(_respond_then(action))

    async def main() -> tuple[object, object]:
        conn = AsyncHTTP2Connection("127.0.0.1", server.port, read_timeout=5)
        await conn.connect()
        stream = await conn.open_stream(b"GET", b"http", b"h", b"/", Headers(), end_stream=True)
        try:
            response = await stream.receive_response()
            body = b"".join([c async for c in stream.iter_body()])
            return (response.status_code, body), stream.trailers
        except Exception as exc:  # the typed error is the result under test
            return exc, stream
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    finally:
        server.close()


def test_rst_stream_is_a_typed_error_with_the_code_by_name() -> None:
    exc, _ = _run_scripted("rst")
    assert isinstance(exc, StreamReset)
    assert str(exc) == "PROTOCOL_ERROR"


def test_goaway_mid_stream_fails_the_stream() -> None:
    exc, _ = _run_scripted("goaway-mid")
    assert isinstance(exc, ConnectionTerminated)
    assert "GOAWAY INTERNAL_ERROR" in str(exc)


def test_trailers_are_kept() -> None:
    (status, body), trailers = _run_scripted("trailers")
    assert status == 200 and body == b"\x00\x00\x00\x00\x00"
    assert trailers.get(b"grpc-status") == b"5"
    assert trailers.get(b"grpc-message") == b"nope"


def test_connection_specific_fields_are_dropped_for_http2() -> None:
    headers = Headers(
        [
            (b"Host", b"a"),
            (b"Connection", b"keep-alive, X-Hop"),
            (b"X-Hop", b"1"),
            (b"Keep-Alive", b"5"),
            (b"TE", b"gzip"),
            (b"Accept", b"*/*"),
            (b"Transfer-Encoding", b"chunked"),
        ]
    )
    assert to_http2(headers).raw == [(b"accept", b"*/*")]
    assert to_http2(Headers([(b"TE", b"trailers")])).raw == [(b"te", b"trailers")]


def test_request_head_from_pseudo_fields_adds_host() -> None:
    request, scheme, authority = request_head(
        [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"h:8443"),
            (b":path", b"/x"),
            (b"accept", b"*/*"),
        ]
    )
    assert (request.method, request.target, scheme, authority) == (
        b"GET",
        b"/x",
        b"https",
        b"h:8443",
    )
    assert request.headers.raw == [(b"host", b"h:8443"), (b"accept", b"*/*")]


def test_a_stream_with_no_answer_times_out_alone_after_read_timeout() -> None:
    """A stream the server never answers fails with TimeoutError after read_timeout (the
    connection's one deadline timer), while a stream answered meanwhile is unaffected."""

    def script(conn: h2.connection.H2Connection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived) and (b":path", b"/fast") in event.headers:
            conn.send_headers(event.stream_id, [(b":status", b"204")], end_stream=True)

    server = ScriptedH2Server(script)

    async def main() -> tuple[object, int, float]:
        conn = AsyncHTTP2Connection("127.0.0.1", server.port, read_timeout=0.5)
        await conn.connect()
        try:
            slow = await conn.open_stream(
                b"GET", b"http", b"h", b"/slow", Headers(), end_stream=True
            )
            fast = await conn.open_stream(
                b"GET", b"http", b"h", b"/fast", Headers(), end_stream=True
            )
            started = time.monotonic()
            answered = (await fast.receive_response()).status_code
            try:
                await slow.receive_response()
            except TimeoutError as exc:
                return exc, answered, time.monotonic() - started
            return None, answered, 0.0
        finally:
            await conn.close()

    try:
        exc, answered, waited = asyncio.run(main())
    finally:
        server.close()
    assert answered == 204
    assert isinstance(exc, TimeoutError)
    assert "for 0.5 s (stream 1)" in str(exc)
    assert 0.3 <= waited < 5
