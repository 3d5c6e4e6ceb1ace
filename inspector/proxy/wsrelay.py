"""The WebSocket relay for ``websocket_message`` hooks: messages parsed, hooked, re-framed.

Each direction is read by its own task, in order: control frames (ping, pong, close)
go on unchanged as soon as they are whole, also between the fragments of a message;
a data message is held until its last fragment, inflated if permessage-deflate
compressed it, given to the hooks (``inspector.websocket.WebSocketMessage``), then sent
on as one frame (deflated again if it came compressed; masked with a fresh key toward
the server, unmasked toward the client), unless a hook dropped it. A message longer
than the addon limit (``--body-limit``), or bytes that break RFC 6455, end the
connection: both sides get a close frame (1009, 1002 or 1007), the flow an exception
event, and what arrives after is discarded until each side closes.

Every message is recorded on the flow as it passes; one a hook changed or dropped keeps
what was received beside what was sent (``inspector.flow.WebSocketMessage``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from inspector.bus import EventKind
from inspector.flow import Flow, FlowError, Phase
from inspector.flow import WebSocketMessage as Recorded
from inspector.proxy.wsdeflate import Agreement, DeflateCodec
from inspector.proxy.wsframes import (
    CLOSE,
    Frame,
    FrameError,
    Message,
    MessageReader,
    close_payload,
    encode_frame,
)
from inspector.websocket import WebSocketData, WebSocketMessage
from protocol.aio import stream_write
from protocol.limits import READ_CHUNK

if TYPE_CHECKING:
    from inspector.proxy.context import ProxyContext

HEAD_LIMIT = 256  # payload bytes of each message kept on the flow


class MessageHook(Protocol):
    """An exchange hook that reads WebSocket messages (``inspector.changes.Changes``)."""

    def wants_websocket(self, flow: Flow) -> bool: ...

    async def websocket_message(self, flow: Flow, data: WebSocketData) -> None:
        """Run the hooks on ``data.messages[-1]``; never raises (failures go on the flow)."""


def message_hooks(hooks: tuple[object, ...], flow: Flow) -> list[MessageHook]:
    """The hooks that want this flow's WebSocket messages, in order."""
    found: list[MessageHook] = []
    for hook in hooks:
        wants = getattr(hook, "wants_websocket", None)
        if wants is not None and wants(flow):
            found.append(hook)  # type: ignore[arg-type]
    return found


@dataclass(slots=True)
class Peer:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    name: str  # "the client", "the upstream": for error texts


@dataclass(slots=True)
class _Way:
    """One direction: what its sender sent is read from ``source``, written to ``target``."""

    from_client: bool
    source: Peer
    target: Peer
    frames: MessageReader
    codec: DeflateCodec | None
    closed: bool = False  # a close frame went this way


class MessageRelay:
    """Both directions of one WebSocket connection (see the module docstring)."""

    def __init__(
        self,
        ctx: ProxyContext,
        flow: Flow,
        hooks: list[MessageHook],
        client: Peer,
        upstream: Peer,
        deflate: Agreement | None,
    ) -> None:
        self.ctx = ctx
        self.flow = flow
        self.hooks = hooks
        self.limit = ctx.config.body_limit
        rsv1 = deflate is not None
        self._ways = [
            _Way(
                from_client,
                source,
                target,
                MessageReader(self.limit, extensions_rsv1=rsv1),
                None if deflate is None else DeflateCodec.for_direction(deflate, from_client),
            )
            for from_client, source, target in ((True, client, upstream), (False, upstream, client))
        ]
        self.data = WebSocketData()  # the connection's latest messages, for the hooks
        self.aborted = False  # a close was sent to both sides for an error: discard the rest

    async def run(self, client_rest: bytes, upstream_rest: bytes) -> None:
        """Relay until both sides have closed (or one connection fails)."""
        tasks = [
            asyncio.ensure_future(self._pump(way, rest))
            for way, rest in zip(self._ways, (client_rest, upstream_rest), strict=True)
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _pump(self, way: _Way, data: bytes) -> None:
        """Read one direction to its end, relaying what it sends."""
        try:
            while True:
                if data and not self.aborted:
                    way.frames.receive(data)
                    recorded = len(self.flow.websocket)
                    await self._relay_items(way)
                    if len(self.flow.websocket) != recorded:  # one event per read, not per message
                        self.ctx.publish(EventKind.WEBSOCKET, self.flow)
                data = await way.source.reader.read(READ_CHUNK)
                if not data:
                    return
        finally:
            # After the closing handshake the server closes first (RFC 6455 7.1.1): then the
            # client's side closes too, even where TLS cannot half-close.
            _end(way.target.writer, force=all(w.closed for w in self._ways))

    async def _relay_items(self, way: _Way) -> None:
        while not self.aborted:
            try:
                item = way.frames.next_item()
                if item is None:
                    return
                if type(item) is Frame:
                    way.closed = way.closed or item.opcode == CLOSE
                    await self._send(way, item.wire)
                    self._record_frame(way, item)
                else:
                    await self._message(way, item)  # type: ignore[arg-type]
            except FrameError as e:
                await self._abort(way, e)

    async def _message(self, way: _Way, item: Message) -> None:
        """Inflate, hook, and send one data message (unless a hook dropped it)."""
        content = item.payload
        if item.compressed and way.codec is not None:
            content = way.codec.inflate(content, self.limit)
        message = WebSocketMessage(item.opcode, content, way.from_client)
        self._keep(message)
        for hook in self.hooks:
            await hook.websocket_message(self.flow, self.data)
        sent = b"" if message.dropped else message.content
        if not message.dropped and not self.aborted:
            payload = sent
            compress = item.compressed and way.codec is not None
            if compress:
                payload = way.codec.deflate(sent)  # type: ignore[union-attr]
            frame = encode_frame(message.type, payload, masked=way.from_client, rsv1=compress)
            await self._send(way, frame)
        recorded = Recorded(
            message.timestamp, way.from_client, int(message.type), len(sent), sent[:HEAD_LIMIT]
        )
        if message.dropped or sent != content or message.type != item.opcode:
            recorded.dropped = message.dropped
            recorded.original_size, recorded.original_head = len(content), content[:HEAD_LIMIT]
        self._record(recorded)

    def _keep(self, message: WebSocketMessage) -> None:
        """Add to ``flow.websocket.messages``: the latest ones, at most the limit's bytes
        between them (the one at hand is always there)."""
        kept = self.data.messages
        kept.append(message)
        while len(kept) > 1 and sum(len(m.content) for m in kept) > self.limit:
            kept.popleft()

    async def _send(self, way: _Way, data: bytes) -> None:
        stream_write(way.target.writer, data, way.target.name)
        await way.target.writer.drain()

    def _record_frame(self, way: _Way, frame: Frame) -> None:
        payload = frame.payload
        self._record(
            Recorded(time.time(), way.from_client, frame.opcode, len(payload), payload[:HEAD_LIMIT])
        )

    def _record(self, message: Recorded) -> None:
        self.flow.websocket.append(message)

    async def _abort(self, way: _Way, error: FrameError) -> None:
        """Close both sides with ``error.code``; the flow gets the exception event."""
        self.aborted = True
        if self.flow.error is None:
            text = (
                f"{error.reason}, from {way.source.name}: both sides were sent close {error.code}"
            )
            phase = Phase.CLIENT if way.from_client else Phase.BODY
            self.flow.error = FlowError(type(error).__name__, text, phase, time.time())
        self.ctx.publish(EventKind.WEBSOCKET, self.flow)
        payload = close_payload(error.code, error.reason)
        for peer, to_server in ((way.source, not way.from_client), (way.target, way.from_client)):
            try:
                stream_write(peer.writer, encode_frame(CLOSE, payload, masked=to_server), peer.name)
            except OSError:
                continue
            _end(peer.writer, force=True)


def _end(writer: asyncio.StreamWriter, *, force: bool) -> None:
    """No more bytes to this peer: a half-close (FIN) where the transport can; TLS cannot,
    so ``force`` closes it (after what was queued, the close frame) and otherwise the
    other direction goes on until its own end."""
    if writer.is_closing():
        return
    try:
        if writer.can_write_eof():
            writer.write_eof()
        elif force:
            writer.close()
    except OSError:
        pass
