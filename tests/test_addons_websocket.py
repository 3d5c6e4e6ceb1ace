"""The ``websocket_message`` hook end to end: a real WebSocket server and client
(the ``websockets`` package) on loopback, the proxy in reverse mode between them."""

from __future__ import annotations

import asyncio
import base64
import os
import queue
import socket
import ssl
import textwrap
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from inspector.config import Endpoint, Mode
from inspector.filters import parse
from inspector.flow import Phase
from inspector.render import flow_line
from inspector.store import Store
from inspector.tui.changes_view import changes_view
from inspector.tui.views import websocket_view
from tests.proxy_fixtures import LiveProxy, live_proxy, read_head
from tests.proxy_process import ProxyProcess
from tests.test_proxy_websocket import accept_upgrade, frame

ROOT = Path(__file__).parents[1]


class WsServer:
    """A real WebSocket server (``websockets``) on its own thread and loop.

    It answers each text message ``m`` with ``echo: m`` and each binary one ``b`` with
    ``b"echo:" + b``, and keeps what it received and the close code it got."""

    def __init__(
        self, compression: str | None = "deflate", tls: ssl.SSLContext | None = None
    ) -> None:
        self.received: list[str | bytes] = []
        self.close_codes: list[int | None] = []
        self.done = threading.Event()  # a connection ended
        self._compression = compression
        self._tls = tls
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the WebSocket server did not start"

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        kwargs: dict[str, Any] = {"compression": self._compression, "ssl": self._tls}
        async with serve(self._handler, "127.0.0.1", 0, **kwargs) as server:
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[index]
            self._ready.set()
            await self._stop.wait()

    async def _handler(self, ws: ServerConnection) -> None:
        try:
            async for message in ws:
                self.received.append(message)
                if isinstance(message, str):
                    await ws.send(f"echo: {message}")
                else:
                    await ws.send(b"echo:" + message)
        except ConnectionClosed:
            pass
        finally:
            self.close_codes.append(ws.close_code)
            self.done.set()

    def close(self) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def ws_server() -> Iterator[WsServer]:
    server = WsServer()
    yield server
    server.close()


def addon(tmp_path: Path, source: str, name: str = "ws_addon.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


@contextmanager
def ws_proxy(
    tmp_path: Path, server: WsServer, *scripts: Path, **options: Any
) -> Iterator[LiveProxy]:
    mode = Mode("reverse", Endpoint("http", "127.0.0.1", server.port))
    with live_proxy(tmp_path, mode=mode, scripts=scripts, **options) as proxy:
        yield proxy


def talk(
    through: LiveProxy, conversation: Callable[[ClientConnection], Awaitable[Any]], **kwargs: Any
) -> Any:
    """Run ``conversation`` on a ``websockets`` client connected through the proxy."""

    kwargs.setdefault("proxy", None)  # reverse mode: connect to the proxy as the server

    async def main() -> Any:
        url = kwargs.pop("url", f"ws://127.0.0.1:{through.port}/chat")
        async with connect(url, **kwargs) as ws:
            return await asyncio.wait_for(conversation(ws), 15)

    return asyncio.run(main())


async def exchange(ws: ClientConnection, *messages: str | bytes) -> list[str | bytes]:
    """Send each message and wait for its echo."""
    answers = []
    for message in messages:
        await ws.send(message)
        answers.append(await ws.recv())
    return answers


REWRITE = """\
    def websocket_message(flow, message):
        if message.from_client and message.is_text:
            message.text = message.text.upper()
        elif not message.is_text:
            message.content = message.content[::-1]
        else:
            message.text = message.text + " (seen by the proxy)"
"""


def test_text_rewritten_both_ways_and_recorded(tmp_path: Path, ws_server: WsServer) -> None:
    script = addon(tmp_path, REWRITE)
    with ws_proxy(tmp_path, ws_server, script) as proxy:
        answers = talk(proxy, lambda ws: exchange(ws, "hello", "hello again", "hello"))
        (flow,) = proxy.finished(1)
    # permessage-deflate was negotiated (websockets' default): each direction is inflated
    # for the hook and deflated again, with context takeover across the three messages.
    assert flow.response is not None
    assert "permessage-deflate" in (flow.response.header("Sec-WebSocket-Extensions") or "")
    assert ws_server.received == ["HELLO", "HELLO AGAIN", "HELLO"]
    assert answers == [f"echo: {m} (seen by the proxy)" for m in ("HELLO", "HELLO AGAIN", "HELLO")]
    texts = [(m.from_client, m.head, m.original_head) for m in flow.websocket if m.opcode == 1]
    assert texts[:2] == [(True, b"HELLO", b"hello"), (False, b"echo: HELLO (seen by the proxy)",
                                                       b"echo: HELLO")]  # fmt: skip
    assert flow.modified_by == ["ws_addon.py:websocket_message"]
    assert flow_line(flow).endswith("  [modified]")
    assert flow.error is None
    assert parse("~websocket & ~modified")(flow) and not parse("!~websocket")(flow)
    assert "- 5 B  hello\n  + 5 B  HELLO" in changes_view(flow).plain
    assert "changed by an addon  HELLO AGAIN" in websocket_view(flow).plain


def test_binary_message_rewritten(tmp_path: Path, ws_server: WsServer) -> None:
    script = addon(tmp_path, REWRITE)
    payload = bytes(range(256)) * 4
    with ws_proxy(tmp_path, ws_server, script) as proxy:
        answers = talk(proxy, lambda ws: exchange(ws, payload), compression=None)
        (flow,) = proxy.finished(1)
    assert ws_server.received == [payload[::-1]]
    assert answers == [(b"echo:" + payload[::-1])[::-1]]
    sent = [m for m in flow.websocket if m.opcode == 2]
    assert [(m.size, m.original_size, m.dropped) for m in sent] == [
        (1024, 1024, False),
        (1029, 1029, False),
    ]


def test_dropped_message_is_not_sent(tmp_path: Path, ws_server: WsServer) -> None:
    script = addon(
        tmp_path,
        """\
        class DropSecrets:
            def websocket_message(self, flow, message):
                if message.from_client and "secret" in message.text:
                    message.drop()

        addons = [DropSecrets()]
        """,
    )

    async def conversation(ws: ClientConnection) -> list[str | bytes]:
        await ws.send("my secret")
        return await exchange(ws, "public")

    with ws_proxy(tmp_path, ws_server, script) as proxy:
        answers = talk(proxy, conversation)
        (flow,) = proxy.finished(1)
    assert ws_server.received == ["public"]
    assert answers == ["echo: public"]
    dropped = [m for m in flow.websocket if m.dropped]
    assert [(m.size, m.head, m.original_size, m.original_head) for m in dropped] == [
        (0, b"", 9, b"my secret")
    ]
    assert flow.modified_by == ["ws_addon.py:DropSecrets.websocket_message"]
    assert "9 B  dropped by an addon  my secret" in websocket_view(flow).plain
    assert "- 9 B  my secret\n  + dropped: not sent on" in changes_view(flow).plain


SEEN = """\
    seen = []

    def websocket_message(flow, message):
        seen.append(message.text)
        flow.comment = " | ".join(seen)
"""


def test_fragmented_message_reaches_the_hook_whole(tmp_path: Path, ws_server: WsServer) -> None:
    script = addon(tmp_path, SEEN)
    with ws_proxy(tmp_path, ws_server, script) as proxy:
        answers = talk(proxy, lambda ws: exchange(ws, ["frag", "men", "ted"]))
        (flow,) = proxy.finished(1)
    assert ws_server.received == ["fragmented"]
    assert answers == ["echo: fragmented"]
    assert flow.comment == "fragmented | echo: fragmented"
    assert not flow.modified  # looked at, not changed


def handshake(sock: socket.socket, path: str = "/chat") -> bytes:
    """A client's WebSocket upgrade by hand (no extensions offered); the 101's head."""
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return head


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """(first byte, payload) of one unmasked frame from the proxy."""
    first, second = recv_exactly(sock, 2)
    assert not second & 0x80, "the proxy masked a frame toward the client"
    n = second & 0x7F
    if n == 126:
        n = int.from_bytes(recv_exactly(sock, 2), "big")
    elif n == 127:
        n = int.from_bytes(recv_exactly(sock, 8), "big")
    return first, recv_exactly(sock, n)


def test_ping_between_fragments_goes_on_at_once(tmp_path: Path, ws_server: WsServer) -> None:
    """A ping inside a fragmented message is relayed (and answered) before the message
    is complete; the message then reaches the hook and the server whole."""
    script = addon(tmp_path, SEEN)
    mask = b"\x0a\x0b\x0c\x0d"
    with ws_proxy(tmp_path, ws_server, script) as proxy, proxy.connect() as s:
        handshake(s)
        s.sendall(frame(1, b"half ", fin=False, mask=mask) + frame(9, b"are you there", mask=mask))
        assert read_frame(s) == (0x8A, b"are you there")  # the server's pong, message pending
        s.sendall(frame(0, b"and half", mask=mask))
        assert read_frame(s) == (0x81, b"echo: half and half")
        s.sendall(frame(8, b"\x03\xe8", mask=mask))
        assert read_frame(s) == (0x88, b"\x03\xe8")
        s.close()
        (flow,) = proxy.finished(1)
    assert ws_server.received == ["half and half"]
    assert [(m.from_client, m.opcode, m.head) for m in flow.websocket][:4] == [
        (True, 9, b"are you there"),
        (False, 10, b"are you there"),
        (True, 1, b"half and half"),
        (False, 1, b"echo: half and half"),
    ]


def test_hook_exception_relays_the_message_unchanged(tmp_path: Path, ws_server: WsServer) -> None:
    script = addon(
        tmp_path,
        """\
        def websocket_message(flow, message):
            message.text = "half-done"
            raise RuntimeError("cannot read " + repr(message.from_client))
        """,
    )
    with ws_proxy(tmp_path, ws_server, script) as proxy:
        answers = talk(proxy, lambda ws: exchange(ws, "intact"))
        (flow,) = proxy.finished(1)
    assert ws_server.received == ["intact"]
    assert answers == ["echo: intact"]
    assert flow.error is not None and flow.error.phase is Phase.ADDON
    assert flow.error.exc_class == "RuntimeError"
    assert "cannot read True" in flow.error.message
    assert "ws_addon.py:3, in ws_addon.py:websocket_message" in flow.error.message
    assert not flow.modified and not any(m.modified for m in flow.websocket)


def test_async_hook_on_an_addon_object(tmp_path: Path, ws_server: WsServer) -> None:
    script = addon(
        tmp_path,
        """\
        import asyncio

        class Slow:
            async def websocket_message(self, flow, message):
                await asyncio.sleep(0.01)
                if message.from_client:
                    message.content = message.content + b"!"

        addons = [Slow()]
        """,
    )
    with ws_proxy(tmp_path, ws_server, script) as proxy:
        answers = talk(proxy, lambda ws: exchange(ws, "one", b"two"))
        (flow,) = proxy.finished(1)
    assert ws_server.received == ["one!", b"two!"]
    assert answers == ["echo: one!", b"echo:two!"]
    assert flow.modified_by == ["ws_addon.py:Slow.websocket_message"]


def test_message_over_the_limit_closes_1009(tmp_path: Path, ws_server: WsServer) -> None:
    script = addon(tmp_path, SEEN)

    async def conversation(ws: ClientConnection) -> tuple[list[str | bytes], int | None]:
        small = await exchange(ws, "small")
        await ws.send("x" * 5000)
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        return small, ws.close_code

    with ws_proxy(tmp_path, ws_server, script, body_limit=4096) as proxy:
        small, code = talk(proxy, conversation, compression=None)
        (flow,) = proxy.finished(1)
    assert ws_server.done.wait(10)
    assert small == ["echo: small"] and code == 1009
    assert ws_server.received == ["small"] and ws_server.close_codes == [1009]
    assert flow.error is not None and flow.error.exc_class == "MessageTooBig"
    assert "more than 4096 bytes" in flow.error.message and flow.error.phase is Phase.CLIENT


def test_modified_filter_and_dump_line(tmp_path: Path, ws_server: WsServer) -> None:
    script = addon(tmp_path, REWRITE)
    target = f"reverse:http://127.0.0.1:{ws_server.port}"
    proc = ProxyProcess(tmp_path, "--mode", target, "-s", str(script))
    try:

        async def main() -> list[str | bytes]:
            async with connect(proc.url.replace("http://", "ws://") + "/chat") as ws:
                return await exchange(ws, "dump me")

        answers = asyncio.run(main())
    finally:
        out, err = proc.stop()
    assert answers == ["echo: DUMP ME (seen by the proxy)"]
    (line,) = [ln for ln in out.splitlines() if "/chat" in ln]
    assert "-> 101 Switching Protocols" in line and line.endswith("  [modified]"), (out, err)
    store = Store(proc.session, readonly=True)
    try:
        assert store.count("~modified") == 1 and store.count("~websocket & ~modified") == 1
        (flow,) = list(store.iter_flows())
    finally:
        store.close()
    assert [m.original_head for m in flow.websocket if m.opcode == 1] == [
        b"dump me",
        b"echo: DUMP ME",
    ]


def raw_ws_peer(
    received: list[bytes], reply: bytes, expect: int
) -> Callable[[socket.socket], None]:
    """A WebSocket server by hand: handshake, keep ``expect`` bytes, send ``reply``."""

    def handler(conn: socket.socket) -> None:
        accept_upgrade(conn)
        received.append(recv_exactly(conn, expect))
        conn.sendall(reply)
        conn.recv(1)  # until the client goes

    return handler


def test_without_the_hook_bytes_pass_untouched(tmp_path: Path, raw_server) -> None:  # type: ignore[no-untyped-def]
    """An addon with other hooks only: the relay copies bytes, same masks, same fragments."""
    script = addon(tmp_path, "def request(flow):\n    flow.comment = 'seen'\n")
    mask = b"\x01\x02\x03\x04"
    sent = (
        frame(1, b"frag", fin=False, mask=mask)
        + frame(9, b"ping", mask=mask)
        + frame(0, b"ment", mask=mask)
        + frame(2, bytes(70000), mask=mask)  # a 64-bit length
    )
    reply = frame(1, b"a" * 300) + frame(2, b"\x00\xff", fin=False) + frame(0, b"!")
    received: list[bytes] = []
    peer = raw_server(raw_ws_peer(received, reply, len(sent)))
    mode = Mode("reverse", Endpoint("http", "127.0.0.1", peer.port))
    with live_proxy(tmp_path, mode=mode, scripts=(script,)) as proxy, proxy.connect() as s:
        handshake(s)
        s.sendall(sent)
        assert recv_exactly(s, len(reply)) == reply
        s.close()
        (flow,) = proxy.finished(1)
    assert received == [sent]
    assert flow.comment == "seen" and not flow.modified
    assert [(m.opcode, m.size) for m in flow.websocket] == [(9, 4), (1, 8), (2, 70000), (1, 300),
                                                             (2, 3)]  # fmt: skip


def test_with_the_hook_frames_are_masked_afresh(tmp_path: Path, raw_server) -> None:  # type: ignore[no-untyped-def]
    """Messages are framed again: one frame per message, a new mask toward the server,
    none toward the client; a 16-bit length both ways."""
    script = addon(tmp_path, SEEN)
    mask = b"\x01\x02\x03\x04"
    text = "é" * 100  # 200 bytes: a 16-bit length
    sent = frame(1, text[:50].encode(), fin=False, mask=mask) + frame(
        0, text[50:].encode(), mask=mask
    )
    reply = frame(1, b"b" * 200)
    received: list[bytes] = []
    peer = raw_server(raw_ws_peer(received, reply, 4 + 4 + 200))
    mode = Mode("reverse", Endpoint("http", "127.0.0.1", peer.port))
    with live_proxy(tmp_path, mode=mode, scripts=(script,)) as proxy, proxy.connect() as s:
        handshake(s)
        s.sendall(sent)
        assert read_frame(s) == (0x81, b"b" * 200)
        s.close()
        (flow,) = proxy.finished(1)
    (got,) = received
    assert got[:2] == b"\x81\xfe" and got[2:4] == (200).to_bytes(2, "big")
    key = got[4:8]
    assert bytes(b ^ key[i % 4] for i, b in enumerate(got[8:])) == text.encode()
    assert flow.comment == f"{text} | {'b' * 200}"


def test_examples_websocket_addon(tmp_path: Path, ws_server: WsServer) -> None:
    script = ROOT / "examples" / "websocket_messages.py"

    async def conversation(ws: ClientConnection) -> list[str | bytes]:
        await ws.send('{"type": "telemetry", "clicks": 3}')
        return await exchange(ws, '{"type": "login", "token": "s3cr3t"}', "plain text")

    with ws_proxy(tmp_path, ws_server, script) as proxy:
        answers = talk(proxy, conversation)
        (flow,) = proxy.finished(1)
    assert ws_server.received == ['{"type": "login", "token": "[redacted]"}', "plain text"]
    assert answers == ['echo: {"type": "login", "token": "[redacted]"}', "echo: plain text"]
    assert [m.dropped for m in flow.websocket if m.modified] == [True, False]


def test_wss_through_connect_is_rewritten(
    tmp_path: Path, server_tls_context: ssl.SSLContext, upstream_ca_file: Path
) -> None:
    """Regular mode: the client tunnels with CONNECT, the proxy intercepts the TLS and
    verifies the server's; the hook sees the messages inside, compressed and all."""
    server = WsServer(tls=server_tls_context)
    script = addon(tmp_path, REWRITE)
    try:
        with live_proxy(tmp_path, scripts=(script,), upstream_ca=upstream_ca_file) as proxy:
            trust = ssl.create_default_context(cafile=str(proxy.ca_file))
            answers = talk(
                proxy,
                lambda ws: exchange(ws, "over tls"),
                url=f"wss://localhost:{server.port}/chat",
                proxy=proxy.url,
                ssl=trust,
            )
            (flow,) = proxy.finished(1)
    finally:
        server.close()
    assert server.received == ["OVER TLS"]
    assert answers == ["echo: OVER TLS (seen by the proxy)"]
    assert flow.request.scheme == "https" and flow.modified
    # The closing handshake ends the client's TLS connection too (it cannot half-close):
    # the client does not wait out its close timeout.
    assert flow.timings.end is not None and flow.timings.end - flow.timings.start < 5


def test_bomb_inflating_past_the_limit_closes_1009(tmp_path: Path, ws_server: WsServer) -> None:
    """A compressed message small on the wire but over the limit once inflated."""
    script = addon(tmp_path, SEEN)

    async def conversation(ws: ClientConnection) -> int | None:
        await ws.send("0" * 200_000)  # about 200 bytes once deflated
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        return ws.close_code

    with ws_proxy(tmp_path, ws_server, script, body_limit=65536) as proxy:
        code = talk(proxy, conversation)
        (flow,) = proxy.finished(1)
    assert code == 1009 and ws_server.received == []
    assert flow.error is not None and "inflating to more than 65536 bytes" in flow.error.message


def test_origin_breaking_the_framing_closes_both_1002(tmp_path: Path, raw_server) -> None:  # type: ignore[no-untyped-def]
    """An origin sending a reserved opcode: both sides get close 1002, the flow says why."""
    script = addon(tmp_path, SEEN)
    received: list[bytes] = []
    peer = raw_server(raw_ws_peer(received, frame(3, b"what is this"), 2 + 4 + 2))
    mode = Mode("reverse", Endpoint("http", "127.0.0.1", peer.port))
    with live_proxy(tmp_path, mode=mode, scripts=(script,)) as proxy, proxy.connect() as s:
        handshake(s)
        s.sendall(frame(1, b"hi", mask=b"\x00\x00\x00\x00"))
        first, payload = read_frame(s)
        assert (first, payload[:2]) == (0x88, (1002).to_bytes(2, "big"))
        assert b"reserved opcode 0x3" in payload
        assert s.recv(1) == b""  # and the proxy is done sending
        s.close()
        (flow,) = proxy.finished(1)
    (got,) = received  # the client's message, masked afresh
    assert (
        got[:2] == b"\x81\x82" and bytes(b ^ got[2 + i % 4] for i, b in enumerate(got[6:])) == b"hi"
    )
    assert flow.error is not None and flow.error.exc_class == "FrameError"
    assert flow.error.phase is Phase.BODY and "from the upstream" in flow.error.message


def test_mitmproxy_style_hook_with_the_flow_only(tmp_path: Path, ws_server: WsServer) -> None:
    """mitmproxy calls ``websocket_message(flow)`` and the hook reads the message at hand
    as ``flow.websocket.messages[-1]``: such a script runs with its import changed."""
    script = addon(
        tmp_path,
        """\
        from inspector import http

        class Censor:
            def websocket_message(self, flow: http.HTTPFlow) -> None:
                assert flow.websocket is not None
                latest = flow.websocket.messages[-1]
                if latest.from_client and latest.content.startswith(b"hi"):
                    latest.content = b"hello" + latest.content[2:]
                if b"forbidden" in latest.content:
                    latest.drop()
                flow.comment = str(len(flow.websocket.messages))

        addons = [Censor()]
        """,
    )

    async def conversation(ws: ClientConnection) -> list[str | bytes]:
        await ws.send("forbidden words")
        return await exchange(ws, "hi there")

    with ws_proxy(tmp_path, ws_server, script) as proxy:
        answers = talk(proxy, conversation)
        (flow,) = proxy.finished(1)
    assert ws_server.received == ["hello there"] and answers == ["echo: hello there"]
    assert flow.comment == "3" and flow.error is None


def test_messages_kept_for_hooks_stay_within_the_limit(tmp_path: Path, ws_server: WsServer) -> None:
    script = addon(
        tmp_path,
        """\
        def websocket_message(flow):
            flow.comment += str(len(flow.websocket.messages))
        """,
    )
    with ws_proxy(tmp_path, ws_server, script, body_limit=4096) as proxy:
        talk(proxy, lambda ws: exchange(ws, "a" * 2000, "b" * 2000))
        (flow,) = proxy.finished(1)
    # 2,000 + 2,006 bytes fit in 4,096; a third message pushes the oldest out.
    assert flow.comment == "1222"


def unframe(data: bytes) -> list[tuple[int, bytes]]:
    """(first byte, unmasked payload) of each whole frame in ``data`` (a test's own reader)."""
    out = []
    while len(data) >= 2:
        n, at = data[1] & 0x7F, 2
        if n in (126, 127):
            size = 2 if n == 126 else 8
            n, at = int.from_bytes(data[2 : 2 + size], "big"), 2 + size
        key = data[at : at + 4] if data[1] & 0x80 else b"\0\0\0\0"
        at += 4 if data[1] & 0x80 else 0
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(data[at : at + n]))
        out.append((data[0], payload))
        data = data[at + n :]
    return out


MASK = b"\x09\x08\x07\x06"
HOSTILE = {  # the hostile-peer corpus's client frames; relayed messages, or a close code
    "unmasked-client-frame": (frame(1, b"hello"), [(0x81, b"hello")]),
    "reserved-bits-set": (bytes([0xF1, 0x83]) + MASK + b"rsv", 1002),
    "unknown-opcode": (frame(3, b"?", mask=MASK), 1002),
    "fragmented-ping": (frame(9, b"p", fin=False, mask=MASK), 1002),
    "oversized-ping": (frame(9, b"p" * 126, mask=MASK), 1002),
    "huge-length-header": (bytes([0x82, 0xFF]) + (2**63 - 1).to_bytes(8, "big") + MASK, 1009),
    "continuation-first": (frame(0, b"orphan", mask=MASK), 1002),
    "invalid-utf8-text": (frame(1, b"\xff\xfe\xfd", mask=MASK), [(0x81, b"\xff\xfe\xfd")]),
    "close-one-byte-payload": (frame(8, b"\x03", mask=MASK), [(0x88, b"\x03")]),
    "non-minimal-length": (
        bytes([0x81, 0xFE, 0, 5]) + frame(1, b"hello", mask=MASK)[2:],
        [(0x81, b"hello")],
    ),
    "eight-mib-frame": (frame(2, bytes(8 << 20), mask=MASK), 1009),
}


def test_hostile_client_frames_with_the_hook(tmp_path: Path, raw_server) -> None:  # type: ignore[no-untyped-def]
    """Each case of the hostile-peer corpus, with a hook reading every message as text:
    a message that can be relayed is (framed again, the hook's failure recorded), the rest
    is closed with the code RFC 6455 names, on both sides; the proxy serves on."""
    script = addon(tmp_path, "def websocket_message(flow, message):\n    message.text\n")
    got: queue.Queue[bytes] = queue.Queue()

    def origin(conn: socket.socket) -> None:
        accept_upgrade(conn)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        got.put(data)

    peer = raw_server(origin)
    mode = Mode("reverse", Endpoint("http", "127.0.0.1", peer.port))
    with live_proxy(tmp_path, mode=mode, scripts=(script,)) as proxy:
        for number, (name, (data, outcome)) in enumerate(HOSTILE.items(), 1):
            with proxy.connect() as s:
                handshake(s)
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                back = b""
                while chunk := s.recv(65536):
                    back += chunk
            at_origin = unframe(got.get(timeout=10))
            flow = proxy.finished(number)[-1]
            if isinstance(outcome, int):
                close = (0x88, outcome.to_bytes(2, "big"))
                assert [(b0, p[:2]) for b0, p in unframe(back)] == [close], name
                assert [(b0, p[:2]) for b0, p in at_origin] == [close], name
                assert flow.error is not None and flow.error.phase is Phase.CLIENT, name
            else:
                assert at_origin == outcome and back == b"", name
        assert proxy.finished(len(HOSTILE))[-1].error is not None  # the last: 1009
    errors = {f.error.exc_class for f in proxy.finished(len(HOSTILE)) if f.error is not None}
    assert errors == {"FrameError", "MessageTooBig", "UnicodeDecodeError"}


def test_frames_sent_with_the_upgrade_request(tmp_path: Path, ws_server: WsServer) -> None:
    """A client that does not wait for the 101: its first frames came with the request
    head (the connection layer hands them over) and are hooked like the rest."""
    script = addon(tmp_path, REWRITE)
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = (
        f"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    eager = frame(1, b"early", mask=MASK) + frame(1, b"bird", mask=MASK)
    with ws_proxy(tmp_path, ws_server, script) as proxy, proxy.connect() as s:
        s.sendall(upgrade + eager)
        assert read_head(s).startswith(b"HTTP/1.1 101 ")
        answers = [read_frame(s), read_frame(s)]
        s.sendall(frame(8, b"\x03\xe8", mask=MASK))
        assert read_frame(s) == (0x88, b"\x03\xe8")
        s.close()
        proxy.finished(1)
    assert ws_server.received == ["EARLY", "BIRD"]
    assert answers == [(0x81, b"echo: EARLY (seen by the proxy)"),
                       (0x81, b"echo: BIRD (seen by the proxy)")]  # fmt: skip


def test_changed_and_dropped_messages_survive_the_session_file(tmp_path: Path) -> None:
    from inspector.flow import Flow, FlowRequest, FlowResponse, WebSocketMessage

    flow = Flow(FlowRequest("GET", "http", "h", 80, "/ws"), response=FlowResponse(101))
    plain = WebSocketMessage(1.0, True, 1, 2, b"hi")
    changed = WebSocketMessage(2.0, False, 1, 2, b"HI", False, 5, b"hi \xff!")
    dropped = WebSocketMessage(3.0, True, 2, 0, b"", True, 3, b"\x00\x01\x02")
    flow.websocket = [plain, changed, dropped]
    flow.modified_by = ["a.py:websocket_message"]
    with Store(tmp_path / "s.db") as store:
        store.put(flow)
        store.flush()
        back = store.get(flow.id)
    assert back is not None and back.websocket == [plain, changed, dropped]
    assert [m.modified for m in back.websocket] == [False, True, True]


def test_wss_without_a_hook_ends_with_the_servers_close(
    tmp_path: Path, server_tls_context: ssl.SSLContext, upstream_ca_file: Path
) -> None:
    """The raw relay (no hook) over intercepted TLS: when the server hangs up after the
    closing handshake, the client's TLS connection is closed too (TLS cannot half-close),
    so the client does not wait out its close timeout (10 s for ``websockets``)."""
    server = WsServer(tls=server_tls_context)
    try:
        with live_proxy(tmp_path, upstream_ca=upstream_ca_file) as proxy:
            trust = ssl.create_default_context(cafile=str(proxy.ca_file))
            answers = talk(
                proxy,
                lambda ws: exchange(ws, "plain relay"),
                url=f"wss://localhost:{server.port}/chat",
                proxy=proxy.url,
                ssl=trust,
            )
            (flow,) = proxy.finished(1)
    finally:
        server.close()
    assert answers == ["echo: plain relay"] and not flow.modified
    assert flow.timings.end is not None and flow.timings.end - flow.timings.start < 5
