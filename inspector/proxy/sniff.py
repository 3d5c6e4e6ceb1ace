"""What a CONNECT tunnel carries: peek at the client's first bytes, parse a TLS ClientHello."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from dataclasses import dataclass

TLS_HANDSHAKE = 0x16
_HTTP_METHOD_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
MAX_CLIENT_HELLO = 16384 + 5


@dataclass(slots=True)
class ClientHello:
    sni: str | None = None
    alpn: list[str] | None = None


def looks_like_tls(first: bytes) -> bool:
    """A TLS handshake record (ClientHello) starts with 0x16 0x03."""
    return len(first) >= 2 and first[0] == TLS_HANDSHAKE and first[1] == 0x03


def looks_like_http(first: bytes) -> bool:
    """An HTTP/1.x request starts with an upper-case method token and a space."""
    head = first[:16]
    space = head.find(b" ")
    return space > 0 and all(c in _HTTP_METHOD_CHARS for c in head[:space])


def client_hello_length(first: bytes) -> int:
    """Bytes needed to hold the whole first TLS record (header + body)."""
    return 5 + struct.unpack_from("!H", first, 3)[0] if len(first) >= 5 else 5


def parse_client_hello(record: bytes) -> ClientHello | None:
    """SNI and ALPN offered in a ClientHello record, or None if it is not one we can read."""
    try:
        return _parse_client_hello(memoryview(record))
    except (struct.error, IndexError, UnicodeDecodeError, ValueError):
        return None


def _parse_client_hello(rec: memoryview) -> ClientHello | None:
    if rec[0] != TLS_HANDSHAKE or rec[5] != 1:  # record type handshake, message client_hello
        return None
    body = rec[9 : 9 + int.from_bytes(rec[6:9], "big")]
    pos = 2 + 32  # client version, random
    pos += 1 + body[pos]  # session id
    pos += 2 + struct.unpack_from("!H", body, pos)[0]  # cipher suites
    pos += 1 + body[pos]  # compression methods
    if pos + 2 > len(body):
        return ClientHello()
    end = pos + 2 + struct.unpack_from("!H", body, pos)[0]
    pos += 2
    hello = ClientHello()
    while pos + 4 <= end:
        ext_type, ext_len = struct.unpack_from("!HH", body, pos)
        data = body[pos + 4 : pos + 4 + ext_len]
        pos += 4 + ext_len
        if ext_type == 0 and len(data) >= 5 and data[2] == 0:  # server_name, host_name
            name_len = struct.unpack_from("!H", data, 3)[0]
            hello.sni = bytes(data[5 : 5 + name_len]).decode("ascii").lower()
        elif ext_type == 16 and len(data) >= 2:  # application_layer_protocol_negotiation
            protos, i = [], 2
            while i < len(data):
                n = data[i]
                protos.append(bytes(data[i + 1 : i + 1 + n]).decode("ascii"))
                i += 1 + n
            hello.alpn = protos
    return hello


async def peek(transport: asyncio.BaseTransport, want: int, timeout: float) -> bytes:
    """Up to ``want`` bytes the client has sent, left unread in the socket.

    The transport's reading must be paused. A duplicate descriptor is watched so
    that the transport keeps sole ownership of its own; the bytes stay in the
    kernel so ``start_tls`` (or the plain stream) reads them normally afterwards.
    """
    loop = asyncio.get_running_loop()
    sock = transport.get_extra_info("socket")
    dup = socket.socket(fileno=os.dup(sock.fileno()))
    dup.setblocking(False)
    try:
        data = _peek_now(dup, want)  # on a busy proxy the ClientHello is often there already
        if data is not None and not _needs_more(data, want):
            return data
        async with asyncio.timeout(timeout):
            data = b""
            for _ in range(200):  # bounded: a ClientHello comes in a few segments at most
                await _readable(loop, dup.fileno())
                data = dup.recv(want, socket.MSG_PEEK)
                if not _needs_more(data, want):
                    return data
                await asyncio.sleep(0.002)  # level-triggered: let more bytes arrive
            return data
    finally:
        dup.close()


def _peek_now(sock: socket.socket, want: int) -> bytes | None:
    """What is already waiting in the socket, left there; None if nothing has arrived."""
    try:
        return sock.recv(want, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return None


def _needs_more(data: bytes, want: int) -> bool:
    """Whether a TLS record has begun but not all of it (up to ``want``) is here yet;
    EOF (``b""``) and anything not TLS need no more."""
    return looks_like_tls(data) and len(data) < min(want, client_hello_length(data))


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    fut = loop.create_future()
    loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def peek_client_hello(
    transport: asyncio.BaseTransport, timeout: float
) -> tuple[bytes, ClientHello | None]:
    """The first bytes of the tunnel, and the parsed ClientHello when they are TLS."""
    first = await peek(transport, MAX_CLIENT_HELLO, timeout)
    if not looks_like_tls(first):
        return first, None
    return first, parse_client_hello(first[: client_hello_length(first)])
