"""WebSocket: the upgrade is relayed, bytes flow both ways untouched, messages are recorded."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
from pathlib import Path

from inspector.bus import EventKind
from inspector.proxy.websocket import FrameReader
from tests.proxy_fixtures import live_proxy, read_head
from tests.servers import read_request_head

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, *, mask: bytes | None = None, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mbit | 127]) + n.to_bytes(8, "big")
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def accept_upgrade(conn: socket.socket) -> None:
    """A server's side of the WebSocket handshake, by hand: read the upgrade, answer 101."""
    head = read_request_head(conn).decode("latin-1")
    key = next(
        ln.split(":", 1)[1].strip()
        for ln in head.split("\r\n")
        if ln.lower().startswith("sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    conn.sendall(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
    )


def ws_echo(conn: socket.socket) -> None:
    """A tiny WebSocket server: handshake, echo one text frame (unmasked), close."""
    accept_upgrade(conn)
    data = b""
    while len(data) < 2 or len(data) < 2 + 4 + (data[1] & 0x7F):
        data += conn.recv(4096)
    length = data[1] & 0x7F
    mask = data[2:6]
    text = bytes(b ^ mask[i % 4] for i, b in enumerate(data[6 : 6 + length]))
    conn.sendall(frame(1, b"echo: " + text) + frame(8, b"\x03\xe8"))
    conn.recv(4096)  # the client's close frame


def test_websocket_upgrade_is_relayed_and_recorded(tmp_path: Path, raw_server) -> None:  # type: ignore[no-untyped-def]
    peer = raw_server(ws_echo)
    with live_proxy(tmp_path) as proxy:
        key = base64.b64encode(os.urandom(16)).decode()
        with proxy.connect() as s:
            s.sendall(
                f"GET http://127.0.0.1:{peer.port}/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            head = read_head(s)
            assert head.startswith(b"HTTP/1.1 101 ")
            assert b"Upgrade: websocket" in head
            s.sendall(frame(1, b"hello proxy", mask=b"\x01\x02\x03\x04"))
            got = b""
            while len(got) < 2 + 17 + 4:
                chunk = s.recv(4096)
                assert chunk
                got += chunk
            assert got == frame(1, b"echo: hello proxy") + frame(8, b"\x03\xe8")
            s.sendall(frame(8, b"\x03\xe8", mask=b"\x05\x06\x07\x08"))
        (flow,) = proxy.finished(1)
        kinds = proxy.kinds(flow)
    assert flow.response is not None and flow.response.status_code == 101
    messages = [(m.from_client, m.opcode, m.size, m.head) for m in flow.websocket]
    assert messages == [
        (True, 1, 11, b"hello proxy"),
        (False, 1, 17, b"echo: hello proxy"),
        (False, 8, 2, b"\x03\xe8"),
        (True, 8, 2, b"\x03\xe8"),
    ]
    assert EventKind.WEBSOCKET in kinds and kinds[-1] is EventKind.RESPONSE


def test_frame_reader_fed_byte_by_byte_and_whole() -> None:
    mask = b"\x11\x22\x33\x44"
    payload = bytes(range(256)) * 300  # 76,800 bytes: a 64-bit length
    wire = (
        frame(2, payload, mask=mask)
        + frame(1, b"frag-", fin=False, mask=mask)
        + frame(9, b"ping", mask=mask)  # control frames may interleave with fragments
        + frame(0, b"ment", mask=mask)
    )
    whole = FrameReader(True, head_limit=64).feed(wire)
    reader = FrameReader(True, head_limit=64)
    split = [m for i in range(len(wire)) for m in reader.feed(wire[i : i + 1])]
    for messages in (whole, split):
        assert [(m.opcode, m.size, m.head) for m in messages] == [
            (2, len(payload), payload[:64]),
            (9, 4, b"ping"),
            (1, 9, b"frag-ment"),
        ]
