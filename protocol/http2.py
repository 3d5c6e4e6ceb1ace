"""HTTP/2 from asyncio: one client connection, many streams, on the sans-IO ``h2`` package.

``h2`` does the framing, HPACK and flow-control bookkeeping (it is to HTTP/2 what
``protocol.connection`` is to HTTP/1.1); this module is its thin asyncio shell. One task
reads the socket and hands each frame's events to the stream they belong to; callers
write through the stream objects.

Memory stays bounded by the windows we advertise: received body bytes are acknowledged
(and the windows reopened) only when the caller takes them from ``iter_body()``, so a
slow consumer slows the server down instead of filling our buffers.

Errors are typed: ``StreamReset`` (RST_STREAM, with the error code by name) and
``ConnectionTerminated`` (GOAWAY) are ``HTTPException`` subclasses; a misbehaving stream
ends only that stream.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl as _ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

from protocol.aio import READ_CHUNK, stream_write
from protocol.errors import HTTPException, RemoteDisconnected, RemoteProtocolError, UnknownProtocol
from protocol.events import Data, EndOfMessage, Response
from protocol.headers import Headers
from protocol.http2_fields import response_head
from protocol.http2_outbound import OUTBOUND_OFF, request_pseudo, sendable

STREAM_WINDOW = 1 << 20
"""Per-stream receive window: the most body bytes buffered for a consumer that stalls."""

CONNECTION_WINDOW = 16 << 20
"""Connection receive window: bounds what all stalled streams together can hold."""

MAX_HEADER_LIST = 65536
"""SETTINGS_MAX_HEADER_LIST_SIZE we announce (the HTTP/1.1 side's header block limit)."""

DEADLINE_SLACK = 0.001
"""Seconds early a stream's read deadline may be taken as reached (timers fire ~1 ms coarse)."""

CLOSE_WAIT = 1.0
"""Seconds ``close()`` waits for the transport to finish closing (a TLS shutdown)."""

CONNECT, TLS, SEND = "connect", "tls", "send"
HEADERS, BODY = "headers", "body"


def error_name(code: int) -> str:
    """HTTP/2 error code by name (RFC 9113 section 7), ``0x..`` for codes it does not list."""
    try:
        return ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


class StreamReset(HTTPException):
    """The peer reset the stream (RST_STREAM), or we did after its protocol error."""

    def __init__(self, code: int, *, remote: bool = True) -> None:
        self.code = code
        self.remote = remote
        super().__init__(error_name(code))


class ConnectionTerminated(HTTPException):
    """The peer ended the connection (GOAWAY) before this stream finished."""

    def __init__(self, code: int, last_stream_id: int, detail: bytes | None = None) -> None:
        self.code = code
        self.last_stream_id = last_stream_id
        text = f"GOAWAY {error_name(code)} (last stream {last_stream_id})"
        if detail:
            text += f": {detail.decode('utf-8', 'replace')}"
        super().__init__(text)


class H2Stream:
    """One request/response exchange on an ``AsyncHTTP2Connection``."""

    def __init__(self, conn: AsyncHTTP2Connection, stream_id: int) -> None:
        self.id = stream_id
        self.phase = SEND
        self.received = 0
        self.response: Response | None = None
        self.trailers = Headers()
        self._conn = conn
        self._inbox: collections.deque[h2.events.Event] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None  # wait_readable's, while it waits
        self._window_open: asyncio.Event | None = None  # made when a send must wait
        self._failure: BaseException | None = None
        self.ended = False

    # -- sending ---------------------------------------------------------------------------

    async def send_data(self, data: bytes) -> None:
        """Send body bytes, waiting for the peer's flow-control window as needed."""
        view = memoryview(data)
        while view:
            size = await self._conn._sendable(self, len(view))
            self._conn._send(lambda c, chunk=bytes(view[:size]): c.send_data(self.id, chunk))
            view = view[size:]
            await self._conn._drain(now=True)  # a body's bytes are not held back

    async def send_end(self, trailers: Headers | None = None) -> None:
        """End the request, with trailers when given."""
        self._conn._sending.discard(self.id)
        if trailers:
            fields = sendable([], trailers.raw)
            self._conn._send(lambda c: c.send_headers(self.id, fields, end_stream=True))
        else:
            self._conn._send(lambda c: c.end_stream(self.id))
        self.phase = HEADERS
        await self._conn._drain()

    def reset(self, code: int = ErrorCodes.CANCEL) -> None:
        """Abandon the stream (RST_STREAM to the peer)."""
        if not self.ended:
            self.ended = True
            self._conn._send(lambda c: c.reset_stream(self.id, code), quiet=True)
            self._conn._forget(self.id)
            self._conn._sending.discard(self.id)

    # -- receiving -------------------------------------------------------------------------

    async def receive_response(
        self, on_informational: Callable[[Response], Any] | None = None
    ) -> Response:
        """The final response head; 1xx heads go to ``on_informational``."""
        self.phase = HEADERS
        while True:
            event = await self._next_event()
            if isinstance(event, h2.events.InformationalResponseReceived):
                if on_informational is not None:
                    on_informational(response_head(event.headers))
                continue
            if isinstance(event, h2.events.ResponseReceived):
                self.response = response_head(event.headers)
                self.phase = BODY
                return self.response
            raise RemoteProtocolError(f"stream {self.id}: body before the response head")

    async def iter_body(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive; the windows reopen as the caller takes them."""
        while True:
            event = self.body_event_nowait()
            if event is None:
                await self.wait_readable()
            elif type(event) is Data:
                yield event.data
            else:
                return

    def body_event_nowait(self) -> Data | EndOfMessage | None:
        """The next body piece already received (``EndOfMessage`` carries the trailers),
        or None: ``await wait_readable()`` first. Raises the stream's failure."""
        inbox = self._inbox
        while inbox:
            event = inbox.popleft()
            if isinstance(event, h2.events.DataReceived):
                self.received += len(event.data)
                self._conn._consumed(self.id, event.flow_controlled_length)
                if event.data:
                    return Data(event.data)
            elif isinstance(event, h2.events.TrailersReceived):
                self.trailers = Headers(event.headers)
            elif isinstance(event, h2.events.StreamEnded):
                return EndOfMessage(self.trailers)
        if self._failure is not None:
            raise self._failure
        return None

    async def wait_readable(self) -> None:
        """Wait until something arrives for this stream (TimeoutError after read_timeout)."""
        if self._inbox or self._failure is not None:
            return
        self._conn._flush()  # window updates for what was taken go out before we wait
        # A bare future, and a deadline the connection's one timer checks: asyncio.wait_for
        # would make a task and a timer per wait.
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timeout = self._conn.read_timeout
        if timeout is not None:
            self._conn._watch(self, loop.time() + timeout)
        try:
            await waiter
        except TimeoutError:
            raise TimeoutError(
                f"no data from {self._conn.host}:{self._conn.port} for {timeout:g} s "
                f"(stream {self.id})"
            ) from None
        finally:
            self._waiter = None
            self._conn._waiting.pop(self, None)

    async def _next_event(self) -> h2.events.Event:
        while not self._inbox:
            if self._failure is not None:
                raise self._failure
            await self.wait_readable()
        return self._inbox.popleft()

    # -- fed by the connection's reader ------------------------------------------------------

    def _deliver(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.StreamEnded):
            self.ended = True
        self._inbox.append(event)
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        self.ended = True
        self._failure = exc
        self._wake()
        self._window_opened()

    def _window_opened(self) -> None:
        if self._window_open is not None:
            self._window_open.set()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class AsyncHTTP2Connection:
    """An HTTP/2 client connection: ``await connect()``, then ``open_stream()`` per request."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl: _ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 30.0,
        source_address: tuple[str, int] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.source_address = source_address
        self.phase = CONNECT
        self.tcp_connected = False
        self.tls_established = False
        self.terminated: ConnectionTerminated | None = None
        config = h2.config.H2Configuration(client_side=True, header_encoding=None, **OUTBOUND_OFF)
        self._h2 = h2.connection.H2Connection(config=config)
        self._streams: dict[int, H2Stream] = {}  # awaiting (the rest of) their response
        self._sending: set[int] = set()  # streams whose request has not ended yet
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._closed: BaseException | None = None
        self._settings_seen = asyncio.Event()
        self._write_soon = False  # a write of what h2 queued is scheduled
        self._waiting: dict[H2Stream, float] = {}  # streams in wait_readable: their deadline
        self._deadline_timer: asyncio.TimerHandle | None = None

    # -- opening ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """TCP (then TLS with ALPN h2 when ``ssl`` is set), then the connection preface."""
        self.phase = CONNECT
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                self.host,
                self.port,
                ssl=self.ssl,
                server_hostname=self.server_hostname if self.ssl else None,
                local_addr=self.source_address,
                limit=2 * READ_CHUNK,
            ),
            self.connect_timeout,
        )
        self.tcp_connected = self.tls_established = True
        if self.ssl is not None:
            chosen = writer.get_extra_info("ssl_object").selected_alpn_protocol()
            if chosen != "h2":
                writer.close()
                raise UnknownProtocol(
                    f"{self.host}:{self.port} chose ALPN {chosen!r}, not 'h2' "
                    "(does the SSLContext offer 'h2'? see SSLContext.set_alpn_protocols)"
                )
        await self.start(reader, writer)

    async def start(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Speak HTTP/2 (prior knowledge) on streams already open, e.g. inside a tunnel."""
        self._reader, self._writer = reader, writer
        self.tcp_connected = True
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                SettingCodes.ENABLE_PUSH: 0,
                SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
            },
        )
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self._flush()
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop())
        self.phase = SEND

    async def settled(self) -> None:
        """Wait for the server's SETTINGS, the proof it speaks HTTP/2 (a plain HTTP/1.1
        server answers prior knowledge with an error or a close: raised here)."""
        try:
            await asyncio.wait_for(self._settings_seen.wait(), self.connect_timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{self.host}:{self.port} sent no HTTP/2 SETTINGS in {self.connect_timeout:g} s"
            ) from None
        if self._closed is not None:
            raise self._closed

    # -- streams ---------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """True while new streams may be opened on this connection."""
        if not self.alive:
            return False
        limit = self._h2.remote_settings.max_concurrent_streams
        # Every stream h2 counts as open is still awaiting its response or still sending
        # its request, so this sum bounds h2's count, which walks all its streams.
        if len(self._streams) + len(self._sending) < limit:
            return True
        return self._h2.open_outbound_streams < limit

    @property
    def alive(self) -> bool:
        """Neither closed nor told to go away (it may still be full of streams)."""
        return self._closed is None and self.terminated is None

    @property
    def idle(self) -> bool:
        """No stream in progress."""
        return not self._streams

    async def open_stream(
        self,
        method: bytes,
        scheme: bytes,
        authority: bytes,
        path: bytes,
        headers: Headers,
        *,
        end_stream: bool = False,
    ) -> H2Stream:
        """Send a request head (``headers`` without pseudo-headers) on a new stream."""
        if self._closed is not None:
            raise self._closed
        if self.terminated is not None:
            raise self.terminated
        fields = sendable(request_pseudo(method, scheme, authority, path), headers.raw, authority)
        stream_id = self._h2.get_next_available_stream_id()
        stream = H2Stream(self, stream_id)
        self._streams[stream_id] = stream
        if not end_stream:
            self._sending.add(stream_id)
        self._send(lambda c: c.send_headers(stream_id, fields, end_stream=end_stream))
        if end_stream:
            stream.phase = HEADERS
        await self._drain()
        return stream

    async def close(self) -> None:
        """Say GOAWAY and close the socket."""
        if self._writer is None:
            return
        if self._closed is None:
            self._send(lambda c: c.close_connection(), quiet=True)
            self._closed = RemoteDisconnected("the HTTP/2 connection was closed")
            self._write_queued()  # the GOAWAY goes before the socket closes
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        task, self._read_task = self._read_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._writer.close()
        # A TLS peer that never answers our close_notify must not hold us: the GOAWAY is out.
        with contextlib.suppress(OSError, _ssl.SSLError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), CLOSE_WAIT)

    # -- internals used by H2Stream ------------------------------------------------------------

    def _send(
        self, action: Callable[[h2.connection.H2Connection], Any], quiet: bool = False
    ) -> None:
        try:
            action(self._h2)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            if not quiet:
                raise
        self._flush()

    def _flush(self) -> None:
        """Write what ``h2`` queued, soon: once per turn of the event loop.

        The requests that streams open in one turn (a client's burst) leave in one write,
        one TLS record and one system call, instead of one each.
        """
        if not self._write_soon and self._writer is not None:
            self._write_soon = True
            asyncio.get_running_loop().call_soon(self._write_queued)

    def _write_queued(self) -> None:
        """Write what ``h2`` queued now; a failed write fails the connection's streams."""
        self._write_soon = False
        data = self._h2.data_to_send()
        if not data or self._writer is None:
            return
        try:
            stream_write(self._writer, data, f"{self.host}:{self.port}")
        except OSError as exc:
            if self._closed is None:
                self._closed = exc
            self._fail_all(exc)

    async def _drain(self, *, now: bool = False) -> None:
        """Wait for the server to keep up; ``now`` writes what is queued first (bodies)."""
        if now:
            self._write_queued()
        if self._writer is not None:
            await self._writer.drain()

    async def _sendable(self, stream: H2Stream, wanted: int) -> int:
        """How many bytes may go now (at least one), waiting for a window update if none."""
        while True:
            if stream._failure is not None:
                raise stream._failure
            window = self._h2.local_flow_control_window(stream.id)
            if window > 0:
                return min(wanted, window, self._h2.max_outbound_frame_size)
            if stream._window_open is None:
                stream._window_open = asyncio.Event()
            stream._window_open.clear()
            await stream._window_open.wait()

    def _watch(self, stream: H2Stream, deadline: float) -> None:
        """Fail ``stream``'s wait with TimeoutError at ``deadline`` (loop time)."""
        self._waiting[stream] = deadline
        if self._deadline_timer is None:
            loop = asyncio.get_running_loop()
            self._deadline_timer = loop.call_at(deadline, self._expire_waits)

    def _expire_waits(self) -> None:
        """The one timer of all the streams' waits: expire what is due, then re-arm."""
        loop = asyncio.get_running_loop()
        self._deadline_timer = None
        due = loop.time() + DEADLINE_SLACK
        for stream, deadline in list(self._waiting.items()):
            waiter = stream._waiter
            if waiter is None or waiter.done():  # woken; its wait ends in this turn
                del self._waiting[stream]
            elif deadline <= due:
                del self._waiting[stream]
                waiter.set_exception(TimeoutError())
        if self._waiting:
            self._deadline_timer = loop.call_at(min(self._waiting.values()), self._expire_waits)

    def _consumed(self, stream_id: int, size: int) -> None:
        # No write here: the window update leaves with the next flush (the reader's after
        # each read, or the consumer's before it waits), one write for a batch of frames.
        if size and self._closed is None:
            try:
                self._h2.acknowledge_received_data(size, stream_id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass

    def _forget(self, stream_id: int) -> None:
        self._streams.pop(stream_id, None)

    # -- the reader ------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                data = await self._reader.read(READ_CHUNK)
                if not data:
                    raise RemoteDisconnected(
                        f"{self.host}:{self.port} closed the HTTP/2 connection"
                    )
                try:
                    events = self._h2.receive_data(data)
                except h2.exceptions.ProtocolError as exc:
                    self._write_queued()  # h2 queued a GOAWAY for the peer
                    raise RemoteProtocolError(
                        f"HTTP/2 protocol error from the server: {exc}"
                    ) from exc
                for event in events:
                    self._dispatch(event)
                self._flush()
        except asyncio.CancelledError:
            self._fail_all(self._closed or RemoteDisconnected("the HTTP/2 connection was closed"))
            raise
        except (OSError, HTTPException) as exc:
            self._closed = exc
            self._fail_all(exc)
            self._settings_seen.set()

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self._settings_seen.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._terminated(event)
        elif isinstance(event, h2.events.WindowUpdated):
            self._window_updated(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self._sending.discard(event.stream_id)
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None:
                stream._fail(StreamReset(event.error_code, remote=event.remote_reset))
        else:
            stream_id = getattr(event, "stream_id", None)
            stream = self._streams.get(stream_id) if stream_id else None
            if stream is not None:
                stream._deliver(event)
                if isinstance(event, h2.events.StreamEnded):
                    self._forget(stream.id)

    def _window_updated(self, stream_id: int) -> None:
        targets = self._streams.values() if stream_id == 0 else [self._streams.get(stream_id)]
        for stream in targets:
            if stream is not None:
                stream._window_opened()

    def _terminated(self, event: h2.events.ConnectionTerminated) -> None:
        self.terminated = ConnectionTerminated(
            event.error_code, event.last_stream_id or 0, event.additional_data
        )
        for stream_id in [s for s in self._streams if s > (event.last_stream_id or 0)]:
            self._streams.pop(stream_id)._fail(self.terminated)
        if event.error_code != ErrorCodes.NO_ERROR:
            self._fail_all(self.terminated)

    def _fail_all(self, exc: BaseException) -> None:
        for stream in self._streams.values():
            stream._fail(exc)
        self._streams.clear()
