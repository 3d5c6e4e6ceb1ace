"""HTTP/2 error paths through the proxy: typed exception events, one stream's failure ends
only that stream, and a client breaking the protocol loses only its own connection."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest

from inspector.config import Endpoint, Mode
from inspector.proxy.http2 import PREFACE
from protocol.headers import Headers
from protocol.http2 import AsyncHTTP2Connection, StreamReset
from tests.h2_servers import ScriptedH2Server
from tests.proxy_fixtures import live_proxy


def _script(action: str) -> Callable[[h2.connection.H2Connection, h2.events.Event], None]:
    def script(conn: h2.connection.H2Connection, event: h2.events.Event) -> None:
        if not isinstance(event, h2.events.RequestReceived):
            return
        sid = event.stream_id
        path = dict(event.headers)[b":path"]
        if path == b"/ok":
            conn.send_headers(sid, [(b":status", b"200")])
            conn.send_data(sid, b"fine", end_stream=True)
        elif action == "rst":
            conn.reset_stream(sid, error_code=1)
        elif action == "goaway-mid":
            conn.send_headers(sid, [(b":status", b"200")])
            conn.send_data(sid, b"part")
            conn.close_connection(error_code=2, last_stream_id=0)

    return script


async def _fetch(port: int, paths: list[str]) -> list[tuple[object, bytes]]:
    conn = AsyncHTTP2Connection("127.0.0.1", port, read_timeout=10)
    await conn.connect()

    async def one(path: str) -> tuple[object, bytes]:
        stream = await conn.open_stream(
            b"GET", b"http", b"h", path.encode(), Headers(), end_stream=True
        )
        try:
            response = await stream.receive_response()
            body = b"".join([c async for c in stream.iter_body()])
            return response.status_code, body
        except StreamReset as e:
            return e, b""

    try:
        return await asyncio.gather(*(one(p) for p in paths))
    finally:
        await conn.close()


def _through_proxy(tmp_path: Path, action: str, paths: list[str]):
    server = ScriptedH2Server(_script(action))
    try:
        mode = Mode("reverse", Endpoint("http", "127.0.0.1", server.port))
        with live_proxy(tmp_path, mode=mode) as proxy:
            results = asyncio.run(_fetch(proxy.port, paths))
            flows = {f.request.path: f for f in proxy.finished(len(paths))}
        return results, flows
    finally:
        server.close()


def test_upstream_rst_stream_is_a_typed_event_and_a_502(tmp_path: Path) -> None:
    results, flows = _through_proxy(tmp_path, "rst", ["/bad", "/ok"])
    (status, body), ok = results
    assert status == 502 and b"StreamReset" in body and b"PROTOCOL_ERROR" in body
    assert ok == (200, b"fine")  # the other stream on the same connection is unharmed
    error = flows["/bad"].error
    assert error is not None
    assert (error.exc_class, error.message, error.phase) == (
        "StreamReset",
        "PROTOCOL_ERROR",
        "headers",
    )


def test_goaway_mid_stream_cuts_that_response(tmp_path: Path) -> None:
    results, flows = _through_proxy(tmp_path, "goaway-mid", ["/cut"])
    [(outcome, _)] = results
    assert isinstance(outcome, StreamReset)  # the response had started: cut visibly
    error = flows["/cut"].error
    assert error is not None and error.exc_class == "ConnectionTerminated"
    assert "INTERNAL_ERROR" in error.message and error.phase == "body"


def _raw_h2_client(port: int, frames: Callable[[h2.connection.H2Connection], bytes]) -> bytes:
    """Send what ``frames`` builds after a valid preface; everything the proxy answers."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(conn.data_to_send() + frames(conn))
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass  # it hung up while our excess bytes were still arriving
    return received


def _goaway_code(data: bytes) -> int | None:
    pos = 0
    while pos + 9 <= len(data):
        length = int.from_bytes(data[pos : pos + 3], "big")
        if data[pos + 3] == 0x7:  # GOAWAY: last stream id (4 bytes), error code (4 bytes)
            return int.from_bytes(data[pos + 13 : pos + 17], "big")
        pos += 9 + length
    return None


@pytest.mark.parametrize(
    ("name", "expected_code"),
    [("flow-control", 0x3), ("header-list-too-long", 0xB), ("malformed-frame", 0x6)],
)
def test_client_breaking_the_protocol_loses_its_connection(
    tmp_path: Path, name: str, expected_code: int, raw_server
) -> None:
    release = threading.Event()  # the upstream says nothing until the test is over
    silent = raw_server(lambda conn: conn.recv(65536) and release.wait(10))

    def frames(conn: h2.connection.H2Connection) -> bytes:
        if name == "flow-control":  # more DATA than the 1 MiB stream window we announced
            conn.send_headers(
                1, [(":method", "POST"), (":scheme", "http"), (":authority", "h"), (":path", "/")]
            )
            head = conn.data_to_send()
            frame = (16384).to_bytes(3, "big") + b"\x00\x00" + (1).to_bytes(4, "big") + b"x" * 16384
            return head + frame * 72
        if name == "header-list-too-long":
            conn.send_headers(
                1,
                [
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":authority", "h"),
                    (":path", "/"),
                    ("x-big", "v" * 200_000),
                ],
                end_stream=True,
            )
            return conn.data_to_send()
        return b"\x00\x00\x03\x04\x00\x00\x00\x00\x00abc"  # a SETTINGS frame of 3 bytes

    # The upstream never answers, so the stream stays open while its body arrives.
    mode = Mode("reverse", Endpoint("http", "127.0.0.1", silent.port))
    with live_proxy(tmp_path, mode=mode) as proxy:
        try:
            received = _raw_h2_client(proxy.port, frames)
        finally:
            release.set()
        with proxy.connect() as s:  # the proxy still serves new connections
            s.sendall(PREFACE)
            alive = s.recv(9)
    assert received[3] == 0x04  # our SETTINGS came first
    assert _goaway_code(received) == expected_code  # FLOW_CONTROL, ENHANCE_YOUR_CALM, FRAME_SIZE
    assert alive[3] == 0x04
