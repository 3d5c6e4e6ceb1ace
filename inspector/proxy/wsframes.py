"""WebSocket frames and messages (RFC 6455), sans-IO: bytes in, frames and messages out.

``MessageReader`` takes one direction's bytes as they arrive and gives back, in order,
control frames (ping, pong, close: with their wire bytes, so they can be relayed
unchanged) and whole data messages (fragments joined, payload unmasked, still
compressed if the sender compressed it). It holds at most one message of ``limit``
bytes: a longer one is a ``FrameError`` with close code 1009 before its payload is
buffered, and a frame breaking the protocol is one with 1002. ``encode_frame`` writes a
message back as one frame, masked with a fresh random key when it goes to a server.

The recording-only relay (``inspector.proxy.websocket.FrameReader``) shares the header
arithmetic and the unmasking here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CONTROL = 0x8  # opcodes with this bit are control frames
OPCODES = frozenset((CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG))
MAX_CONTROL_PAYLOAD = 125
PROTOCOL_ERROR = 1002
INVALID_DATA = 1007
MESSAGE_TOO_BIG = 1009


class FrameError(Exception):
    """The peer's bytes cannot be relayed as messages: ``code`` is the close code to send."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class MessageTooBig(FrameError):
    """A message longer than the limit (close code 1009)."""

    def __init__(self, reason: str) -> None:
        super().__init__(MESSAGE_TOO_BIG, reason)


@dataclass(slots=True)
class Frame:
    """A control frame as received: ``payload`` unmasked, ``wire`` its bytes as they came."""

    opcode: int
    payload: bytes
    wire: bytes


@dataclass(slots=True)
class Message:
    """A whole data message: fragments joined, unmasked; ``compressed`` is RSV1 (RFC 7692)."""

    opcode: int  # TEXT or BINARY
    payload: bytes
    compressed: bool = False
    frames: int = 1  # how many frames it came in


def header_length(second: int) -> int:
    """A frame header's total length, from its second byte (mask bit, 7-bit length)."""
    length = second & 0x7F
    size = 2 + (2 if length == 126 else 8 if length == 127 else 0)
    return size + (4 if second & 0x80 else 0)


def payload_length(header: bytes) -> tuple[int, int]:
    """(payload length, offset of the mask key or payload) of a complete header."""
    length = header[1] & 0x7F
    if length == 126:
        return int.from_bytes(header[2:4], "big"), 4
    if length == 127:
        return int.from_bytes(header[2:10], "big"), 10
    return length, 2


def unmask(data: bytes, mask: bytes, offset: int = 0) -> bytes:
    """XOR ``data`` with the 4-byte ``mask``, starting ``offset`` bytes into the payload."""
    if not data:
        return b""
    shift = offset % 4
    key = (mask[shift:] + mask[:shift]) * (len(data) // 4 + 1)
    # One big-integer XOR: far faster in CPython than a byte loop.
    return (int.from_bytes(data, "big") ^ int.from_bytes(key[: len(data)], "big")).to_bytes(
        len(data), "big"
    )


def encode_frame(
    opcode: int, payload: bytes, *, masked: bool, fin: bool = True, rsv1: bool = False
) -> bytes:
    """One frame; ``masked`` (toward a server) uses a fresh random key (RFC 6455 5.3)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((first, bit | n))
    elif n < 65536:
        head = bytes((first, bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, bit | 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + unmask(payload, key)


def close_payload(code: int, reason: str) -> bytes:
    """A close frame's payload: the code, then the UTF-8 reason cut to fit 125 bytes."""
    text = reason.encode("utf-8")[: MAX_CONTROL_PAYLOAD - 2]
    return code.to_bytes(2, "big") + text.decode("utf-8", "ignore").encode("utf-8")


class MessageReader:
    """One direction's frames into control frames and whole messages (see the module doc).

    ``extensions_rsv1`` says whether RSV1 may be set (permessage-deflate negotiated).
    """

    __slots__ = ("_buf", "_compressed", "_extensions_rsv1", "_frames", "_limit", "_opcode")

    def __init__(self, limit: int, *, extensions_rsv1: bool = False) -> None:
        self._limit = limit
        self._extensions_rsv1 = extensions_rsv1
        self._buf = bytearray()
        self._opcode = 0  # the opcode of a fragmented message in progress, 0 if none
        self._frames: list[bytes] = []  # its payloads so far
        self._compressed = False

    @property
    def pending(self) -> int:
        """Bytes received and not yet given back as a frame or a message."""
        return len(self._buf) + sum(map(len, self._frames))

    def receive(self, data: bytes) -> None:
        self._buf += data

    def next_item(self) -> Frame | Message | None:
        """The next control frame or whole message received (None: more bytes needed).
        Raises FrameError: the bytes cannot be relayed as messages."""
        while True:
            item = self._next()
            if item is not _PARTIAL:
                return item  # type: ignore[return-value]

    def _next(self) -> Frame | Message | object | None:
        """The next frame's result: a Frame, a Message, _PARTIAL (a fragment), None (need data)."""
        buf = self._buf
        if len(buf) < 2:
            return None
        size = header_length(buf[1])
        if len(buf) < size:
            return None
        header = bytes(buf[:size])
        length, at = payload_length(header)
        opcode = header[0] & 0x0F
        self._check(header[0], opcode, length)
        if len(buf) < size + length:
            return None
        payload = bytes(buf[size : size + length])
        if header[1] & 0x80:
            payload = unmask(payload, header[at : at + 4])
        wire = bytes(buf[: size + length]) if opcode & CONTROL else b""
        del buf[: size + length]
        if opcode & CONTROL:
            return Frame(opcode, payload, wire)
        return self._data(header[0], opcode, payload)

    def _check(self, first: int, opcode: int, length: int) -> None:
        """Refuse a frame breaking RFC 6455 (1002), or too big for the limit (1009)."""
        if opcode not in OPCODES:
            raise FrameError(PROTOCOL_ERROR, f"reserved opcode 0x{opcode:x}")
        rsv1_allowed = self._extensions_rsv1 and opcode in (TEXT, BINARY)
        if first & 0x30 or (first & 0x40 and not rsv1_allowed):
            raise FrameError(PROTOCOL_ERROR, "reserved bits set that no extension defines")
        if opcode & CONTROL:
            if length > MAX_CONTROL_PAYLOAD or not first & 0x80:
                raise FrameError(PROTOCOL_ERROR, "a control frame longer than 125 bytes or split")
            return
        if opcode == CONTINUATION and not self._opcode:
            raise FrameError(PROTOCOL_ERROR, "a continuation frame with no message started")
        if opcode != CONTINUATION and self._opcode:
            raise FrameError(PROTOCOL_ERROR, "a new message before the fragmented one ended")
        held = sum(map(len, self._frames))
        if length > self._limit - held:
            raise MessageTooBig(
                f"a message of more than {self._limit} bytes (the addon limit, --body-limit)"
            )

    def _data(self, first: int, opcode: int, payload: bytes) -> Message | object:
        if opcode != CONTINUATION:
            self._opcode, self._compressed = opcode, bool(first & 0x40)
        self._frames.append(payload)
        if not first & 0x80:
            return _PARTIAL
        frames = self._frames
        message = Message(self._opcode, b"".join(frames), self._compressed, len(frames))
        self._frames, self._opcode, self._compressed = [], 0, False
        return message


_PARTIAL = object()  # a fragment was taken; its message is not complete yet
