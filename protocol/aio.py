"""The asyncio client: one upstream connection over the same sans-IO core as the sync client.

Bytes arrive through a small ``asyncio.Protocol`` (large reads, no per-line awaits)
and are fed to ``protocol.connection.Connection``; writes wait on the transport's
flow control. ``phase`` always names the step in progress ("connect", "tls", "send",
"status line", "headers", "body"), so an exception can be placed without guessing.
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any

from protocol.connection import CLIENT, DONE, Connection
from protocol.errors import (
    MAX_LINE,
    BadStatusLine,
    LineTooLong,
    RemoteDisconnected,
    RemoteProtocolError,
    UnknownProtocol,
)
from protocol.events import NEED_DATA, ConnectionClosed, Data, EndOfMessage, Request, Response
from protocol.headers import Headers

_HIGH_WATER = 256 * 1024
"""Received-but-unread bytes above which the socket stops being read (backpressure)."""

_LOW_WATER = 64 * 1024


class TunnelError(OSError):
    """The proxy refused our CONNECT; ``response`` is its answer."""

    def __init__(self, message: str, response: Response) -> None:
        super().__init__(message)
        self.response = response


class _Stream(asyncio.Protocol):
    """Receive buffer with read-side backpressure, and a drain for write-side flow control."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._error: BaseException | None = None
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol callbacks ---------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > _HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close our side too: HTTP/1.1 has no use for a half-open connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- used by the connection ------------------------------------------------

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def unread(self, data: bytes) -> None:
        """Put bytes back in front (what a tunnel's CONNECT answer carried past its head)."""
        self._chunks.appendleft(data)
        self._size += len(data)

    async def read(self, timeout: float | None, what: str) -> bytes:
        """Everything received so far (waiting up to ``timeout`` for some); b"" at EOF."""
        if not self._chunks:
            if self._eof:
                if self._error is not None:
                    raise self._error  # e.g. ConnectionResetError
                return b""
            await self._wait(timeout, what)
            if not self._chunks:
                return await self.read(timeout, what)
        data = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    async def _wait(self, timeout: float | None, what: str) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = None
        if timeout is not None:
            timer = self._loop.call_later(timeout, _expire, waiter, timeout, what)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None

    async def drain(self) -> None:
        if self._error is not None:
            raise ConnectionResetError(f"connection lost: {self._error}")
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("connection is closed")
        if self._write_paused:
            waiter = self._drain_waiter = self._loop.create_future()
            await waiter


def _expire(waiter: asyncio.Future[None], timeout: float, what: str) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError(f"no data for {timeout:g} s while waiting for {what}"))


class AsyncHTTPConnection:
    """One HTTP/1.1 connection driven from asyncio.

    Use: ``await connect()``, ``await send_request(...)`` (or ``send_head`` /
    ``send_data`` / ``send_end``), ``await receive_response()``, ``async for chunk
    in iter_body()``, then ``start_next_cycle()`` while ``reusable``.
    """

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
        max_headers: int = 100,
        max_header_bytes: int = 65536,
        source_address: tuple[str, int] | None = None,
        on_informational: Callable[[Response], Any] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.source_address = source_address
        self.on_informational = on_informational
        self._limits = {
            "max_line": max_line,
            "max_headers": max_headers,
            "max_header_bytes": max_header_bytes,
        }
        self._core = Connection(CLIENT, **self._limits)
        self._stream: _Stream | None = None
        self._transport: asyncio.Transport | None = None
        self.phase = "connect"
        self.tcp_connected = False
        self.tls_established = False
        self.response: Response | None = None
        self.trailers: Headers | None = None

    # -- opening ---------------------------------------------------------------

    async def connect(self) -> None:
        """TCP, then TLS when ``ssl`` was given; ``phase`` says which one failed."""
        loop = asyncio.get_running_loop()
        self.phase = "connect"
        try:
            async with asyncio.timeout(self.connect_timeout):
                transport, stream = await loop.create_connection(
                    lambda: _Stream(loop), self.host, self.port, local_addr=self.source_address
                )
        except TimeoutError:
            raise TimeoutError(
                f"connecting to {self._where} took longer than {self.connect_timeout:g} s"
            ) from None
        self._transport, self._stream = transport, stream
        self.tcp_connected = True
        if self.ssl is not None:
            await self.start_tls(self.ssl, self.server_hostname or self.host)

    @property
    def _where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def start_tls(self, context: _ssl.SSLContext, hostname: str | None) -> None:
        """Upgrade the open connection to TLS (after ``connect`` or ``open_tunnel``)."""
        loop = asyncio.get_running_loop()
        self.phase = "tls"
        transport = self._require_transport()
        try:
            async with asyncio.timeout(self.connect_timeout):
                new = await loop.start_tls(
                    transport,
                    self._stream,
                    context,
                    server_hostname=hostname,  # type: ignore[arg-type]
                )
        except TimeoutError:
            transport.abort()
            raise TimeoutError(
                f"TLS handshake with {self._where} took longer than {self.connect_timeout:g} s"
            ) from None
        except BaseException:
            transport.abort()
            raise
        if new is None:
            raise ConnectionResetError(f"{self._where} closed the connection during TLS")
        self._transport = new  # type: ignore[assignment]
        self._stream.transport = new  # type: ignore[union-attr]
        self._core = Connection(CLIENT, **self._limits)
        self.tls_established = True

    async def open_tunnel(self, host: str, port: int, headers: Headers | None = None) -> Response:
        """``CONNECT host:port`` through the proxy we are connected to; 2xx or TunnelError."""
        name = f"[{host}]" if ":" in host else host
        authority = f"{name}:{port}".encode("idna")
        fields = Headers([(b"Host", authority)])
        for key, value in headers or ():
            fields.add(key, value)
        await self.send_head(b"CONNECT", authority, fields)
        await self.send_end()
        response = await self.receive_response()
        if not 200 <= response.status_code < 300:
            raise TunnelError(
                f"Tunnel connection failed: {response.status_code} "
                f"{response.reason.decode('latin-1')}",
                response,
            )
        leftover, _ = self._core.trailing_data
        if leftover:
            self._stream.unread(leftover)  # type: ignore[union-attr]
        self._core = Connection(CLIENT, **self._limits)
        self.response = None
        self.phase = "connect"
        return response

    def _require_transport(self) -> asyncio.Transport:
        if self._transport is None or self._stream is None:
            raise ConnectionError("not connected: call connect() first")
        return self._transport

    # -- sending ---------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        transport = self._require_transport()
        if transport.is_closing():
            raise ConnectionResetError(f"connection to {self._where} is closed")
        if data:
            transport.write(data)
        await self._stream.drain()  # type: ignore[union-attr]

    async def send_head(self, method: bytes | str, target: bytes | str, headers: Headers) -> None:
        """Send the request line and headers; the body follows with send_data/send_end."""
        self.phase = "send"
        self.response = self.trailers = None
        if isinstance(method, str):
            method = method.encode("ascii")
        if isinstance(target, str):
            target = target.encode("ascii")
        await self._write(self._core.send(Request(method, target, headers)))

    async def send_data(self, data: bytes) -> None:
        """Send a piece of body (chunk-framed when the request is chunked); waits for drain."""
        if data:
            await self._write(self._core.send(Data(data)))

    async def send_end(self, trailers: Headers | None = None) -> None:
        await self._write(self._core.send(EndOfMessage(trailers or Headers())))

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
        await self.send_head(method, target, headers)
        if isinstance(body, bytes | bytearray | memoryview):
            await self.send_data(bytes(body))
        elif hasattr(body, "__aiter__"):
            async for chunk in body:
                await self.send_data(chunk)
        elif body is not None:
            for chunk in body:  # a plain iterable of bytes
                await self.send_data(chunk)
        await self.send_end()

    # -- receiving ---------------------------------------------------------------

    async def _next_event(self) -> Any:
        core, stream = self._core, self._stream
        while True:
            event = core.next_event()
            if event is not NEED_DATA:
                return event
            data = await stream.read(  # type: ignore[union-attr]
                self.read_timeout, f"the {self.phase} from {self._where}"
            )
            if self.phase == "status line" and b"\n" in data:
                self.phase = "headers"
            core.receive_data(data)

    async def receive_response(self) -> Response:
        """The final response head; 1xx answers go to ``on_informational``."""
        self._require_transport()
        self.phase = "status line"
        try:
            while True:
                event = await self._next_event()
                if isinstance(event, ConnectionClosed):
                    raise RemoteDisconnected("Remote end closed connection without response")
                if not isinstance(event, Response):
                    raise RemoteProtocolError(
                        f"expected a response head, got {type(event).__name__}"
                    )
                if event.informational and event.status_code != 101:
                    if self.on_informational is not None:
                        self.on_informational(event)
                    self.phase = "status line"
                    continue
                break
        except (BadStatusLine, UnknownProtocol) as exc:
            if not isinstance(exc, RemoteDisconnected) or self.phase == "status line":
                self.phase = "status line"
            raise
        except LineTooLong as exc:
            self.phase = "status line" if exc.line_type == "status line" else "headers"
            raise
        self.phase = "body"
        self.response = event
        return event

    async def iter_body(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (the read timeout applies to each wait), then trailers."""
        if self.response is None:
            raise RemoteProtocolError("iter_body() needs receive_response() first")
        while True:
            event = await self._next_event()
            if isinstance(event, Data):
                if event.data:
                    yield event.data
            elif isinstance(event, EndOfMessage):
                self.trailers = event.trailers
                return
            else:  # after a protocol switch (101, CONNECT) there is no HTTP body
                return

    async def read_body(self) -> bytes:
        """The whole body at once (for small answers)."""
        return b"".join([chunk async for chunk in self.iter_body()])

    # -- state -----------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        """Both sides finished this exchange, keep-alive holds and the socket is open."""
        core = self._core
        return (
            core.our_state is DONE
            and core.their_state is DONE
            and core.keep_alive
            and self._transport is not None
            and not self._transport.is_closing()
        )

    async def start_next_cycle(self) -> None:
        self._core.start_next_cycle()
        self.response = self.trailers = None
        self.phase = "send"

    async def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def abort(self) -> None:
        """Close at once with a reset (a body half sent or received cannot be finished)."""
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.abort()

    # -- connection facts ---------------------------------------------------------

    def _ssl_object(self) -> _ssl.SSLObject | None:
        if self._transport is None:
            return None
        return self._transport.get_extra_info("ssl_object")

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
        if self._transport is None:
            return {}
        return {
            "sockname": self._transport.get_extra_info("sockname"),
            "peername": self._transport.get_extra_info("peername"),
        }

    async def __aenter__(self) -> AsyncHTTPConnection:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
