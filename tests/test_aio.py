"""protocol.aio.AsyncHTTPConnection over real loopback sockets: exchanges, phases, backpressure."""

from __future__ import annotations

import asyncio
import json
import ssl
import tracemalloc

import pytest

import protocol
from protocol.aio import AsyncHTTPConnection, TunnelError
from protocol.events import Data, EndOfMessage
from protocol.headers import Headers
from tests.client_fixtures import (
    BIG,
    RecordingServer,
    UnansweredListener,
    connect_forwarder,
    ok_response,
    recv_until,
    serve_big_body,
)
from tests.conftest import needs_ipv6
from tests.servers import EchoServer


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def host_headers(port: int, *extra: tuple[bytes, bytes]) -> Headers:
    return Headers([(b"Host", b"127.0.0.1:%d" % port), *extra])


async def exchange(conn: AsyncHTTPConnection, method, target, headers, body=None):
    await conn.send_request(method, target, headers, body=body)
    response = await conn.receive_response()
    return response, await conn.read_body()


# -- exchanges --------------------------------------------------------------------


def test_get_and_keep_alive_on_one_connection(raw_server):
    server = RecordingServer(raw_server, respond=lambda req: ok_response(b"hi"))

    async def main():
        conn = AsyncHTTPConnection("127.0.0.1", server.port)
        await conn.connect()
        assert conn.tcp_connected and not conn.tls_established
        for i in range(3):
            response, body = await exchange(conn, b"GET", b"/%d" % i, host_headers(server.port))
            assert (response.status_code, response.reason, body) == (200, b"OK", b"hi")
            assert conn.reusable
            await conn.start_next_cycle()
        assert conn.sock_info["peername"][:2] == ("127.0.0.1", server.port)
        await conn.close()

    run(main())
    assert server.connections == 1
    assert [r.request_line for r in server.requests] == [
        b"GET /0 HTTP/1.1",
        b"GET /1 HTTP/1.1",
        b"GET /2 HTTP/1.1",
    ]


def test_echo_server_json_and_chunked_body(echo_server):
    async def main():
        async with AsyncHTTPConnection("127.0.0.1", echo_server.port) as conn:
            response, body = await exchange(
                conn, "POST", "/echo", host_headers(echo_server.port), body=b"payload"
            )
            assert json.loads(body)["body"] == "payload"
            await conn.start_next_cycle()
            await conn.send_request(b"GET", b"/chunked/2500", host_headers(echo_server.port))
            response = await conn.receive_response()
            assert response.headers.get(b"transfer-encoding") == b"chunked"
            chunks = [c async for c in conn.iter_body()]
            assert b"".join(chunks) == b"z" * 2500
            assert conn.reusable

    run(main())


def test_async_iterable_body_is_chunked_byte_for_byte(raw_server):
    server = RecordingServer(raw_server)

    async def parts():
        yield b"one"
        yield b""
        yield b"three"

    async def main():
        async with AsyncHTTPConnection("127.0.0.1", server.port) as conn:
            await exchange(conn, b"POST", b"/up", host_headers(server.port), body=parts())

    run(main())
    req = server.requests[0]
    assert req.header("Transfer-Encoding") == "chunked"
    assert req.body_wire == b"3\r\none\r\n5\r\nthree\r\n0\r\n\r\n"


def test_plain_iterable_body(raw_server):
    server = RecordingServer(raw_server)

    async def main():
        async with AsyncHTTPConnection("127.0.0.1", server.port) as conn:
            await exchange(conn, b"POST", b"/", host_headers(server.port), body=[b"ab", b"c"])

    run(main())
    assert server.requests[0].body_wire == b"2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"


def test_streaming_with_send_head_data_end_and_trailers(raw_server):
    server = RecordingServer(raw_server)

    async def main():
        async with AsyncHTTPConnection("127.0.0.1", server.port) as conn:
            headers = host_headers(server.port, (b"Transfer-Encoding", b"chunked"))
            await conn.send_head(b"PUT", b"/stream", headers)
            await conn.send_data(b"abc")
            await conn.send_end(Headers([(b"X-Sum", b"1")]))
            response = await conn.receive_response()
            assert await conn.read_body() == b"ok"
            return response

    assert run(main()).status_code == 200
    assert server.requests[0].body_wire == b"3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"


def test_caller_headers_are_not_modified_by_send_request(raw_server):
    server = RecordingServer(raw_server)
    headers = host_headers(server.port)

    async def main():
        async with AsyncHTTPConnection("127.0.0.1", server.port) as conn:
            await exchange(conn, b"POST", b"/", headers, body=b"12345")

    run(main())
    assert b"content-length" not in headers
    assert server.requests[0].header("Content-Length") == "5"


def test_response_trailers_head_and_informational(raw_server):
    answers = iter(
        [
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-T: v\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n",  # to a HEAD: no body
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ]
    )
    server = RecordingServer(raw_server, respond=lambda req: next(answers))
    interim: list[int] = []

    async def main():
        conn = AsyncHTTPConnection(
            "127.0.0.1", server.port, on_informational=lambda r: interim.append(r.status_code)
        )
        await conn.connect()
        response, body = await exchange(conn, b"GET", b"/", host_headers(server.port))
        assert (response.status_code, body) == (200, b"hi")
        assert conn.trailers.get(b"x-t") == b"v"
        for method, code in ((b"HEAD", 200), (b"GET", 204)):
            await conn.start_next_cycle()
            response, body = await exchange(conn, method, b"/", host_headers(server.port))
            assert (response.status_code, body) == (code, b"")
        await conn.close()

    run(main())
    assert interim == [100, 103]
    assert server.connections == 1


def test_connection_close_makes_it_not_reusable(raw_server):
    server = RecordingServer(
        raw_server, respond=lambda req: ok_response(extra=b"Connection: close\r\n")
    )

    async def main():
        async with AsyncHTTPConnection("127.0.0.1", server.port) as conn:
            await exchange(conn, b"GET", b"/", host_headers(server.port))
            assert not conn.reusable
            with pytest.raises(protocol.LocalProtocolError):
                await conn.start_next_cycle()

    run(main())


@needs_ipv6
def test_ipv6_loopback():
    server = EchoServer(host="::1")

    async def main():
        async with AsyncHTTPConnection("::1", server.port) as conn:
            headers = Headers([(b"Host", b"[::1]:%d" % server.port)])
            _response, body = await exchange(conn, b"GET", b"/bytes/4", headers)
            return body

    try:
        assert run(main()) == b"xxxx"
    finally:
        server.close()


# -- TLS --------------------------------------------------------------------------


def test_tls_exchange_and_session_facts(tls_echo_server, client_tls_context):
    async def main():
        conn = AsyncHTTPConnection(
            "127.0.0.1",
            tls_echo_server.port,
            ssl=client_tls_context,
            server_hostname="localhost",
        )
        await conn.connect()
        assert conn.tls_established
        _response, body = await exchange(conn, b"GET", b"/bytes/3", host_headers(1))
        facts = (conn.tls_version, conn.cipher, conn.peer_certificate)
        await conn.close()
        return body, facts

    body, (version, cipher, der) = run(main())
    assert body == b"xxx"
    assert version.startswith("TLS")
    assert cipher
    assert der[:1] == b"\x30"  # a DER SEQUENCE


def test_untrusted_certificate_fails_in_tls_phase(tls_echo_server):
    async def main():
        conn = AsyncHTTPConnection(
            "127.0.0.1", tls_echo_server.port, ssl=ssl.create_default_context()
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            await conn.connect()
        return conn

    conn = run(main())
    assert conn.phase == "tls"
    assert conn.tcp_connected and not conn.tls_established


def test_tls_handshake_timeout_is_timeout_error_in_tls_phase(raw_server, client_tls_context):
    def silent(sock):
        sock.settimeout(5)
        try:
            sock.recv(1 << 16)
            sock.recv(1)
        except OSError:
            pass

    server = raw_server(silent)

    async def main():
        conn = AsyncHTTPConnection(
            "127.0.0.1", server.port, ssl=client_tls_context, connect_timeout=0.3
        )
        with pytest.raises(TimeoutError, match="TLS handshake"):
            await conn.connect()
        return conn

    assert run(main()).phase == "tls"


# -- phases of failures -----------------------------------------------------------


def test_refused_connection_is_connect_phase():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

        async def main():
            conn = AsyncHTTPConnection("127.0.0.1", port)
            with pytest.raises(ConnectionRefusedError):
                await conn.connect()
            return conn

        conn = run(main())
    assert (conn.phase, conn.tcp_connected) == ("connect", False)


def test_connect_timeout_is_timeout_error_in_connect_phase():
    listener = UnansweredListener()

    async def main():
        conn = AsyncHTTPConnection("127.0.0.1", listener.port, connect_timeout=0.3)
        with pytest.raises(TimeoutError, match=r"connecting to 127\.0\.0\.1:"):
            await conn.connect()
        return conn

    try:
        conn = run(main())
    finally:
        listener.close()
    assert (conn.phase, conn.tcp_connected) == ("connect", False)


def answering(raw: bytes, *, hold: bool = False):
    def handler(sock):
        recv_until(sock, b"\r\n\r\n")
        if raw:
            sock.sendall(raw)
        if hold:
            sock.settimeout(5)
            try:
                sock.recv(1)
            except OSError:
                pass

    return handler


async def failing_exchange(port: int, **kw) -> tuple[AsyncHTTPConnection, BaseException]:
    conn = AsyncHTTPConnection("127.0.0.1", port, **kw)
    await conn.connect()
    try:
        await exchange(conn, b"GET", b"/", host_headers(port))
    except Exception as exc:
        return conn, exc
    finally:
        await conn.close()
    raise AssertionError("the exchange should have failed")


@pytest.mark.parametrize(
    ("raw", "exc_type", "phase"),
    [
        (b"garbage\r\n\r\n", protocol.BadStatusLine, "status line"),
        (b"", protocol.RemoteDisconnected, "status line"),
        (b"HTTP/9.9 200 OK\r\n\r\n", protocol.UnknownProtocol, "status line"),
        (b"HTTP/1.1 200 " + b"x" * 70000, protocol.LineTooLong, "status line"),
        (b"HTTP/1.1 200 OK\r\nX: 1\r\n", protocol.RemoteDisconnected, "headers"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 101 + b"\r\n", protocol.HTTPException, "headers"),
        (b"HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n", protocol.RemoteProtocolError, "headers"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            protocol.IncompleteRead,
            "body",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            protocol.RemoteProtocolError,
            "body",
        ),
    ],
)
def test_errors_name_their_phase(raw_server, raw, exc_type, phase):
    server = raw_server(answering(raw))
    conn, exc = run(failing_exchange(server.port))
    assert isinstance(exc, exc_type), exc
    assert conn.phase == phase


def test_read_timeout_waiting_for_status_line(raw_server):
    server = raw_server(answering(b"", hold=True))
    conn, exc = run(failing_exchange(server.port, read_timeout=0.2))
    assert isinstance(exc, TimeoutError)
    assert "status line" in str(exc)
    assert conn.phase == "status line"


def test_read_timeout_in_body(raw_server):
    server = raw_server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", hold=True))
    conn, exc = run(failing_exchange(server.port, read_timeout=0.2))
    assert isinstance(exc, TimeoutError)
    assert conn.phase == "body"


def test_send_to_a_peer_that_went_away_fails_in_send_phase(raw_server):
    from tests.servers import reset

    def handler(sock):
        recv_until(sock, b"\r\n\r\n")
        reset(sock)

    server = raw_server(handler)

    async def main():
        conn = AsyncHTTPConnection("127.0.0.1", server.port)
        await conn.connect()
        headers = host_headers(server.port, (b"Content-Length", b"%d" % (64 << 20)))
        await conn.send_head(b"PUT", b"/", headers)
        block = b"s" * (1 << 20)
        with pytest.raises(ConnectionError):
            for _ in range(64):
                await conn.send_data(block)
                await asyncio.sleep(0.01)  # let the reset arrive
        phase = conn.phase
        conn.abort()
        return phase

    assert run(main()) == "send"


def test_local_misuse_is_a_local_protocol_error(echo_server):
    async def main():
        async with AsyncHTTPConnection("127.0.0.1", echo_server.port) as conn:
            with pytest.raises(protocol.LocalProtocolError, match="invalid header name"):
                await conn.send_head(b"GET", b"/", Headers([(b"Bad Name", b"x")]))
            with pytest.raises(ValueError):
                await conn.send_head(b"GET", b"/a b", Headers())

    run(main())


def test_using_an_unconnected_connection_is_a_clear_error():
    async def main():
        conn = AsyncHTTPConnection("127.0.0.1", 9)
        with pytest.raises(ConnectionError, match="call connect"):
            await conn.send_request(b"GET", b"/", Headers([(b"Host", b"x")]))

    run(main())


# -- backpressure -----------------------------------------------------------------


def test_64_mib_download_streams_with_bounded_memory(raw_server):
    server = raw_server(serve_big_body)

    async def main():
        async with AsyncHTTPConnection("127.0.0.1", server.port) as conn:
            await conn.send_request(b"GET", b"/big", host_headers(server.port))
            await conn.receive_response()
            total = 0
            tracemalloc.start()
            try:
                async for chunk in conn.iter_body():
                    total += len(chunk)
                    if total % (8 << 20) < len(chunk):
                        await asyncio.sleep(0.01)  # a slow consumer: the socket must pause
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            return total, peak

    total, peak = run(main())
    assert total == BIG
    assert peak < 4 * 1024 * 1024


def test_upload_waits_for_drain_against_a_slow_reader(raw_server):
    def handler(sock):
        data = recv_until(sock, b"\r\n\r\n")
        received = len(data.split(b"\r\n\r\n", 1)[1])
        while received < 16 << 20:
            chunk = sock.recv(256 * 1024)
            if not chunk:
                return
            received += len(chunk)
        sock.sendall(ok_response())

    server = raw_server(handler)

    async def main():
        conn = AsyncHTTPConnection("127.0.0.1", server.port)
        await conn.connect()
        headers = host_headers(server.port, (b"Content-Length", b"%d" % (16 << 20)))
        await conn.send_head(b"PUT", b"/", headers)
        high = 0
        block = b"u" * (1 << 20)
        for _ in range(16):
            await conn.send_data(block)
            high = max(high, conn._writer.transport.get_write_buffer_size())
        await conn.send_end()
        response = await conn.receive_response()
        await conn.read_body()
        await conn.close()
        return response.status_code, high

    status, high = run(main())
    assert status == 200
    assert high <= 2 << 20  # drained between blocks: never the whole body queued


# -- tunnels ----------------------------------------------------------------------


def test_open_tunnel_then_plain_http(raw_server, echo_server):
    seen: list[bytes] = []
    proxy = raw_server(connect_forwarder(seen))

    async def main():
        async with AsyncHTTPConnection("127.0.0.1", proxy.port) as conn:
            answer = await conn.open_tunnel("127.0.0.1", echo_server.port)
            assert answer.status_code == 200
            _response, body = await exchange(
                conn, b"GET", b"/bytes/6", host_headers(echo_server.port)
            )
            return body

    assert run(main()) == b"xxxxxx"
    assert seen[0].startswith(b"CONNECT 127.0.0.1:%d HTTP/1.1" % echo_server.port)


def test_open_tunnel_then_tls(raw_server, tls_echo_server, client_tls_context):
    proxy = raw_server(connect_forwarder([]))

    async def main():
        async with AsyncHTTPConnection("127.0.0.1", proxy.port) as conn:
            await conn.open_tunnel("localhost", tls_echo_server.port)
            await conn.start_tls(client_tls_context, "localhost")
            assert conn.tls_established
            _response, body = await exchange(conn, b"GET", b"/bytes/2", host_headers(1))
            return body

    assert run(main()) == b"xx"


def test_refused_tunnel_is_tunnel_error_with_the_response(raw_server):
    def handler(sock):
        recv_until(sock, b"\r\n\r\n")
        sock.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")

    proxy = raw_server(handler)

    async def main():
        async with AsyncHTTPConnection("127.0.0.1", proxy.port) as conn:
            with pytest.raises(TunnelError, match="407 Proxy Authentication Required") as info:
                await conn.open_tunnel("example.test", 443, Headers([(b"X-Auth", b"1")]))
            return info.value.response.status_code

    assert run(main()) == 407


def test_bytes_that_came_with_the_tunnel_answer_are_the_far_ends(raw_server):
    def proxy(sock):
        recv_until(sock, b"\r\n\r\n")
        sock.sendall(b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
        recv_until(sock, b"\r\n\r\n")
        sock.sendall(b"ok")

    server = raw_server(proxy)

    async def main():
        async with AsyncHTTPConnection("127.0.0.1", server.port) as conn:
            await conn.open_tunnel("far.test", 80)
            return await exchange(conn, b"GET", b"/", Headers([(b"Host", b"far.test")]))

    response, body = run(main())
    assert (response.status_code, body) == (200, b"ok")


def test_tls_after_a_tunnel_refuses_bytes_sent_ahead_of_the_handshake(
    raw_server, client_tls_context
):
    def proxy(sock):
        recv_until(sock, b"\r\n\r\n")
        sock.sendall(b"HTTP/1.1 200 OK\r\n\r\nnot tls")
        sock.settimeout(5)
        recv_until(sock, b"never", limit=1)

    server = raw_server(proxy)

    async def main():
        async with AsyncHTTPConnection("127.0.0.1", server.port) as conn:
            await conn.open_tunnel("far.test", 443)
            with pytest.raises(protocol.RemoteProtocolError, match="before the TLS handshake"):
                await conn.start_tls(client_tls_context, "far.test")
            return conn.phase

    assert run(main()) == "tls"


# -- switching protocols ------------------------------------------------------------


def test_detach_after_101_hands_over_the_raw_stream_and_early_bytes(raw_server):
    def upgrading(sock):
        recv_until(sock, b"\r\n\r\n")
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly"
        )
        sock.sendall(recv_until(sock, b"!"))

    server = raw_server(upgrading)

    async def main():
        conn = AsyncHTTPConnection("127.0.0.1", server.port)
        await conn.connect()
        headers = host_headers(server.port, (b"Connection", b"Upgrade"), (b"Upgrade", b"echo"))
        await conn.send_request(b"GET", b"/", headers)
        response = await conn.receive_response()
        assert [chunk async for chunk in conn.iter_body()] == []  # no HTTP body after a 101
        reader, writer, leftover = conn.detach()
        writer.write(b"raw bytes!")
        echoed = await reader.readexactly(len(b"raw bytes!"))
        writer.close()
        with pytest.raises(ConnectionError, match="call connect"):
            conn.detach()  # the streams were handed over once
        return response.status_code, leftover, echoed

    assert run(main()) == (101, b"early", b"raw bytes!")


# -- the proxy's needs: watchdog, batching, interim limit -------------------------


class CountingWatchdog:
    """A stand-in for a shared deadline keeper: fails armed reads that outlive their time."""

    def __init__(self) -> None:
        self.armed: dict[asyncio.StreamReader, asyncio.TimerHandle] = {}
        self.arms = 0

    def arm(self, reader: asyncio.StreamReader, seconds: float) -> None:
        self.arms += 1
        loop = asyncio.get_running_loop()
        expire = lambda: reader.set_exception(TimeoutError("timed out"))  # noqa: E731
        self.armed[reader] = loop.call_later(seconds, expire)

    def disarm(self, reader: asyncio.StreamReader) -> None:
        self.armed.pop(reader).cancel()


def test_a_shared_watchdog_keeps_the_read_timeout(raw_server):
    server = raw_server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", hold=True))
    watchdog = CountingWatchdog()
    conn, exc = run(failing_exchange(server.port, read_timeout=0.2, watchdog=watchdog))
    assert isinstance(exc, TimeoutError)
    assert "no data for 0.2 s while waiting for the body from 127.0.0.1:" in str(exc)
    assert conn.phase == "body"
    assert watchdog.arms >= 2 and not watchdog.armed  # every read armed, every one disarmed


def test_body_events_without_waiting_then_read_more(raw_server):
    server = RecordingServer(
        raw_server,
        respond=lambda req: (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
        ),
    )

    async def main():
        async with AsyncHTTPConnection("127.0.0.1", server.port) as conn:
            await conn.send_request(b"GET", b"/", host_headers(server.port))
            await conn.receive_response()
            events = []
            for _ in range(20):  # bounded: the whole body is a few reads at most
                event = conn.body_event_nowait()
                if event is None:
                    await conn.read_more()
                    continue
                events.append(event)
                if isinstance(event, EndOfMessage):
                    break
            return events, conn.reusable, conn.keep_alive

    events, reusable, keep_alive = run(main())
    assert b"".join(e.data for e in events if isinstance(e, Data)) == b"abc"
    assert isinstance(events[-1], EndOfMessage)
    assert reusable and keep_alive


def test_too_many_interim_responses_is_a_protocol_error_in_headers(raw_server):
    server = raw_server(answering(b"HTTP/1.1 102 Processing\r\n\r\n" * 60, hold=True))
    seen: list[int] = []

    async def main():
        conn = AsyncHTTPConnection("127.0.0.1", server.port)
        await conn.connect()
        await conn.send_request(b"GET", b"/", host_headers(server.port))
        with pytest.raises(protocol.RemoteProtocolError, match="more than 50 interim"):
            await conn.receive_response(lambda r: seen.append(r.status_code))
        conn.abort()
        return conn.phase

    assert run(main()) == "headers"
    assert seen == [102] * 50


def test_read_timeout_is_per_read_not_per_body(raw_server):
    import time

    def trickle(sock):
        recv_until(sock, b"\r\n\r\n")
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
        for _ in range(6):  # 6 x 0.3 s: longer than the timeout, each gap well inside it
            time.sleep(0.3)
            sock.sendall(b"t")

    server = raw_server(trickle)

    async def main():
        async with AsyncHTTPConnection("127.0.0.1", server.port, read_timeout=1.5) as conn:
            return await exchange(conn, b"GET", b"/", host_headers(server.port))

    _response, body = run(main())
    assert body == b"t" * 6
