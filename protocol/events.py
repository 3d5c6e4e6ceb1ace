"""Events that the sans-IO connection emits and accepts.

One message is ``Request``/``Response``, then zero or more ``Data``, then
``EndOfMessage``. Interim (1xx) responses are ``Response`` events whose
``informational`` is true and are followed by the final ``Response``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.headers import Headers


@dataclass(slots=True)
class Request:
    method: bytes
    target: bytes
    headers: Headers
    http_version: bytes = b"1.1"


@dataclass(slots=True)
class Response:
    status_code: int
    headers: Headers
    reason: bytes = b""
    http_version: bytes = b"1.1"

    @property
    def informational(self) -> bool:
        return 100 <= self.status_code < 200


@dataclass(slots=True)
class Data:
    data: bytes


@dataclass(slots=True)
class EndOfMessage:
    trailers: Headers = field(default_factory=Headers)


@dataclass(slots=True)
class ConnectionClosed:
    """The peer closed its side cleanly between messages."""


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA = _Sentinel("NEED_DATA")
"""``next_event()``: no complete event in the buffer yet; feed more bytes."""

PAUSED = _Sentinel("PAUSED")
"""``next_event()``: this message cycle is over; call ``start_next_cycle()`` first."""

Event = Request | Response | Data | EndOfMessage | ConnectionClosed
