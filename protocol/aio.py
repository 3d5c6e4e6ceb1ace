"""The asyncio client: one HTTP/1.1 connection over the same sans-IO core as the sync client.

Bytes come from an ``asyncio.StreamReader`` in large reads and are fed to
``protocol.connection.Connection``; writes go to the ``StreamWriter`` and wait on its
flow control. Streams (rather than a private ``asyncio.Protocol``) because after a
``101`` or a ``CONNECT`` the raw byte stream is handed over as is (``detach()``).

``phase`` always names the step in progress ("connect", "tls", "send", "status line",
"headers", "body"), so an exception can be placed without guessing.

Read timeouts cost no timer per read: each read only notes its deadline, and one lazy
timer per connection checks it (re-scheduling itself while reads keep succeeding); an
expired read fails through ``reader.set_exception``. A server holding thousands of
connections may pass a shared ``watchdog`` instead (``arm(reader, seconds)`` /
``disarm(reader)``, e.g. the proxy's one deadline keeper for all its streams).
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any, Protocol

from protocol.authority import host_port
from protocol.connection import CLIENT, DONE, IDLE, Connection
from protocol.counted import CountingReader, open_counted
from protocol.errors import (
    BadStatusLine,
    LineTooLong,
    RemoteDisconnected,
    RemoteProtocolError,
    UnknownProtocol,
)
from protocol.events import NEED_DATA, Data, EndOfMessage, Request, Response
from protocol.headers import Headers
from protocol.limits import (  # READ_CHUNK and MAX_INTERIM stay importable from here
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    MAX_INTERIM,
    MAX_LINE,
    READ_CHUNK,
)

CONNECT, TLS, SEND = "connect", "tls", "send"
STATUS_LINE, HEADERS, BODY = "status line", "headers", "body"


class ReadWatchdog(Protocol):
    """A shared keeper of read deadlines (e.g. the proxy's ``ReadDeadlines``)."""

    def arm(self, reader: asyncio.StreamReader, seconds: float) -> None: ...

    def disarm(self, reader: asyncio.StreamReader) -> None: ...


def stream_write(writer: asyncio.StreamWriter, data: bytes, peer: str = "the peer") -> None:
    """``writer.write(data)``, or ConnectionResetError when the connection is already closed.

    On a closed transport uvloop raises RuntimeError and asyncio drops the bytes without
    a word; either way the peer is gone, and callers handle that as an OSError.
    """
    if writer.transport.is_closing():
        raise ConnectionResetError(f"the connection to {peer} is closed")
    writer.write(data)


class TunnelError(OSError):
    """The proxy refused our CONNECT; ``response`` is its answer."""

    def __init__(self, message: str, response: Response) -> None:
        super().__init__(message)
        self.response = response


class AsyncHTTPConnection:
    """One HTTP/1.1 connection driven from asyncio.

    Use: ``await connect()``, ``await send_request(...)`` (or ``send_head`` /
    ``send_data`` / ``send_end``), ``await receive_response()``, ``async for chunk
    in iter_body()``, then ``await start_next_cycle()`` while ``reusable``.
    """

    __slots__ = (
        "_core",
        "_deadline",
        "_limits",
        "_reader",
        "_taken",
        "_timer",
        "_watchdog",
        "_writer",
        "connect_timeout",
        "host",
        "on_informational",
        "phase",
        "port",
        "read_timeout",
        "received",
        "response",
        "server_hostname",
        "source_address",
        "ssl",
        "tcp_connected",
        "tls_established",
        "trailers",
    )

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl: _ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 30.0,
        max_line: int = MAX_LINE,
        max_headers: int = MAX_HEADERS,
        max_header_bytes: int = MAX_HEADER_BYTES,
        source_address: tuple[str, int] | None = None,
        on_informational: Callable[[Response], Any] | None = None,
        watchdog: ReadWatchdog | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.source_address = source_address
        self.on_informational = on_informational
        self._watchdog = watchdog
        self._deadline: float | None = None  # of the read in progress (no watchdog)
        self._timer: asyncio.TimerHandle | None = None
        self._limits = {
            "max_line": max_line,
            "max_headers": max_headers,
            "max_header_bytes": max_header_bytes,
        }
        self._core = Connection(CLIENT, **self._limits)
        self._reader: CountingReader | None = None
        self._taken = 0  # bytes read from _reader over the connection's life
        self._writer: asyncio.StreamWriter | None = None
        self.phase = CONNECT
        self.tcp_connected = False
        self.tls_established = False
        self.received = 0  # bytes received in the current exchange
        self.response: Response | None = None
        self.trailers: Headers | None = None

    # -- opening ---------------------------------------------------------------

    async def connect(self) -> None:
        """TCP, then TLS when ``ssl`` was given; ``phase`` says which one failed."""
        self.phase = CONNECT
        try:
            async with asyncio.timeout(self.connect_timeout):
                self._reader, self._writer = await open_counted(
                    self.host, self.port, self.source_address
                )
        except TimeoutError:
            raise TimeoutError(
                f"connecting to {self._where} took longer than {self.connect_timeout:g} s"
            ) from None
        self.tcp_connected = True
        if self.ssl is not None:
            await self.start_tls(self.ssl, self.server_hostname or self.host)

    @property
    def _where(self) -> str:
        return host_port(self.host, self.port)

    async def start_tls(self, context: _ssl.SSLContext, hostname: str | None) -> None:
        """Upgrade the open connection to TLS (after ``connect`` or ``open_tunnel``)."""
        self.phase = TLS
        writer = self._require_writer()
        if self._core.trailing_data[0]:
            writer.transport.abort()
            raise RemoteProtocolError(
                f"{self._where} sent bytes before the TLS handshake started", status_hint=502
            )
        try:
            async with asyncio.timeout(self.connect_timeout):
                await writer.start_tls(context, server_hostname=hostname)
        except TimeoutError:
            writer.transport.abort()
            raise TimeoutError(
                f"TLS handshake with {self._where} took longer than {self.connect_timeout:g} s"
            ) from None
        except BaseException:
            writer.transport.abort()
            raise
        self._core = Connection(CLIENT, **self._limits)
        self.tls_established = True

    async def open_tunnel(self, host: str, port: int, headers: Headers | None = None) -> Response:
        """``CONNECT host:port`` through the proxy we are connected to; 2xx or TunnelError.

        Afterwards the connection talks to ``host:port``: HTTP, ``start_tls``, or ``detach``.
        """
        authority = host_port(host, port).encode("idna")
        fields = Headers([(b"Host", authority)])
        for key, value in headers or ():
            fields.add(key, value)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self.send_head(b"CONNECT", authority, fields)
                await self.send_end()
                response = await self.receive_response()
        except TimeoutError:
            self.phase = CONNECT
            raise TimeoutError(
                f"the proxy {self._where} did not answer CONNECT {authority.decode()} "
                f"within {self.connect_timeout:g} s"
            ) from None
        except BaseException:
            self.phase = CONNECT
            raise
        self.phase = CONNECT
        if not 200 <= response.status_code < 300:
            raise TunnelError(
                f"the proxy {self._where} answered CONNECT {authority.decode()} with "
                f"{response.status_code} {response.reason.decode('latin-1')}",
                response,
            )
        leftover, _ = self._core.trailing_data
        self._core = Connection(CLIENT, **self._limits)
        if leftover:  # bytes from the far end that came with the proxy's answer
            self._core.receive_data(leftover)
        self.response = None
        self.received = 0
        return response

    def _require_writer(self) -> asyncio.StreamWriter:
        if self._writer is None:
            raise ConnectionError("not connected: call connect() first")
        return self._writer

    # -- sending ---------------------------------------------------------------

    async def send_head(
        self,
        method: bytes | str,
        target: bytes | str,
        headers: Headers,
        *,
        body: bytes = b"",
        end: EndOfMessage | None = None,
    ) -> None:
        """Send the request line and headers, with the first ``body`` bytes and, given
        ``end``, the end of the request, in one write; more body follows with
        send_data/send_end. Waits for drain when it sent body or end."""
        self.phase = SEND
        self.response = self.trailers = None
        writer = self._require_writer()
        if writer.transport.is_closing():  # before the core counts a request as sent
            raise ConnectionResetError(f"the connection to {self._where} is closed")
        if isinstance(method, str):
            method = method.encode("ascii")
        if isinstance(target, str):
            target = target.encode("ascii")
        core = self._core
        out = core.send(Request(method, target, headers))
        if body:
            out += core.send(Data(body))
        if end is not None:
            out += core.send(end)
        writer.write(out)
        if body or end is not None:
            await writer.drain()  # a head alone is small, and the next send's drain covers it

    async def send_data(self, data: bytes) -> None:
        """Send a piece of body (chunk-framed when the request is chunked); waits for drain."""
        if data:
            writer = self._require_writer()
            stream_write(writer, self._core.send(Data(data)), self._where)
            await writer.drain()

    async def send_end(self, trailers: Headers | None = None) -> None:
        """Finish the request (last chunk and trailers when chunked); waits for drain."""
        writer = self._require_writer()
        data = self._core.send(EndOfMessage(trailers or Headers()))
        if data:
            stream_write(writer, data, self._where)
        await writer.drain()

    async def send_request(
        self,
        method: bytes | str,
        target: bytes | str,
        headers: Headers,
        *,
        body: bytes | AsyncIterable[bytes] | Iterable[bytes] | None = None,
    ) -> None:
        """Send a whole request; a body without a framing header gets one (on a copy)."""
        framed = b"content-length" in headers or b"transfer-encoding" in headers
        if body is not None and not framed:
            headers = headers.copy()
            if isinstance(body, bytes | bytearray | memoryview):
                headers.add(b"Content-Length", len(body))
            else:
                headers.add(b"Transfer-Encoding", b"chunked")
        if body is None or isinstance(body, bytes | bytearray | memoryview):
            # a whole body in hand goes with its head in one write
            await self.send_head(
                method, target, headers, body=bytes(body or b""), end=EndOfMessage()
            )
            return
        await self.send_head(method, target, headers)
        if hasattr(body, "__aiter__"):
            async for chunk in body:  # type: ignore[union-attr]
                await self.send_data(chunk)
        else:
            for chunk in body:  # type: ignore[union-attr]
                await self.send_data(chunk)
        await self.send_end()

    # -- receiving ---------------------------------------------------------------

    async def read_more(self) -> None:
        """Read once (the read timeout applies) and feed the parser; EOF feeds ``b""``."""
        reader = self._reader
        if reader is None:
            raise ConnectionError("not connected: call connect() first")
        timeout = self.read_timeout
        try:
            if timeout is None:
                data = await reader.read(READ_CHUNK)
            elif self._watchdog is not None:
                self._watchdog.arm(reader, timeout)
                try:
                    data = await reader.read(READ_CHUNK)
                finally:
                    self._watchdog.disarm(reader)
            else:
                self._arm(timeout)
                try:
                    data = await reader.read(READ_CHUNK)
                finally:
                    self._deadline = None
        except TimeoutError:
            raise TimeoutError(
                f"no data for {timeout:g} s while waiting for the {self.phase} from {self._where}"
            ) from None
        if data and self.phase == STATUS_LINE and b"\n" in data:
            self.phase = HEADERS
        self.received += len(data)
        self._taken += len(data)
        self._core.receive_data(data)

    def _arm(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = deadline = loop.time() + timeout
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._check_deadline, loop)

    def _check_deadline(self, loop: asyncio.AbstractEventLoop) -> None:
        """The lazy timer: fail the read in progress if its deadline passed, else wait on."""
        self._timer = None
        deadline = self._deadline
        if deadline is None or self._reader is None:
            return  # no read waiting: the next one arms the timer again
        if loop.time() < deadline:
            self._timer = loop.call_at(deadline, self._check_deadline, loop)
            return
        self._reader.set_exception(TimeoutError("read timed out"))

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    async def _next_head(self) -> Response:
        core = self._core
        while True:
            event = core.next_event()
            if event is NEED_DATA:
                await self.read_more()
                continue
            if type(event) is Response:
                return event
            raise RemoteDisconnected("Remote end closed connection without response")

    async def receive_response(
        self, on_informational: Callable[[Response], Any] | None = None
    ) -> Response:
        """The final response head (a 101 counts as final); 1xx answers go to
        ``on_informational`` (this call's, else the connection's)."""
        notify = on_informational or self.on_informational
        self.phase = STATUS_LINE
        try:
            interim = 0
            while True:
                response = await self._next_head()
                if not response.informational or response.status_code == 101:
                    self.phase = BODY
                    self.response = response
                    return response
                interim += 1
                if interim > MAX_INTERIM:
                    break
                if notify is not None:
                    notify(response)
                self.phase = STATUS_LINE
        except (BadStatusLine, UnknownProtocol) as exc:
            # RemoteDisconnected is a BadStatusLine too: it belongs to the headers
            # phase when part of the head had already arrived.
            if not isinstance(exc, RemoteDisconnected) or self.received == 0:
                self.phase = STATUS_LINE
            raise
        except LineTooLong as exc:
            self.phase = STATUS_LINE if exc.line_type == "status line" else HEADERS
            raise
        self.phase = HEADERS
        raise RemoteProtocolError(
            f"{self._where} sent more than {MAX_INTERIM} interim (1xx) responses", status_hint=502
        )

    def body_event_nowait(self) -> Data | EndOfMessage | None:
        """The next body event from what is already received, or None: ``read_more`` first.

        For callers that batch their own writes until they would have to wait.
        """
        event = self._core.next_event()
        if event is NEED_DATA:
            return None
        if type(event) is EndOfMessage:
            self.trailers = event.trailers
        return event  # type: ignore[return-value]

    async def next_body_event(self) -> Data | EndOfMessage:
        """The next body event, reading as needed; after a 101 there is no body."""
        while True:
            event = self.body_event_nowait()
            if event is not None:
                return event
            await self.read_more()

    async def iter_body(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (the read timeout applies to each wait), then trailers."""
        if self.response is None:
            raise RemoteProtocolError("iter_body() needs receive_response() first")
        if self.response.status_code == 101:
            return  # after a protocol switch there is no HTTP body: see detach()
        while True:
            event = await self.next_body_event()
            if type(event) is not Data:
                return
            if event.data:
                yield event.data

    async def read_body(self) -> bytes:
        """The whole body at once (for small answers)."""
        return b"".join([chunk async for chunk in self.iter_body()])

    def detach(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
        """Hand over the raw byte stream (after a 101 or a tunnel): reader, writer, and the
        bytes already received but not parsed. The caller owns and closes the writer."""
        reader, writer = self._reader, self._writer
        if reader is None or writer is None:
            raise ConnectionError("not connected: call connect() first")
        leftover, _ = self._core.trailing_data
        self._stop_timer()
        self._reader = self._writer = None
        return reader, writer, leftover

    # -- state -----------------------------------------------------------------

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another exchange after this one."""
        return self._core.keep_alive

    @property
    def reusable(self) -> bool:
        """Both sides finished this exchange, keep-alive holds, the server has not closed
        and sent nothing past the response (bytes after it, say a body on a 204 or a
        second response, would be read as the answer to the next request: maybe
        another client's)."""
        core = self._core
        writer, reader = self._writer, self._reader
        return (
            core.our_state is DONE
            and core.their_state is DONE
            and core.keep_alive
            and not core.trailing_data[0]
            and self._nothing_unread
            and writer is not None
            and not writer.transport.is_closing()
            and not reader.at_eof()  # type: ignore[union-attr]
        )

    @property
    def fresh(self) -> bool:
        """Open, and no request sent on it yet: the first exchange may use it as it is."""
        core = self._core
        return (
            core.our_state is IDLE
            and core.their_state is IDLE
            and not core.trailing_data[0]
            and self._nothing_unread
            and self.alive
        )

    @property
    def _nothing_unread(self) -> bool:
        """No byte arrived that nobody has read: a peer that spoke while the connection
        sat idle (a late second response) would answer the next request with it."""
        reader = self._reader
        return reader is None or reader.fed == self._taken

    @property
    def alive(self) -> bool:
        """The stream is open and the peer has not closed it (whatever the HTTP state)."""
        writer, reader = self._writer, self._reader
        return (
            writer is not None
            and reader is not None
            and not writer.transport.is_closing()
            and not reader.at_eof()
        )

    async def start_next_cycle(self) -> None:
        """Ready the connection for the next exchange (LocalProtocolError if not reusable)."""
        self._core.start_next_cycle()
        self.response = self.trailers = None
        self.received = 0
        self.phase = SEND

    def close_nowait(self) -> None:
        """Close the connection (there is nothing to wait for: ``close`` is this, awaitable)."""
        self._stop_timer()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    async def close(self) -> None:
        self.close_nowait()

    def abort(self) -> None:
        """Close at once with a reset (a body half sent or received cannot be finished)."""
        self._stop_timer()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.transport.abort()

    # -- connection facts ---------------------------------------------------------

    def _ssl_object(self) -> _ssl.SSLObject | None:
        if self._writer is None:
            return None
        return self._writer.get_extra_info("ssl_object")

    @property
    def peer_certificate(self) -> bytes | None:
        """The server's certificate (DER), also when it was not verified."""
        sslobj = self._ssl_object()
        return sslobj.getpeercert(binary_form=True) if sslobj else None

    @property
    def tls_version(self) -> str | None:
        sslobj = self._ssl_object()
        return sslobj.version() if sslobj else None

    @property
    def cipher(self) -> str | None:
        sslobj = self._ssl_object()
        cipher = sslobj.cipher() if sslobj else None
        return cipher[0] if cipher else None

    @property
    def alpn(self) -> str | None:
        sslobj = self._ssl_object()
        return sslobj.selected_alpn_protocol() if sslobj else None

    @property
    def sock_info(self) -> dict[str, Any]:
        """``{"sockname": ..., "peername": ...}`` of the TCP connection (empty when closed)."""
        if self._writer is None:
            return {}
        return {
            "sockname": self._writer.get_extra_info("sockname"),
            "peername": self._writer.get_extra_info("peername"),
        }

    async def __aenter__(self) -> AsyncHTTPConnection:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close_nowait()
