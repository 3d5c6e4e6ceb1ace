"""The synchronous client: Python 3.11's ``http.client`` API over the sans-IO core.

This module owns sockets, files and the ``http.client`` state machine; every byte
of HTTP it sends or receives is serialised or parsed by
``protocol.connection.Connection``. One core ``Connection`` lives as long as one
socket, so bytes that arrive early (a pipelined ``100 Continue``, the next
response) are never lost between response objects.
"""

from __future__ import annotations

import collections.abc
import email.message
import errno
import io
import os
import re
import socket
import ssl
import stat
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from protocol._abnf import field_value_re, token_re
from protocol.connection import CLIENT, DONE, IDLE, Connection
from protocol.errors import (
    CannotSendHeader,
    CannotSendRequest,
    HTTPException,
    IncompleteRead,
    InvalidURL,
    LocalProtocolError,
    NotConnected,
    RemoteDisconnected,
    RemoteProtocolError,
    ResponseNotReady,
    UnknownProtocol,
)
from protocol.events import NEED_DATA, ConnectionClosed, Data, EndOfMessage, Request, Response
from protocol.headers import Headers

HTTP_PORT = 80
HTTPS_PORT = 443

_UNKNOWN = "UNKNOWN"

# The connection states of http.client, with the same names (they are the
# arguments of CannotSendRequest and ResponseNotReady).
_CS_IDLE = "Idle"
_CS_REQ_STARTED = "Request-started"
_CS_REQ_SENT = "Request-sent"

_METHODS_EXPECTING_BODY = frozenset({"PATCH", "POST", "PUT"})

_READ_SIZE = 65536
"""How much one socket read asks for: large reads keep the per-byte cost low."""

# CVE-2019-9740 / CVE-2019-9947: a CR or LF (or any control or space) in a URL or
# host splits the request line and injects headers.
_disallowed_url_char_re = re.compile("[\x00-\x20\x7f]")
# bpo-39603: a CR or LF in the method injects headers too.
_disallowed_method_char_re = re.compile("[\x00-\x1f]")


def _encode(data: str, name: str = "data") -> bytes:
    """``data`` as ISO-8859-1, with http.client's advice when it does not fit."""
    try:
        return data.encode("latin-1")
    except UnicodeEncodeError as err:
        raise UnicodeEncodeError(
            err.encoding,
            err.object,
            err.start,
            err.end,
            f"{name.title()} ({data[err.start : err.end]!r:.20}) is not valid Latin-1. "
            f"Use {name}.encode('utf-8') if you want to send it encoded in UTF-8.",
        ) from None


_is_token = token_re.fullmatch
_is_field_value = field_value_re.fullmatch


def _field_value(value: str | bytes | int) -> bytes:
    """A header value as bytes (str as ISO-8859-1), refused if it holds CR, LF or controls."""
    if isinstance(value, str):
        raw = value.encode("latin-1")
    elif isinstance(value, int):
        raw = str(value).encode("ascii")
    else:
        raw = bytes(value)  # type: ignore[arg-type]
    if not _is_field_value(raw):
        raise ValueError(f"Invalid header value {raw!r}")
    return raw


def _idna_host(host: str) -> bytes:
    try:
        return host.encode("ascii")
    except UnicodeEncodeError:
        return host.encode("idna")


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

    # -- the head ---------------------------------------------------------------

    def begin(self) -> None:
        """Read the status line and headers (skipping interim 1xx responses)."""
        if self._fields is not None:
            return  # already begun
        if self._core is None:
            self._core = _standalone_core(self._method)
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
        pending, eof = core.trailing_data
        if not pending and not eof:
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
        length, codings, _ = _framing_fields(event.headers)
        self.chunked = _last_is_chunked(codings)
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
        read = getattr(fp, "read1", None) or fp.read
        self._core.receive_data(read(_READ_SIZE))  # type: ignore[union-attr]

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
            raise self._incomplete(b"".join(parts), exc) from None
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
            raise self._incomplete(b"".join(parts), exc) from None
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
        if not self._pending:
            try:
                self._pending = self._next_chunk()
            except IncompleteRead as exc:
                raise self._incomplete(b"", exc) from None
        if n < 0 or n >= len(self._pending):
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:n], self._pending[n:]
        if not data:
            self._close_conn()
            return data
        return self._took(data)

    def peek(self, n: int = 0) -> bytes:
        """Body bytes available without consuming them (reads the socket if none are)."""
        if self._skip_body():
            return b""
        if not self._pending:
            try:
                self._pending = self._next_chunk()
            except IncompleteRead as exc:
                raise self._incomplete(b"", exc) from None
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
            raise self._incomplete(buf, exc) from None
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


class HTTPConnection:
    """One HTTP/1.1 connection with the ``http.client.HTTPConnection`` API."""

    _http_vsn = 11
    _http_vsn_str = "HTTP/1.1"

    response_class = HTTPResponse
    default_port = HTTP_PORT
    auto_open = 1
    debuglevel = 0
    expect_continue_timeout = 1.0
    """Longest wait for ``100 Continue`` before the body is sent anyway (as curl does)."""

    def __init__(
        self,
        host: str,
        port: int | None = None,
        timeout: float | object | None = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
        source_address: tuple[str, int] | None = None,
        blocksize: int = 8192,
    ) -> None:
        self.timeout = timeout
        self.source_address = source_address
        self.blocksize = blocksize
        self.sock: Any = None
        self.__response: HTTPResponse | None = None
        self.__state = _CS_IDLE
        self._method: str | None = None
        self._tunnel_host: str | None = None
        self._tunnel_port: int | None = None
        self._tunnel_headers: dict[str, str] = {}
        self._tunnel_leftover = b""
        self._core: Connection | None = None
        self._head: tuple[bytes, bytes] | None = None
        self._fields = Headers()
        self._user_body_left = 0  # declared Content-Length still to come through send()
        self._early_response: Response | None = None
        self.host, self.port = self._get_hostport(host, port)
        self._validate_host(self.host)
        self._create_connection = socket.create_connection

    # -- addresses --------------------------------------------------------------

    def _get_hostport(self, host: str, port: int | None) -> tuple[str, int]:
        if port is None:
            colon = host.rfind(":")
            bracket = host.rfind("]")  # an IPv6 address is written [::1]
            if colon > bracket:
                text = host[colon + 1 :]
                host = host[:colon]
                if not text:
                    port = self.default_port  # "host:" means the default port
                elif text.isascii() and text.isdigit():
                    port = int(text)
                else:
                    raise InvalidURL(f"nonnumeric port: '{text}'")
            else:
                port = self.default_port
        if not 0 <= port <= 65535:
            raise InvalidURL(f"port out of range: {port} (must be 0-65535)")
        if host[:1] == "[" and host[-1:] == "]":
            host = host[1:-1]
        return host, port

    @staticmethod
    def _validate_host(host: str) -> None:
        HTTPConnection._validate_path(host)  # the same rule as http.client: no controls

    @staticmethod
    def _validate_method(method: str) -> None:
        match = _disallowed_method_char_re.search(method)
        if match:
            raise ValueError(
                f"method can't contain control characters. {method!r} "
                f"(found at least {match.group()!r})"
            )

    @staticmethod
    def _validate_path(url: str) -> None:
        match = _disallowed_url_char_re.search(url)
        if match:
            raise InvalidURL(
                f"URL can't contain control characters. {url!r} (found at least {match.group()!r})"
            )

    def set_debuglevel(self, level: int) -> None:
        self.debuglevel = level

    def set_tunnel(
        self, host: str, port: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Reach ``host:port`` through the proxy at ``self.host`` with ``CONNECT``."""
        if self.sock:
            raise RuntimeError("Can't set up tunnel for established connection")
        self._tunnel_host, self._tunnel_port = self._get_hostport(host, port)
        self._validate_host(self._tunnel_host)
        if headers:
            self._tunnel_headers = dict(headers)
        else:
            self._tunnel_headers.clear()

    # -- the socket -------------------------------------------------------------

    def connect(self) -> None:
        """Open the TCP connection (and the CONNECT tunnel, if one was set)."""
        self.sock = self._create_connection(
            (self.host, self.port), self.timeout, self.source_address
        )
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            if e.errno != errno.ENOPROTOOPT:
                raise
        self._tunnel_leftover = b""
        if self._tunnel_host:
            self._tunnel()
        self._core = Connection(CLIENT)
        if self._tunnel_leftover:
            self._core.receive_data(self._tunnel_leftover)

    def _tunnel(self) -> None:
        host = _idna_host(self._tunnel_host or "")
        if b":" in host:
            host = b"[" + host + b"]"
        authority = b"%s:%d" % (host, self._tunnel_port or 0)
        fields = Headers([(b"Host", authority)])
        for name, value in self._tunnel_headers.items():
            fields.add(name, _encode(value, "header") if isinstance(value, str) else value)
        core = Connection(CLIENT)
        head = core.send(Request(b"CONNECT", authority, fields))
        head += core.send(EndOfMessage())
        self.send(head)
        response = self.response_class(self.sock, self.debuglevel, method="CONNECT")
        response._core = core
        try:
            response.begin()
            if not 200 <= response.status < 300:  # type: ignore[operator]
                self.close()
                raise OSError(f"Tunnel connection failed: {response.status} {response.reason}")
            self._tunnel_leftover = core.trailing_data[0]
        finally:
            response._close_conn()

    def close(self) -> None:
        """Close the socket; a response still being read keeps its own file."""
        self.__state = _CS_IDLE
        try:
            sock, self.sock = self.sock, None
            self._core = None
            if sock:
                sock.close()
        finally:
            response, self.__response = self.__response, None
            if response:
                response.close()

    def _core_reusable(self) -> bool:
        """Start the core's next cycle if the last exchange ended cleanly with keep-alive."""
        core = self._core
        if core is None:
            # A socket the caller assigned to ``sock`` itself (as http.client's
            # tests do with socket doubles) starts fresh.
            self._core = Connection(CLIENT)
            return True
        if core.our_state is IDLE and core.their_state is IDLE:
            return True
        if core.our_state is DONE and core.their_state is DONE and core.keep_alive:
            core.start_next_cycle()
            return True
        return False

    def _ready_socket(self) -> Connection:
        """A socket whose core can carry a new request: reused, or (re)opened."""
        if self.sock is not None and not self._core_reusable():
            # The last response was not read to its end or the server wants
            # the connection closed: the old socket cannot carry another request.
            sock, self.sock = self.sock, None
            sock.close()
        if self.sock is None:
            if not self.auto_open:
                raise NotConnected()
            self.connect()
        assert self._core is not None
        return self._core

    def send(self, data: Any) -> None:
        """Send ``data`` (bytes-like, a file or an iterable of bytes) to the server."""
        if self.sock is None:
            if not self.auto_open:
                raise NotConnected()
            self.connect()
        if self.debuglevel > 0:
            print("send:", repr(data))
        for block in self._blocks(data, "data"):
            if self._user_body_left:
                block = self._frame_user_body(block)
            self.sock.sendall(block)

    def _blocks(self, data: Any, name: str) -> Iterator[Any]:
        if hasattr(data, "read"):
            yield from self._read_readable(data)
            return
        try:
            memoryview(data)
        except TypeError:
            pass
        else:
            yield data
            return
        if isinstance(data, str) or not isinstance(data, collections.abc.Iterable):
            raise TypeError(
                f"{name} should be a bytes-like object or an iterable, got {type(data)!r}"
            )
        yield from data

    def _read_readable(self, readable: Any) -> Iterator[bytes]:
        if self.debuglevel > 0:
            print("reading a readable")
        encode = isinstance(readable, io.TextIOBase)
        if encode and self.debuglevel > 0:
            print("encoding file using iso-8859-1")
        while datablock := readable.read(self.blocksize):
            yield datablock.encode("iso-8859-1") if encode else datablock

    def _frame_user_body(self, block: Any) -> bytes:
        """Pass body bytes the caller sends after endheaders() through the core."""
        data = bytes(block)
        if len(data) > self._user_body_left:
            raise LocalProtocolError(
                f"send() of {len(data)} bytes goes past the declared Content-Length "
                f"({self._user_body_left} bytes left); fix the Content-Length header"
            )
        core = self._core
        assert core is not None
        out = core.send(Data(data))
        self._user_body_left -= len(data)
        if not self._user_body_left:
            out += core.send(EndOfMessage())
        return out

    # -- building a request -----------------------------------------------------

    def putrequest(
        self, method: str, url: str, skip_host: bool = False, skip_accept_encoding: bool = False
    ) -> None:
        """Start a request: the request line, then ``Host`` and ``Accept-Encoding``."""
        if self.__response and self.__response.isclosed():
            self.__response = None
        if self.__state != _CS_IDLE:
            raise CannotSendRequest(self.__state)
        if self.__response is not None and not self.__response._body_over():
            raise CannotSendRequest(
                "the previous response was not read to the end: read or close it first"
            )
        self._validate_method(method)
        url = url or "/"
        self._validate_path(url)
        line = self._encode_request(f"{method} {url} {self._http_vsn_str}")
        method_b, target_b, _ = line.split(b" ", 2)  # neither part may hold a space
        self._head = (method_b, target_b)
        self._method = method
        self._fields = Headers()
        self._user_body_left = 0
        self._early_response = None
        self.__state = _CS_REQ_STARTED
        if self._http_vsn == 11:
            if not skip_host:
                self.putheader("Host", self._host_header(url))
            if not skip_accept_encoding:
                self.putheader("Accept-Encoding", "identity")

    def _encode_request(self, request: str) -> bytes:
        """The request line as bytes (ASCII); subclasses may choose another encoding."""
        return request.encode("ascii")

    def _host_header(self, url: str) -> bytes:
        netloc = urlsplit(url).netloc if url.startswith("http") else ""
        if netloc:
            return _idna_host(netloc)
        host, port = self.host, self.port
        if self._tunnel_host:
            host, port = self._tunnel_host, self._tunnel_port or self.default_port
        host_enc = _idna_host(host)
        if ":" in host:
            # An IPv6 literal is written in brackets, without its zone id (RFC 3986;
            # "%2" names a local interface and means nothing to the server).
            host_enc = b"[" + host_enc.partition(b"%")[0] + b"]"
        if port == self.default_port:
            return host_enc
        return b"%s:%d" % (host_enc, port)

    def putheader(self, header: str | bytes, *values: str | bytes | int) -> None:
        """Add a header field; several values are joined as one comma-separated list."""
        if self.__state != _CS_REQ_STARTED:
            raise CannotSendHeader()
        name = header.encode("ascii") if isinstance(header, str) else bytes(header)
        if not _is_token(name):
            raise ValueError(f"Invalid header name {name!r}")
        if len(values) == 1:
            value = _field_value(values[0])
        else:
            # http.client folds several values onto continuation lines; obs-fold is
            # obsolete (RFC 9112 5.2) and refused by careful servers: join as a list.
            value = b", ".join([_field_value(v) for v in values])
        self._fields.raw.append((name, value))

    def endheaders(self, message_body: Any = None, *, encode_chunked: bool = False) -> None:
        """Send the request head, then ``message_body`` if given."""
        if self.__state != _CS_REQ_STARTED:
            raise CannotSendHeader()
        self.__state = _CS_REQ_SENT
        self._send_output(message_body, encode_chunked=encode_chunked)

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        length, codings, expect = _framing_fields(self._fields)
        if encode_chunked and message_body is not None and length is codings is None:
            # http.client would chunk the body without saying so; say so.
            self._fields.add(b"Transfer-Encoding", b"chunked")
            codings = b"chunked"
        if message_body is not None:
            _check_body_type(message_body)  # before anything goes out
        core = self._ready_socket()
        method, target = self._head or (b"GET", b"/")
        version = self._http_vsn_str.partition("/")[2].encode("ascii")
        head = core.send(Request(method, target, self._fields, http_version=version))
        if message_body is None:
            self._send_head_only(core, head, length, codings)
            return
        # The core frames the body by the headers we send; a body whose framing
        # the caller does by hand (pre-chunked data, no length at all) goes out
        # raw, and the core never sees its end, so the socket is not reused.
        through_core = length is not None or (encode_chunked and _last_is_chunked(codings))
        if expect is not None and expect.strip().lower() == b"100-continue":
            self.send(head)
            head = b""
            if not self._await_continue(core):
                return
        self._send_body(core, head, message_body, through_core)

    def _send_head_only(
        self, core: Connection, head: bytes, length: bytes | None, codings: bytes | None
    ) -> None:
        """Send a head whose body (if it declares one) the caller sends with send()."""
        # The core accepted the header, so its first list element is digits.
        declared = int(length.split(b",")[0]) if length is not None else 0
        if declared:
            self.send(head)
            self._user_body_left = declared  # later send() calls are the body
        elif codings is not None:
            self.send(head)  # pre-chunked data follows, sent raw
        else:
            self.send(head + core.send(EndOfMessage()))

    def _send_body(self, core: Connection, head: bytes, body: Any, through_core: bool) -> None:
        if isinstance(body, bytes | bytearray) and len(body) <= _READ_SIZE:
            framed = bytes(body)
            if through_core:
                framed = core.send(Data(framed)) + core.send(EndOfMessage())
            self.send(head + framed)  # one write for a small request
            return
        if head:
            self.send(head)
        for block in self._blocks(body, "message_body"):
            if not block:
                continue  # an empty chunk would end a chunked body early
            self.send(core.send(Data(bytes(block))) if through_core else block)
        if through_core:
            tail = core.send(EndOfMessage())
            if tail:
                self.send(tail)

    def _await_continue(self, core: Connection) -> bool:
        """Wait (bounded) for ``100 Continue``: True to send the body, False on a final answer."""
        wait = self.expect_continue_timeout
        if isinstance(self.timeout, int | float):
            wait = min(wait, self.timeout)
        deadline = time.monotonic() + wait
        sock = self.sock
        saved = sock.gettimeout()
        try:
            while True:
                event = core.next_event()
                if event is NEED_DATA:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return True
                    sock.settimeout(left)
                    try:
                        data = sock.recv(_READ_SIZE)
                    except TimeoutError:
                        return True
                    core.receive_data(data)
                    continue
                if not isinstance(event, Response):
                    raise RemoteDisconnected("Remote end closed connection without response")
                if event.status_code == 100:
                    if self.debuglevel > 0:
                        print("reply:", repr(HTTPResponse._status_line(event)))
                    return True
                if not event.informational:
                    self._early_response = event  # answered without the body
                    return False
        finally:
            sock.settimeout(saved)

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: Any = {},  # noqa: B006 - http.client's signature; never mutated
        *,
        encode_chunked: bool = False,
    ) -> None:
        """Send a whole request: line, headers (with framing added) and body."""
        names = frozenset(k.lower() for k in headers)
        self.putrequest(
            method,
            url,
            skip_host="host" in names,
            skip_accept_encoding="accept-encoding" in names,
        )
        if "content-length" not in names:
            if "transfer-encoding" not in names:
                encode_chunked = False
                length = self._get_content_length(body, method)
                if length is None:
                    if body is not None:
                        encode_chunked = True
                        self.putheader("Transfer-Encoding", "chunked")
                else:
                    self.putheader("Content-Length", str(length))
        else:
            encode_chunked = False
        for name, value in headers.items():
            self.putheader(name, value)
        if isinstance(body, str):
            body = _encode(body, "body")
        self.endheaders(body, encode_chunked=encode_chunked)

    @staticmethod
    def _get_content_length(body: Any, method: str) -> int | None:
        """The body's length in bytes, or None when only reading it would tell."""
        if body is None:
            return 0 if method.upper() in _METHODS_EXPECTING_BODY else None
        if hasattr(body, "read"):
            return _file_length(body)
        try:
            return memoryview(body).nbytes
        except TypeError:
            pass
        if isinstance(body, str):
            return len(body)
        return None

    # -- the response -----------------------------------------------------------

    def getresponse(self) -> HTTPResponse:
        """The response to the request sent; raises ResponseNotReady out of turn."""
        if self.__response and self.__response.isclosed():
            self.__response = None
        if self.__state != _CS_REQ_SENT or self.__response:
            raise ResponseNotReady(self.__state)
        if self.debuglevel > 0:
            response = self.response_class(self.sock, self.debuglevel, method=self._method)
        else:
            response = self.response_class(self.sock, method=self._method)
        if isinstance(response, HTTPResponse):
            response._core = self._core
            response._first_event, self._early_response = self._early_response, None
        try:
            try:
                response.begin()
            except (ConnectionError, HTTPException):
                # The socket's core is broken or the peer is gone: a new
                # request must start on a fresh connection.
                self.close()
                raise
            self.__state = _CS_IDLE
            if response.will_close:
                self.close()  # the response keeps the socket until it is read
            else:
                self.__response = response
            return response
        except BaseException:
            response.close()
            raise


_FRAMING_NAMES = frozenset({b"content-length", b"transfer-encoding", b"expect"})


def _framing_fields(fields: Headers) -> tuple[bytes | None, bytes | None, bytes | None]:
    """``Content-Length``, ``Transfer-Encoding`` (joined) and ``Expect`` of our request.

    One pass over the fields: this runs for every request.
    """
    found: dict[bytes, bytes] = {}
    for name, value in fields.raw:
        key = name.lower()
        if key in _FRAMING_NAMES:
            found[key] = found[key] + b", " + value if key in found else value
    return found.get(b"content-length"), found.get(b"transfer-encoding"), found.get(b"expect")


def _last_is_chunked(codings: bytes | None) -> bool:
    return codings is not None and codings.rsplit(b",", 1)[-1].strip().lower() == b"chunked"


def _check_body_type(body: Any) -> None:
    if hasattr(body, "read") or isinstance(body, bytes | bytearray | memoryview):
        return
    if isinstance(body, str) or not isinstance(body, collections.abc.Iterable):
        try:
            memoryview(body)
        except TypeError:
            raise TypeError(
                f"message_body should be a bytes-like object or an iterable, got {type(body)!r}"
            ) from None


def _file_length(body: Any) -> int | None:
    """Bytes left in a binary file with a known size; None for text or unsized streams."""
    if isinstance(body, io.TextIOBase):
        return None  # the byte length depends on the encoding
    if isinstance(body, io.BytesIO):
        return len(body.getbuffer()) - body.tell()
    try:
        info = os.fstat(body.fileno())
        position = body.tell()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return max(info.st_size - position, 0)


class HTTPSConnection(HTTPConnection):
    """HTTP over TLS; verifies the certificate and the host name unless told otherwise."""

    default_port = HTTPS_PORT

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        context: ssl.SSLContext | None = None,
        key_file: str | None = None,
        cert_file: str | None = None,
        timeout: float | object | None = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
        source_address: tuple[str, int] | None = None,
        blocksize: int = 8192,
        check_hostname: bool | None = None,
    ) -> None:
        super().__init__(host, port, timeout, source_address, blocksize)
        self.key_file = key_file
        self.cert_file = cert_file
        if context is None:
            context = ssl.create_default_context()
            context.set_alpn_protocols(["http/1.1"])
            if context.post_handshake_auth is not None:
                context.post_handshake_auth = True
        if check_hostname is None:
            check_hostname = context.check_hostname
        if check_hostname and context.verify_mode == ssl.CERT_NONE:
            raise ValueError(
                "check_hostname needs a SSL context with either CERT_OPTIONAL or CERT_REQUIRED"
            )
        if key_file or cert_file:
            context.load_cert_chain(cert_file, key_file)  # type: ignore[arg-type]
            if context.post_handshake_auth is not None:
                context.post_handshake_auth = True  # servers may ask for it after TLS 1.3
        context.check_hostname = check_hostname
        self._context = context

    def connect(self) -> None:
        """TCP (and the tunnel), then the TLS handshake with SNI for the origin."""
        super().connect()
        if self._tunnel_leftover:
            self.close()
            raise OSError("Tunnel connection failed: the proxy sent data before the TLS handshake")
        server_hostname = self._tunnel_host or self.host
        try:
            self.sock = self._context.wrap_socket(self.sock, server_hostname=server_hostname)
        except BaseException:
            self.close()
            raise
        self._core = Connection(CLIENT)
