"""The synchronous client: Python 3.11's ``http.client`` API over the sans-IO core.

This module owns sockets, files and the ``http.client`` state machine; every byte
of HTTP it sends or receives is serialised or parsed by
``protocol.connection.Connection``. One core ``Connection`` lives as long as one
socket, so bytes that arrive early (a pipelined ``100 Continue``, the next
response) are never lost between response objects.
"""

from __future__ import annotations

import collections.abc
import errno
import io
import re
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from protocol._abnf import is_token
from protocol._request_parts import (
    check_body_type,
    encode_latin1,
    field_value,
    idna_host,
)
from protocol.connection import CLIENT, DONE, IDLE, Connection
from protocol.errors import (
    CannotSendHeader,
    CannotSendRequest,
    HTTPException,
    InvalidURL,
    LocalProtocolError,
    NotConnected,
    RemoteDisconnected,
    ResponseNotReady,
)
from protocol.events import NEED_DATA, Data, EndOfMessage, Request, Response
from protocol.headers import Headers
from protocol.limits import SYNC_READ_CHUNK
from protocol.response import (
    HTTPResponse,
    ends_in_chunked,
    framing_fields,
)

HTTP_PORT = 80
HTTPS_PORT = 443

# The connection states of http.client, with the same names (they are the
# arguments of CannotSendRequest and ResponseNotReady).
_CS_IDLE = "Idle"
_CS_REQ_STARTED = "Request-started"
_CS_REQ_SENT = "Request-sent"

_METHODS_EXPECTING_BODY = frozenset({"PATCH", "POST", "PUT"})

# CVE-2019-9740 / CVE-2019-9947: a CR or LF (or any control or space) in a URL or
# host splits the request line and injects headers.
_disallowed_url_char_re = re.compile("[\x00-\x20\x7f]")
# bpo-39603: a CR or LF in the method injects headers too.
_disallowed_method_char_re = re.compile("[\x00-\x1f]")


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
        # The header lines of the request being built, as http.client keeps them
        # (code that watches them replaces this list); the core gets them as pairs.
        self._buffer: list[bytes] = []
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
        host = idna_host(self._tunnel_host or "")
        if b":" in host:
            host = b"[" + host + b"]"
        authority = b"%s:%d" % (host, self._tunnel_port or 0)
        fields = Headers([(b"Host", authority)])
        for name, value in self._tunnel_headers.items():
            fields.add(name, encode_latin1(value, "header") if isinstance(value, str) else value)
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
            if core.peer_closed:
                return False  # the server already closed: the next request needs a new socket
            core.start_next_cycle()
            return True
        return False

    def _ready_socket(self) -> Connection:
        """A socket whose core can carry a new request: reused, or (re)opened."""
        if self.sock is not None and not self._core_reusable():
            # The last response was not read to its end or the server wants
            # the connection closed: the old socket cannot carry another request.
            sock, self.sock = self.sock, None
            self._core = None
            sock.close()
        if self.sock is None:
            if not self.auto_open:
                raise NotConnected()
            self.connect()
        if self._core is None:
            # A subclass's connect() (a Unix-socket adapter, a socket double) may only
            # set ``self.sock``: the socket is new, so is its core.
            self._core = Connection(CLIENT)
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
        self._validate_method(method)
        url = url or "/"
        self._validate_path(url)
        line = self._encode_request(f"{method} {url} {self._http_vsn_str}")
        method_b, target_b, _ = line.split(b" ", 2)  # neither part may hold a space
        self._head = (method_b, target_b)
        self._method = method
        del self._buffer[:]
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
            return idna_host(netloc)
        host, port = self.host, self.port
        if self._tunnel_host:
            host, port = self._tunnel_host, self._tunnel_port or self.default_port
        host_enc = idna_host(host)
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
        if not is_token(name):
            raise ValueError(f"Invalid header name {name!r}")
        if len(values) == 1:
            value = field_value(values[0])
        else:
            # http.client folds several values onto continuation lines; obs-fold is
            # obsolete (RFC 9112 5.2) and refused by careful servers: join as a list.
            value = b", ".join([field_value(v) for v in values])
        self._buffer.append(name + b": " + value)

    def endheaders(self, message_body: Any = None, *, encode_chunked: bool = False) -> None:
        """Send the request head, then ``message_body`` if given."""
        if self.__state != _CS_REQ_STARTED:
            raise CannotSendHeader()
        self.__state = _CS_REQ_SENT
        self._send_output(message_body, encode_chunked=encode_chunked)

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        # Each line is "name: value" as putheader() built it; a name (a token) has no colon.
        fields = Headers._trusted([line.partition(b": ")[::2] for line in self._buffer])
        length, codings, expect = framing_fields(fields)
        if encode_chunked and message_body is not None and length is codings is None:
            # http.client would chunk the body without saying so; say so.
            fields.add(b"Transfer-Encoding", b"chunked")
            codings = b"chunked"
        if message_body is not None:
            check_body_type(message_body)  # before anything goes out
        core = self._ready_socket()
        method, target = self._head or (b"GET", b"/")
        version = self._http_vsn_str.partition("/")[2].encode("ascii")
        head = core.send(Request(method, target, fields, http_version=version))
        if message_body is None:
            self._send_head_only(core, head, length, codings)
            return
        # The core frames the body by the headers we send; a body whose framing
        # the caller does by hand (pre-chunked data, no length at all) goes out
        # raw, and the core never sees its end, so the socket is not reused.
        through_core = length is not None or (encode_chunked and ends_in_chunked(codings))
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
        if isinstance(body, bytes | bytearray) and len(body) <= SYNC_READ_CHUNK:
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
                        data = sock.recv(SYNC_READ_CHUNK)
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
            body = encode_latin1(body, "body")
        self.endheaders(body, encode_chunked=encode_chunked)

    @staticmethod
    def _get_content_length(body: Any, method: str) -> int | None:
        """The body's length in bytes, or None when only reading it would tell."""
        if body is None:
            return 0 if method.upper() in _METHODS_EXPECTING_BODY else None
        if hasattr(body, "read"):
            # Sent chunked, as http.client does: fstat() says 0 for /proc files and
            # goes stale for a file that is still growing.
            return None
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
