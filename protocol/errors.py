"""The exceptions of the HTTP/1.1 core.

The tree and constructors are those of Python 3.11's ``http.client`` so code
written against it keeps working. Two classes say who broke the protocol:
``RemoteProtocolError`` (the peer's bytes) and ``LocalProtocolError`` (our own
caller asked for something illegal). Every class carries ``status_hint``: the
status a server should answer with when the error is about a request it got.
"""

from __future__ import annotations

from protocol.limits import MAX_LINE

_QUOTE_LIMIT = 80


def quote(data: bytes | bytearray | memoryview | str, limit: int = _QUOTE_LIMIT) -> str:
    """``repr`` of ``data`` cut to ``limit`` characters, for error messages."""
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if len(data) > limit:
        return f"{data[:limit]!r}... ({len(data)} bytes)"
    return repr(data)


class HTTPException(Exception):
    """Base of every error of the HTTP core."""

    status_hint: int = 400


class NotConnected(HTTPException):
    pass


class InvalidURL(HTTPException):
    pass


class UnknownProtocol(HTTPException):
    """The peer speaks an HTTP version we do not (anything but HTTP/1.0 and HTTP/1.1)."""

    status_hint = 505

    def __init__(self, version: object) -> None:
        self.args = (version,)
        self.version = version


class UnknownTransferEncoding(HTTPException):
    """A transfer-coding other than ``chunked`` that we cannot decode."""

    status_hint = 501


class UnimplementedFileMode(HTTPException):
    pass


class IncompleteRead(HTTPException):
    """The connection ended before the body was complete; ``partial`` holds what came.

    ``received`` counts the body bytes that came in all: the parser hands body bytes
    out as they arrive, so there ``partial`` is empty and ``received`` says how far
    the body got.
    """

    def __init__(
        self, partial: bytes, expected: int | None = None, *, received: int | None = None
    ) -> None:
        self.args = (partial,)
        self.partial = partial
        self.expected = expected
        self.received = len(partial) if received is None else received

    def __repr__(self) -> str:
        more = f", {self.expected} more expected" if self.expected is not None else ""
        return f"{type(self).__name__}({self.received} bytes read{more})"

    __str__ = object.__str__


class ImproperConnectionState(HTTPException):
    pass


class CannotSendRequest(ImproperConnectionState):
    pass


class CannotSendHeader(ImproperConnectionState):
    pass


class ResponseNotReady(ImproperConnectionState):
    pass


class BadStatusLine(HTTPException):
    """The server's first line is not an HTTP status line; ``line`` quotes it."""

    def __init__(self, line: str) -> None:
        if not line:
            line = repr(line)
        self.args = (line,)
        self.line = line


class LineTooLong(HTTPException):
    """A line of the peer's message is longer than the limit.

    ``line_type`` names the line ("status line", "header line", ...); a request
    line gives status hint 414 and a header line 431, everything else 400.
    """

    _HINTS = {"request line": 414, "header line": 431, "headers": 431}

    def __init__(self, line_type: str, limit: int = MAX_LINE) -> None:
        super().__init__(f"got more than {limit} bytes when reading {line_type}")
        self.line_type = line_type
        self.limit = limit
        self.status_hint = self._HINTS.get(line_type, 400)


class RemoteDisconnected(ConnectionResetError, BadStatusLine):
    """The server closed the connection before sending a (complete) response head."""

    def __init__(self, *pos: object, **kw: object) -> None:
        BadStatusLine.__init__(self, "")
        ConnectionResetError.__init__(self, *pos, **kw)


class RemoteProtocolError(HTTPException):
    """The peer's bytes break HTTP/1.1 (framing, syntax or a limit)."""

    def __init__(self, message: str, *, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class HeaderBlockTooLarge(LineTooLong, RemoteProtocolError):
    """The peer's header block (or all of a head) is larger than the limit: status hint 431.

    A ``LineTooLong`` for code written against ``http.client``, which raises that for
    an overlong header line; a ``RemoteProtocolError`` for the proxy.
    """

    def __init__(self, message: str, limit: int) -> None:
        HTTPException.__init__(self, message)
        self.line_type = "headers"
        self.limit = limit
        self.status_hint = 431


class InvalidChunk(IncompleteRead, RemoteProtocolError):
    """A chunked body broke its framing (a bad chunk-size line, data longer than its size).

    An ``IncompleteRead`` as ``http.client`` raises for it, ``partial`` holding the body
    before the fault; a ``RemoteProtocolError`` for the proxy. ``detail`` says what was
    wrong; without one (as the synchronous client raises it, the core's error chained as
    its cause) ``str()`` and ``repr()`` are ``http.client``'s ``IncompleteRead(N bytes read)``.
    """

    def __init__(self, detail: str = "", partial: bytes = b"", *, received: int | None = None):
        IncompleteRead.__init__(self, partial, received=received)
        self.detail = detail
        self.status_hint = 400

    def __str__(self) -> str:
        return self.detail or f"IncompleteRead({self.received} bytes read)"

    def __repr__(self) -> str:
        if self.detail:
            return f"{type(self).__name__}({self.detail!r})"
        return f"IncompleteRead({self.received} bytes read)"


class LocalProtocolError(HTTPException, ValueError):
    """Our side asked for something illegal: wrong state, or bytes that would corrupt framing."""


error = HTTPException
"""``http.client.error``: the old name of ``HTTPException``."""

__all__ = [
    "MAX_LINE",
    "BadStatusLine",
    "CannotSendHeader",
    "CannotSendRequest",
    "HTTPException",
    "HeaderBlockTooLarge",
    "ImproperConnectionState",
    "IncompleteRead",
    "InvalidChunk",
    "InvalidURL",
    "LineTooLong",
    "LocalProtocolError",
    "NotConnected",
    "RemoteDisconnected",
    "RemoteProtocolError",
    "ResponseNotReady",
    "UnimplementedFileMode",
    "UnknownProtocol",
    "UnknownTransferEncoding",
    "error",
]
