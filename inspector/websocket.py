"""The WebSocket message an addon's ``websocket_message(flow, message)`` hook gets.

Named as mitmproxy's ``WebSocketMessage``, so that scripts port by the import:
``.from_client``, ``.type`` (``Opcode.TEXT`` / ``Opcode.BINARY``), ``.is_text``,
``.content`` (bytes, settable), ``.text`` (text messages only, settable), ``.timestamp``,
``.drop()`` / ``.dropped``, ``.injected`` (always False: the proxy injects nothing).
A hook written for mitmproxy, ``websocket_message(flow)`` with one argument, is called so
and finds the message as mitmproxy puts it, ``flow.websocket.messages[-1]``
(``WebSocketData``: the connection's latest messages, oldest first: at most
``MESSAGES_KEPT``, and no more than the addon limit's bytes between them).
``content`` is the message as its sender meant it: fragments joined, unmasked, and
inflated when permessage-deflate compressed it. What the hook leaves is what the other
side gets, as one frame (compressed again where it came compressed).
"""

from __future__ import annotations

import time
from collections import deque
from enum import IntEnum

__all__ = ["Opcode", "WebSocketData", "WebSocketMessage"]

MESSAGES_KEPT = 100  # messages of a connection a hook can look back on (they are held whole)


class Opcode(IntEnum):
    """The data opcodes of RFC 6455 (control frames never reach a hook)."""

    TEXT = 0x1
    BINARY = 0x2


class WebSocketMessage:
    """One data message on its way through the proxy (see the module docstring)."""

    __slots__ = ("_content", "dropped", "from_client", "injected", "timestamp", "type")

    def __init__(
        self,
        type: int,
        content: bytes,
        from_client: bool,
        timestamp: float | None = None,
    ) -> None:
        self.type = Opcode(type)
        self._content = bytes(content)
        self.from_client = from_client
        self.timestamp = time.time() if timestamp is None else timestamp
        self.dropped = False
        self.injected = False

    @property
    def is_text(self) -> bool:
        return self.type is Opcode.TEXT

    @property
    def content(self) -> bytes:
        return self._content

    @content.setter
    def content(self, value: bytes | bytearray | memoryview | str) -> None:
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(
                f"WebSocketMessage.content takes bytes (or str), not {type(value).__name__}"
            )
        self._content = bytes(value)

    @property
    def text(self) -> str:
        """The content as text (UTF-8, as RFC 6455 requires); only for text messages."""
        if not self.is_text:
            raise AttributeError(
                "a binary WebSocket message has no .text: read or set .content (bytes)"
            )
        return self._content.decode("utf-8")

    @text.setter
    def text(self, value: str) -> None:
        if not self.is_text:
            raise AttributeError("a binary WebSocket message has no .text: set .content (bytes)")
        self._content = value.encode("utf-8")

    def drop(self) -> None:
        """Do not send this message on (the hooks after this one still see it)."""
        self.dropped = True

    def kill(self) -> None:  # mitmproxy's older name for drop()
        self.drop()

    def __repr__(self) -> str:
        side = "client" if self.from_client else "server"
        body = self._content.decode("utf-8", "replace") if self.is_text else self._content.hex()
        flag = " dropped" if self.dropped else ""
        return f"<WebSocketMessage {self.type.name.lower()} from {side}{flag}: {body[:60]!r}>"


class WebSocketData:
    """``flow.websocket`` in a hook: ``messages``, this connection's latest messages."""

    __slots__ = ("messages",)

    def __init__(self) -> None:
        self.messages: deque[WebSocketMessage] = deque(maxlen=MESSAGES_KEPT)

    def __repr__(self) -> str:
        return f"<WebSocketData: {len(self.messages)} messages kept>"
