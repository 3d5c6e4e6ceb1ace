"""``HTTPResponse``: a response read from a socket's file, parsed by the sans-IO core.

``HTTPMessage`` and ``parse_headers`` are ``http.client``'s views of header fields,
built from what the core parsed.
"""

from __future__ import annotations

import email.message
import io
from typing import Any

from protocol._readers import Limits, parse_fields
from protocol.connection import CLIENT, Connection
from protocol.errors import (
    HTTPException,
    IncompleteRead,
    InvalidChunk,
    LineTooLong,
    RemoteDisconnected,
    RemoteProtocolError,
    ResponseNotReady,
    UnknownProtocol,
)
from protocol.events import NEED_DATA, ConnectionClosed, Data, EndOfMessage, Request, Response
from protocol.headers import Headers
from protocol.limits import MAX_HEADER_BYTES, MAX_HEADERS, MAX_LINE, SYNC_READ_CHUNK

_UNKNOWN = "UNKNOWN"


class HTTPMessage(email.message.Message):
    """The response header fields as an ``email.message.Message``, like ``http.client``'s.

    Only a view: the fields were parsed by the core and are copied in unchanged.
    """

    def getallmatchingheaders(self, name: str) -> list[str]:
        """Every ``Name: value`` line whose name is ``name`` (case-insensitive)."""
        key = name.lower()
        return [f"{k}: {v}" for k, v in self.raw_items() if k.lower() == key]


def _message_from(fields: Headers) -> HTTPMessage:
    msg = HTTPMessage()
    for name, value in fields.text_items():
        msg.set_raw(name, value)
    return msg


def parse_headers(fp: Any, _class: type[HTTPMessage] = HTTPMessage) -> HTTPMessage:
    """Header lines read from ``fp`` up to the blank line, as ``http.client.parse_headers``.

    Parsed as a response's fields are (obs-fold unfolded, malformed lines refused);
    ``LineTooLong`` and "got more than 100 headers" as ``http.client`` raises them.
    """
    lines = []
    while True:
        line = fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise LineTooLong("header line")
        if line in (b"\r\n", b"\n", b""):
            break
        lines.append(line.rstrip(b"\r\n") + b"\r\n")
        if len(lines) > MAX_HEADERS:
            raise HTTPException(f"got more than {MAX_HEADERS} headers")
    limits = Limits(MAX_LINE, MAX_HEADERS, MAX_HEADER_BYTES)
    fields = parse_fields(b"".join(lines), 0, limits, "header", unfold=True)
    msg = _class()
    for name, value in fields:
        msg.set_raw(name.decode("latin-1"), value.decode("latin-1"))
    return msg


def _standalone_core(method: str | None) -> Connection:
    """A client core that has "sent" a request, for a response read without HTTPConnection.

    The core needs the request's method to frame the response (HEAD has no body).
    """
    core = Connection(CLIENT)
    verb = (method or "GET").encode("ascii")
    core.send(Request(verb, b"/", Headers([(b"Host", b"localhost")])))
    core.send(EndOfMessage())
    return core


class HTTPResponse(io.BufferedIOBase):
    """A response read from ``sock.makefile('rb')``, parsed by the core as bytes arrive."""

    def __init__(
        self,
        sock: Any,
        debuglevel: int = 0,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.fp: Any = sock.makefile("rb")
        self.debuglevel = debuglevel
        self._method = method
        self.url = url
        self._fields: Headers | None = None
        self._msg: HTTPMessage | None = None
        self.trailers: Headers | None = None
        self.version: int | str = _UNKNOWN
        self.status: int | str = _UNKNOWN
        self.code: int | str = _UNKNOWN
        self.reason: str = _UNKNOWN
        self.chunked: bool | str = _UNKNOWN
        self.chunk_left: int | str | None = _UNKNOWN
        self.length: int | str | None = _UNKNOWN
        self.will_close: bool | str = _UNKNOWN
        # Set by HTTPConnection before begin(): the socket's core, and a final
        # response it already parsed while waiting for 100 Continue.
        self._core: Connection | None = None
        self._first_event: Response | None = None
        self._pending = b""  # body bytes parsed but not yet returned
        self._body_done = False
        self._deferred: HTTPException | None = None
        # A response made without HTTPConnection reads only what its message's framing
        # needs: the bytes after it stay in ``fp`` for whoever reads next.
        self._exact = False

    # -- the head ---------------------------------------------------------------

    def begin(self) -> None:
        """Read the status line and headers (skipping interim 1xx responses)."""
        if self._fields is not None:
            return  # already begun
        if self._core is None:
            self._core = _standalone_core(self._method)
            self._exact = True
        event = self._first_event or self._read_head()
        self._first_event = None
        while event.informational and event.status_code != 101:
            if self.debuglevel > 0:
                print("reply:", repr(self._status_line(event)))
                print("headers:", event.headers.text_items())
            event = self._read_head()
        self._set_head(event)

    def _read_head(self) -> Response:
        core = self._core
        assert core is not None
        if not core.has_unparsed and not core.peer_closed:
            self._fill()  # nothing buffered: the head can only come from the socket
        while True:
            event = core.next_event()
            if event is NEED_DATA:
                self._fill()
                continue
            if isinstance(event, Response):
                return event
            if isinstance(event, ConnectionClosed):
                raise RemoteDisconnected("Remote end closed connection without response")
            raise RemoteProtocolError(f"expected a response head, got {type(event).__name__}")

    @staticmethod
    def _status_line(event: Response) -> str:
        version = event.http_version.decode("ascii")
        return f"HTTP/{version} {event.status_code} {event.reason.decode('latin-1')}\r\n"

    def _set_head(self, event: Response) -> None:
        if self.debuglevel > 0:
            print("reply:", repr(self._status_line(event)))
        if event.http_version == b"1.0":
            self.version = 10
        elif event.http_version.startswith(b"1."):
            self.version = 11  # HTTP/1.x, x >= 1, is spoken as HTTP/1.1
        else:
            raise UnknownProtocol(f"HTTP/{event.http_version.decode('latin-1')}")
        self.status = self.code = event.status_code
        self.reason = event.reason.decode("latin-1").strip()
        self._fields = event.headers
        if self.debuglevel > 0:
            for name, value in event.headers.text_items():
                print("header:", name + ":", value)
        length, codings, _ = framing_fields(event.headers)
        self.chunked = ends_in_chunked(codings)
        self.chunk_left = None
        self.will_close = not self._core.keep_alive  # type: ignore[union-attr]
        # The core already refused malformed or conflicting lengths; this only
        # exposes the number as http.client's ``length`` attribute.
        self.length = None if self.chunked or length is None else int(length.split(b",")[0])
        status = event.status_code
        if status in (204, 304) or 100 <= status < 200 or self._method == "HEAD":
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True

    @property
    def headers(self) -> HTTPMessage | None:
        """The header fields as an ``HTTPMessage`` (built on first use)."""
        if self._msg is None and self._fields is not None:
            self._msg = _message_from(self._fields)
        return self._msg

    @headers.setter
    def headers(self, value: HTTPMessage | None) -> None:
        self._msg = value

    msg = headers

    def getheader(self, name: str, default: Any = None) -> Any:
        """All values of ``name`` joined with ``", "``, or ``default``."""
        if self._fields is None:
            raise ResponseNotReady()
        values = self._fields.get_all(name)
        if values:
            return ", ".join(v.decode("latin-1") for v in values)
        if isinstance(default, str) or not hasattr(default, "__iter__"):
            return default
        return ", ".join(default)  # as http.client: an iterable default is joined too

    def getheaders(self) -> list[tuple[str, str]]:
        if self._fields is None:
            raise ResponseNotReady()
        return self._fields.text_items()

    def info(self) -> HTTPMessage | None:
        return self.headers

    def geturl(self) -> str | None:
        return self.url

    def getcode(self) -> int | str:
        return self.status

    # -- the body ---------------------------------------------------------------

    def _fill(self) -> None:
        """One socket read into the core (``b""`` tells it the peer closed)."""
        fp = self.fp
        if fp is None:
            raise ValueError("I/O operation on closed response")
        core = self._core
        assert core is not None
        hint = core.read_hint() if self._exact else -1
        if hint == 0:
            core.receive_data(fp.readline(MAX_LINE + 1))
            return
        read = getattr(fp, "read1", None) or fp.read
        core.receive_data(read(hint if 0 < hint < SYNC_READ_CHUNK else SYNC_READ_CHUNK))

    def _next_chunk(self) -> bytes:
        """The next piece of body from the core; ``b""`` once the body is over."""
        if self._deferred is not None:
            exc, self._deferred = self._deferred, None
            raise exc
        if self._body_done:
            return b""
        core = self._core
        assert core is not None
        while True:
            event = core.next_event()
            if event is NEED_DATA:
                self._fill()
            elif isinstance(event, Data):
                if event.data:
                    return event.data
            elif isinstance(event, EndOfMessage):
                self.trailers = event.trailers
                self._body_done = True
                return b""
            else:  # PAUSED / ConnectionClosed: nothing more belongs to this body
                self._body_done = True
                return b""

    def _body_over(self) -> bool:
        """True when every body byte was returned; looks only at bytes already received."""
        if self._pending:
            return False
        if self._body_done:
            return True
        core = self._core
        assert core is not None
        try:
            event = core.next_event()
        except HTTPException as exc:
            self._deferred = exc  # raised by the next read, after this one's data
            return False
        if isinstance(event, Data):
            self._pending = event.data
            return not event.data and self._body_over()
        if isinstance(event, EndOfMessage):
            self.trailers = event.trailers
            self._body_done = True
            return True
        return False

    def _incomplete(self, partial: bytes, exc: IncompleteRead) -> IncompleteRead:
        expected = exc.expected
        if isinstance(self.length, int) and not self.chunked:
            expected = self.length - len(partial)
        self._close_conn()
        if isinstance(exc, InvalidChunk):
            return InvalidChunk("", partial)  # http.client's text; the core's error is the cause
        return IncompleteRead(partial, expected)

    def _took(self, data: bytes) -> bytes:
        """Account for body bytes handed to the caller; close when the body is over."""
        if isinstance(self.length, int):
            self.length -= len(data)
        if self._body_over():
            self._close_conn()
        return data

    def _skip_body(self) -> bool:
        """HEAD answers and closed responses have no body to read."""
        if self.fp is None:
            return True
        if self._method == "HEAD":
            self._close_conn()
            return True
        return False

    def read(self, amt: int | None = None) -> bytes:
        if self._skip_body():
            return b""
        if amt is not None and amt >= 0:
            return self._read_amount(amt)
        parts = [self._pending]
        self._pending = b""
        try:
            while chunk := self._next_chunk():
                parts.append(chunk)
        except IncompleteRead as exc:
            raise self._incomplete(b"".join(parts), exc) from exc
        data = b"".join(parts)
        if isinstance(self.length, int):
            self.length = 0
        self._close_conn()
        return data

    def _read_amount(self, amt: int) -> bytes:
        parts = [self._pending]
        have = len(self._pending)
        self._pending = b""
        try:
            while have < amt:
                chunk = self._next_chunk()
                if not chunk:
                    break
                parts.append(chunk)
                have += len(chunk)
        except IncompleteRead as exc:
            raise self._incomplete(b"".join(parts), exc) from exc
        data = b"".join(parts)
        if len(data) > amt:
            data, self._pending = data[:amt], data[amt:]
        if not data and amt:
            self._close_conn()
            return data
        return self._took(data)

    def readinto(self, b: Any) -> int:
        with memoryview(b) as view, view.cast("B") as target:
            data = self.read(len(target))
            target[: len(data)] = data
        return len(data)

    def read1(self, n: int = -1) -> bytes:
        """At most ``n`` body bytes, with at most one socket read."""
        if n == 0 or self._skip_body():
            return b""
        self._ensure_pending()
        if n < 0 or n >= len(self._pending):
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:n], self._pending[n:]
        if not data:
            self._close_conn()
            return data
        return self._took(data)

    def _ensure_pending(self) -> None:
        """Fetch the next piece of body into ``_pending`` unless one is waiting."""
        if not self._pending:
            try:
                self._pending = self._next_chunk()
            except IncompleteRead as exc:
                raise self._incomplete(b"", exc) from exc

    def peek(self, n: int = 0) -> bytes:
        """Body bytes available without consuming them (reads the socket if none are)."""
        if self._skip_body():
            return b""
        self._ensure_pending()
        return self._pending

    def readline(self, limit: int | None = -1) -> bytes:
        if limit == 0 or self._skip_body():
            return b""
        if limit is None:
            limit = -1
        buf = self._pending
        self._pending = b""
        try:
            while True:
                end = buf.find(b"\n") + 1
                if end and (limit < 0 or end <= limit):
                    break
                if 0 <= limit <= len(buf):
                    end = limit
                    break
                chunk = self._next_chunk()
                if not chunk:
                    end = len(buf)
                    break
                buf += chunk
        except IncompleteRead as exc:
            raise self._incomplete(buf, exc) from exc
        data, self._pending = buf[:end], buf[end:]
        if not data:
            self._close_conn()
            return data
        return self._took(data)

    # -- file-object plumbing ---------------------------------------------------

    def _close_conn(self) -> None:
        fp, self.fp = self.fp, None
        if fp is not None:
            fp.close()

    def close(self) -> None:
        try:
            super().close()  # sets ``closed``
        finally:
            self._close_conn()

    def flush(self) -> None:
        super().flush()
        if self.fp:
            self.fp.flush()

    def readable(self) -> bool:
        return True

    def isclosed(self) -> bool:
        """True once the body was read to the end or the response was closed."""
        return self.fp is None

    def fileno(self) -> int:
        if self.fp is None:
            raise ValueError("I/O operation on closed response")
        return self.fp.fileno()


_FRAMING_NAMES = frozenset({b"content-length", b"transfer-encoding", b"expect"})


def framing_fields(fields: Headers) -> tuple[bytes | None, bytes | None, bytes | None]:
    """``Content-Length``, ``Transfer-Encoding`` (joined) and ``Expect`` of a head's fields.

    One pass over the fields: this runs for every request.
    """
    found: dict[bytes, bytes] = {}
    for name, value in fields.raw:
        key = name.lower()
        if key in _FRAMING_NAMES:
            found[key] = found[key] + b", " + value if key in found else value
    return found.get(b"content-length"), found.get(b"transfer-encoding"), found.get(b"expect")


def ends_in_chunked(codings: bytes | None) -> bool:
    return codings is not None and codings.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
