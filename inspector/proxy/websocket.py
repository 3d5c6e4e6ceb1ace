"""A WebSocket frame reader (RFC 6455) that records messages while bytes are relayed untouched.

It never holds a whole frame: only each frame's header and the first ``head_limit``
payload bytes (unmasked) are kept, so a huge message costs no memory.
"""

from __future__ import annotations

import time

from inspector.flow import WebSocketMessage

HEAD_LIMIT = 256
_CONTROL = 0x8


class FrameReader:
    """Feed one direction's bytes; ``feed`` returns the messages completed by them."""

    __slots__ = (
        "_ctrl_head",
        "_frame_fin",
        "_frame_opcode",
        "_from_client",
        "_hdr",
        "_head",
        "_head_limit",
        "_mask",
        "_msg_opcode",
        "_msg_size",
        "_offset",
        "_remaining",
    )

    def __init__(self, from_client: bool, head_limit: int = HEAD_LIMIT) -> None:
        self._from_client = from_client
        self._head_limit = head_limit
        self._hdr = bytearray()  # bytes of a frame header not yet complete
        self._remaining = -1  # payload bytes left in the current frame; -1: reading a header
        self._mask = b""
        self._offset = 0  # payload bytes of the current frame seen so far
        self._frame_fin = False
        self._frame_opcode = 0
        self._head = bytearray()  # first payload bytes of the data message in progress
        self._ctrl_head = bytearray()  # first payload bytes of the control frame in progress
        self._msg_opcode = 0  # opcode of a fragmented data message in progress
        self._msg_size = 0

    def feed(self, data: bytes) -> list[WebSocketMessage]:
        out: list[WebSocketMessage] = []
        view = memoryview(data)
        while view:
            if self._remaining < 0:
                view = self._read_header(view)
                if self._remaining < 0:
                    break
            else:
                take = min(self._remaining, len(view))
                self._payload(view[:take])
                view = view[take:]
                self._remaining -= take
            if self._remaining == 0:
                msg = self._end_frame()
                if msg is not None:
                    out.append(msg)
        return out

    def _read_header(self, view: memoryview) -> memoryview:
        need = _header_length(self._hdr, view)
        if need is None or len(self._hdr) + len(view) < need:
            self._hdr += view
            return view[len(view) :]
        take = need - len(self._hdr)
        self._hdr += view[:take]
        hdr = bytes(self._hdr)
        self._hdr.clear()
        self._frame_fin = bool(hdr[0] & 0x80)
        self._frame_opcode = hdr[0] & 0x0F
        length = hdr[1] & 0x7F
        pos = 2
        if length == 126:
            length, pos = int.from_bytes(hdr[2:4], "big"), 4
        elif length == 127:
            length, pos = int.from_bytes(hdr[2:10], "big"), 10
        self._mask = hdr[pos : pos + 4] if hdr[1] & 0x80 else b""
        self._remaining = length
        self._offset = 0
        if self._frame_opcode & _CONTROL:
            self._ctrl_head.clear()
        else:
            if self._frame_opcode != 0:  # first frame of a data message
                self._msg_opcode, self._msg_size = self._frame_opcode, 0
                self._head.clear()
        return view[take:]

    def _payload(self, chunk: memoryview) -> None:
        control = self._frame_opcode & _CONTROL
        head = self._ctrl_head if control else self._head
        if not control:
            self._msg_size += len(chunk)
        room = self._head_limit - len(head)
        if room > 0:
            part = bytes(chunk[:room])
            if self._mask:
                part = _unmask(part, self._mask, self._offset)
            head += part
        self._offset += len(chunk)

    def _end_frame(self) -> WebSocketMessage | None:
        self._remaining = -1
        now = time.time()
        if self._frame_opcode & _CONTROL:
            size, head = self._offset, bytes(self._ctrl_head)
            return WebSocketMessage(now, self._from_client, self._frame_opcode, size, head)
        if not self._frame_fin:
            return None
        msg = WebSocketMessage(
            now, self._from_client, self._msg_opcode, self._msg_size, bytes(self._head)
        )
        self._head.clear()
        self._msg_size = 0
        return msg


def _header_length(partial: bytearray, view: memoryview) -> int | None:
    """Total header length once its second byte is known, else None."""
    if len(partial) >= 2:
        second = partial[1]
    elif len(partial) + len(view) >= 2:
        second = (bytes(partial) + bytes(view[: 2 - len(partial)]))[1]
    else:
        return None
    length = second & 0x7F
    size = 2 + (2 if length == 126 else 8 if length == 127 else 0)
    return size + (4 if second & 0x80 else 0)


def _unmask(data: bytes, mask: bytes, offset: int) -> bytes:
    key = (mask[offset % 4 :] + mask[: offset % 4]) * (len(data) // 4 + 1)
    return (int.from_bytes(data, "big") ^ int.from_bytes(key[: len(data)], "big")).to_bytes(
        len(data), "big"
    )
