"""After a 101: the two streams relayed, and WebSocket messages recorded on the flow.

``relay_switched`` picks the relay. With no addon reading WebSocket messages (no
``websocket_message`` hook), bytes are copied both ways untouched and ``FrameReader``
records each message as it passes: it never holds a whole frame, only each frame's
header and the first ``head_limit`` payload bytes (unmasked), so a huge message costs no
memory. With such a hook, ``wsrelay.MessageRelay`` parses whole messages for it and
frames what it leaves again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from inspector.bus import EventKind
from inspector.flow import Flow, FlowError, Phase, WebSocketMessage
from inspector.proxy.tunnel import relay
from inspector.proxy.wsdeflate import Agreement, UnsupportedExtension, parse_agreement
from inspector.proxy.wsframes import CONTROL as _CONTROL
from inspector.proxy.wsframes import header_length, payload_length, unmask
from inspector.proxy.wsrelay import HEAD_LIMIT, MessageRelay, Peer, message_hooks
from protocol.aio import stream_write

if TYPE_CHECKING:
    from inspector.proxy.context import ProxyContext

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]


async def relay_switched(ctx: ProxyContext, flow: Flow, client: Streams, upstream: Streams) -> None:
    """Relay a switched connection until both sides are done (the caller finishes the flow).

    ``client`` and ``upstream``: reader, writer and the bytes already read past the head."""
    websocket = (flow.request.header("Upgrade") or "").lower() == "websocket"
    hooks = message_hooks(ctx.hooks, flow) if websocket else []
    try:
        if hooks:
            decodable, agreement = _agreement(flow)
            if decodable:
                peers = Peer(*client[:2], "the client"), Peer(*upstream[:2], "the upstream")
                relayer = MessageRelay(ctx, flow, hooks, *peers, agreement)
                await relayer.run(client[2], upstream[2])
                return
        await _relay_raw(ctx, flow, client, upstream, websocket)
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        upstream[1].close()


def _agreement(flow: Flow) -> tuple[bool, Agreement | None]:
    """Whether messages can be decoded, and the 101's permessage-deflate terms (None: not
    compressed). Another extension cannot be decoded: the bytes then go through untouched
    and the flow says why."""
    value = flow.response.header("Sec-WebSocket-Extensions") if flow.response else None
    try:
        return True, parse_agreement(value)
    except UnsupportedExtension as e:
        if flow.error is None:
            message = f"{e}: WebSocket messages relayed without calling websocket_message"
            flow.error = FlowError("UnsupportedExtension", message, Phase.ADDON, time.time())
        return False, None


async def _relay_raw(
    ctx: ProxyContext, flow: Flow, client: Streams, upstream: Streams, websocket: bool
) -> None:
    """Copy bytes both ways untouched, recording WebSocket messages as they pass."""
    reader, writer, client_rest = client
    up_reader, up_writer, upstream_rest = upstream
    to_up = _recorder(ctx, flow, True) if websocket else None
    to_client = _recorder(ctx, flow, False) if websocket else None
    if client_rest:
        to_up and to_up(client_rest)
        stream_write(up_writer, client_rest, "the upstream")
    if upstream_rest:
        to_client and to_client(upstream_rest)
        stream_write(writer, upstream_rest, "the client")
    await relay(reader, writer, up_reader, up_writer, a_to_b=to_up, b_to_a=to_client)


def _recorder(ctx: ProxyContext, flow: Flow, from_client: bool) -> Callable[[bytes], None]:
    reader = FrameReader(from_client)
    publish = ctx.publish

    def record(data: bytes) -> None:
        messages = reader.feed(data)
        if messages:
            flow.websocket.extend(messages)
            publish(EventKind.WEBSOCKET, flow)

    return record


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
        length, pos = payload_length(hdr)
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
                part = unmask(part, self._mask, self._offset)
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
        return header_length(partial[1])
    if len(partial) + len(view) >= 2:
        return header_length((bytes(partial) + bytes(view[: 2 - len(partial)]))[1])
    return None
