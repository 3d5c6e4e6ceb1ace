"""The HTTP/2 connection layer: one client connection, each stream one exchange.

It sits beside ``http1.py``: the sans-IO ``h2`` package does the framing, HPACK and
flow-control bookkeeping, this module reads the socket, feeds ``h2`` and turns each
stream into a request head plus a body source for the exchange layer, which knows
nothing of framing. A stream's response goes out as the client's flow-control window
allows (``flush`` waits for it), so a slow client slows the upstream instead of filling
memory; request body bytes are acknowledged only when the exchange takes them.

Reached from ``http1.py`` when a connection (plain, or inside a CONNECT tunnel, TLS or
not) starts with the HTTP/2 connection preface: prior knowledge, or ALPN ``h2``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import H2Connection as H2
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

from inspector.flow import FlowResponse, Phase, TLSInfo
from inspector.proxy import errors
from inspector.proxy.context import ProxyContext
from inspector.proxy.errors import ClientError, ClientGone, drain_client
from inspector.proxy.exchange import Exchange
from inspector.proxy.modes import Target, Tunnel, resolve
from protocol.aio import READ_CHUNK
from protocol.errors import HTTPException, RemoteProtocolError
from protocol.events import Data, EndOfMessage, Request, Response
from protocol.headers import Headers
from protocol.http2 import CONNECTION_WINDOW, MAX_HEADER_LIST, STREAM_WINDOW
from protocol.http2_fields import request_head, to_http2
from protocol.http2_outbound import OUTBOUND_OFF, sendable

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""The client connection preface (RFC 9113 section 3.4)."""

END_WAIT = 1.0
"""Seconds a closing connection waits for its cancelled exchanges before it closes."""

MAX_STREAMS = 100
"""SETTINGS_MAX_CONCURRENT_STREAMS we announce to clients."""


class HTTP2Connection:
    """Serves one client connection that speaks HTTP/2, until it closes."""

    def __init__(
        self,
        ctx: ProxyContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client_addr: tuple[str, int],
        tunnel: Tunnel | None,
        tls: TLSInfo | None,
        authenticated: bool,
    ) -> None:
        self.ctx = ctx
        self.reader = reader
        self.writer = writer
        self.client_addr = client_addr
        self.tunnel = tunnel
        self.tls = tls
        self.authenticated = authenticated
        config = h2.config.H2Configuration(client_side=False, header_encoding=None, **OUTBOUND_OFF)
        self.h2 = h2.connection.H2Connection(config=config)
        self.streams: dict[int, H2StreamSide] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()
        self._write_soon = False  # a write of what h2 queued is scheduled
        # What the flows still running are told when the connection ends.
        self.ended_by: BaseException = ConnectionResetError(
            "the client closed the HTTP/2 connection"
        )

    # -- the connection loop -------------------------------------------------------------------

    async def serve(self, initial: bytes) -> None:
        """Speak HTTP/2 from ``initial`` (the bytes read so far, preface first) on."""
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
                SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
            },
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        try:
            await self._read_loop(initial)
        finally:
            await self._end_streams(self.ended_by)

    async def _read_loop(self, data: bytes) -> None:
        ctx, reader = self.ctx, self.reader
        while data:
            try:
                events = self.h2.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                self.write_queued()  # h2 queued a GOAWAY naming the error: out before the close
                self.ended_by = RemoteProtocolError(f"the client broke HTTP/2: {e}")
                return
            for event in events:
                self._dispatch(event)
            self.flush()
            await self.drain()
            data = await self._read(ctx, reader)

    async def _read(self, ctx: ProxyContext, reader: asyncio.StreamReader) -> bytes:
        """The next bytes; a connection with no stream open may stay idle for idle_timeout."""
        if self.streams:
            return await reader.read(READ_CHUNK)
        ctx.deadlines.arm(reader, ctx.idle_timeout)
        try:
            return await reader.read(READ_CHUNK)
        except TimeoutError:
            return b""
        finally:
            ctx.deadlines.disarm(reader)

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._start_stream(event)
            return
        if isinstance(event, h2.events.WindowUpdated):
            self._window_updated(event.stream_id)
            return
        stream = self.streams.get(getattr(event, "stream_id", 0) or 0)
        if stream is None:
            return
        if isinstance(event, h2.events.DataReceived):
            stream.deliver(Data(event.data), event.flow_controlled_length)
        elif isinstance(event, h2.events.TrailersReceived):
            stream.trailers = Headers(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            stream.deliver(EndOfMessage(stream.trailers), 0)
        elif isinstance(event, h2.events.StreamReset):
            stream.cancel(
                ConnectionResetError(f"the client reset the stream ({event.error_code!s})")
            )

    def _window_updated(self, stream_id: int) -> None:
        targets = self.streams.values() if stream_id == 0 else [self.streams.get(stream_id)]
        for stream in targets:
            if stream is not None:
                stream.window_opened()

    # -- streams ------------------------------------------------------------------------

    def _start_stream(self, event: h2.events.RequestReceived) -> None:
        stream = H2StreamSide(self, event.stream_id)
        self.streams[event.stream_id] = stream
        has_body = event.stream_ended is None
        task = asyncio.get_running_loop().create_task(
            self._serve_stream(stream, event.headers, has_body)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_stream(self, stream: H2StreamSide, fields: list, has_body: bool) -> None:
        try:
            request, scheme, authority = request_head(fields)
            expect = request.headers.get(b"expect", b"").lower()
            stream.expects_continue = expect == b"100-continue" and has_body
            target = self._admit(request, scheme, authority)
        except ClientError as e:
            await stream.answer(e.status, str(e), headers=e.headers)
            return
        except (KeyError, ValueError) as e:
            await stream.answer(400, f"inspector: a malformed HTTP/2 request: {e}\n")
            return
        try:
            stream.exchange = Exchange(self.ctx, stream, request, target)
            await stream.exchange.run()
        except (ClientGone, OSError):
            stream.reset(ErrorCodes.CANCEL)
        except Exception as e:  # one stream's failure never takes the connection down
            print(f"inspector: internal error on an HTTP/2 stream: {e!r}", file=sys.stderr)
            stream.reset(ErrorCodes.INTERNAL_ERROR)
        finally:
            self.streams.pop(stream.id, None)

    def _admit(self, request: Request, scheme: bytes, authority: bytes) -> Target:
        """Proxy authentication, then where the request goes (ClientError if nowhere)."""
        ctx = self.ctx
        if not self.authenticated:
            ctx.auth.check(request.headers)  # type: ignore[union-attr]
        raw = request.target
        if self.tunnel is None and ctx.config.mode.kind != "reverse" and authority:
            raw = scheme + b"://" + authority + request.target  # an explicit proxy request
        return resolve(ctx.config.mode, raw, self.tunnel, ctx.listen_text)

    async def _end_streams(self, why: BaseException) -> None:
        """The connection is over: the exchanges still running end as failed, now.

        No answer can reach the client any more, so none is waited for; each flow records
        ``why`` (the client's close, or the protocol error that ended the connection).
        """
        for stream in list(self.streams.values()):
            stream.cancel(why)
            if stream.exchange is not None:
                self.ctx.finish_error(stream.exchange.flow, why, Phase.CLIENT)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: an exchange cancelled while it waits on an upstream's first SETTINGS
            # was seen finishing only when that wait ended (up to connect_timeout).
            await asyncio.wait(set(self._tasks), timeout=END_WAIT)

    # -- writing ------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what ``h2`` queued, soon: once per turn of the event loop.

        The streams woken by one upstream read each answer in the same turn, so their
        frames leave in one write (one TLS record, one system call) instead of one each.
        """
        if not self._write_soon:
            self._write_soon = True
            self._loop.call_soon(self.write_queued)

    def write_queued(self) -> None:
        """Write what ``h2`` queued now; a client already gone is noticed by the reader."""
        self._write_soon = False
        data = self.h2.data_to_send()
        if data and not self.writer.transport.is_closing():
            self.writer.write(data)

    async def drain(self) -> None:
        """Have what ``h2`` queued written, then wait for the client to keep up."""
        self.flush()
        await drain_client(self.writer)


class H2StreamSide:
    """One stream of an ``HTTP2Connection``: the exchange layer's ``ClientSide``."""

    http2 = True

    def __init__(self, conn: HTTP2Connection, stream_id: int) -> None:
        self.conn = conn
        self.id = stream_id
        self.client_addr = conn.client_addr
        self.tls = conn.tls
        self.head_start = time.time()
        self.trailers = Headers()
        self._window_open: asyncio.Event | None = None  # made when a send must wait
        self._inbox: deque[tuple[Data | EndOfMessage, int]] = deque()
        self._arrived: asyncio.Event | None = None  # made when body_event must wait
        self._failure: BaseException | None = None
        self._responded = False
        self._request_done = False
        self._pending: list[Data | EndOfMessage] = []
        self._ended = False
        self._head_fields: list[tuple[bytes, bytes]] | None = None
        self.exchange: Exchange | None = None
        self.expects_continue = False

    @property
    def tunnel_sni(self) -> str | None:
        return self.tls.sni if self.tls is not None else None

    # -- fed by the connection -----------------------------------------------------------------

    def deliver(self, event: Data | EndOfMessage, flow_controlled: int) -> None:
        self._inbox.append((event, flow_controlled))
        if self._arrived is not None:
            self._arrived.set()

    def window_opened(self) -> None:
        if self._window_open is not None:
            self._window_open.set()

    def cancel(self, exc: BaseException) -> None:
        self._failure = exc
        self._ended = True
        if self._arrived is not None:
            self._arrived.set()
        self.window_opened()

    # -- the request body ----------------------------------------------------------------------

    @property
    def request_done(self) -> bool:
        return self._request_done

    async def body_event(self) -> Data | EndOfMessage:
        """The next piece of the request body; its bytes reopen the client's window."""
        while not self._inbox:
            if self._failure is not None:
                raise ClientGone(self._failure)
            self.conn.flush()  # the window updates for what was taken, before waiting for more
            if self._arrived is None:
                self._arrived = asyncio.Event()
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), self.conn.ctx.idle_timeout)
            except TimeoutError as e:
                raise ClientGone(e) from e
        event, size = self._inbox.popleft()
        if size:
            self._send(H2.acknowledge_received_data, size, self.id)
        if type(event) is EndOfMessage:
            self._request_done = True
        return event

    def send_continue(self) -> None:
        """Answer ``Expect: 100-continue`` once the upstream is connected (as over HTTP/1.1)."""
        if self.expects_continue and not self._responded:
            self.expects_continue = False
            self._send(H2.send_headers, self.id, [(b":status", b"100")])
            self.conn.flush()

    # -- the response ------------------------------------------------------------------------

    @property
    def responded(self) -> bool:
        return self._responded

    def send_interim(self, response: Response) -> None:
        fields = _response_fields(response.status_code, response.headers)
        self._send(H2.send_headers, self.id, fields)
        self.conn.flush()

    def queue_head(self, response: Response, upstream_keeps_alive: bool) -> None:
        self._head(response.status_code, response.headers)

    def queue(self, event: Data | EndOfMessage) -> None:
        self._pending.append(event)

    async def flush(self) -> None:
        """Send what is queued as the client's windows allow, then drain the socket."""
        pending, self._pending = self._pending, []
        last = len(pending) - 1
        for i, event in enumerate(pending):
            if type(event) is Data:
                # Body bytes followed by a plain end carry END_STREAM on their last frame.
                after = pending[i + 1] if i < last else None
                end = type(after) is EndOfMessage and not after.trailers  # type: ignore[union-attr]
                await self._send_data(event.data, end=end)
            else:
                self._end(event.trailers)  # nothing when the data before it ended the stream
        self._send_head()  # a head with nothing after it yet goes now: the client may wait on it
        await self.conn.drain()

    async def respond_whole(self, response: FlowResponse, keep_alive: bool) -> None:
        headers = Headers(response.headers)
        headers.remove(b"Transfer-Encoding")
        body = response.body.data
        if response.status_code not in (204, 304):
            headers.set(b"Content-Length", len(body))
        self._head(response.status_code, headers)
        await self._send_data(body, end=True)
        await self.conn.drain()

    async def switch_protocols(self, response: Response):
        raise ClientGone(HTTPException("a 101 cannot be relayed on an HTTP/2 stream"))

    async def fail(self, status: int, text: str) -> bool:
        if self._responded:
            self.reset(ErrorCodes.INTERNAL_ERROR)  # the response had started: cut it visibly
        else:
            await self.answer(status, text)
        return True

    async def reject(self, exc: HTTPException) -> None:
        body = f"inspector: cannot parse the request: {type(exc).__name__}: {exc}\n"
        await self.answer(errors.client_status(exc), body)

    async def answer(self, status: int, text: str, *, headers: tuple = ()) -> None:
        """A short text/plain answer generated by the proxy itself."""
        body = text.encode("utf-8", "replace")
        fields = Headers([(b"content-type", b"text/plain; charset=utf-8"), *headers])
        fields.set(b"content-length", len(body))
        self._head(status, fields)
        await self._send_data(body, end=True)
        await self.conn.drain()

    def reset(self, code: int) -> None:
        if not self._ended:
            self._ended = True
            self._send(H2.reset_stream, self.id, code)
            self.conn.flush()

    # -- internals ------------------------------------------------------------------------

    def _head(self, status: int, headers: Headers) -> None:
        """Note the response head: it leaves with the first body bytes, or with the end as
        one HEADERS frame carrying END_STREAM (gRPC's trailers-only answers need that)."""
        self._responded = True
        self._head_fields = _response_fields(status, headers)

    def _send_head(self, *, end_stream: bool = False) -> None:
        fields, self._head_fields = self._head_fields, None
        if fields is not None:
            self._send(H2.send_headers, self.id, fields, end_stream=end_stream)

    def _end(self, trailers: Headers) -> None:
        if self._ended:
            return
        self._ended = True
        if not trailers and self._head_fields is not None:
            self._send_head(end_stream=True)
            return
        self._send_head()
        if trailers:
            fields = _checked([], trailers)
            self._send(H2.send_headers, self.id, fields, end_stream=True)
        else:
            self._send(H2.end_stream, self.id)

    async def _send_data(self, data: bytes, *, end: bool = False) -> None:
        """Send body bytes as the client's windows allow; ``end``: END_STREAM on the last
        frame (one frame fewer than an empty DATA frame after it), or the end alone when
        there are no bytes."""
        if end and not data:
            self._end(Headers())
            return
        self._send_head()
        view = memoryview(data)
        h2conn = self.conn.h2
        while view:
            if self._failure is not None:
                raise ClientGone(self._failure)
            window = h2conn.local_flow_control_window(self.id)
            if window <= 0:
                if self._window_open is None:
                    self._window_open = asyncio.Event()
                self._window_open.clear()
                await self.conn.drain()
                await self._window_open.wait()
                continue
            size = min(len(view), window, h2conn.max_outbound_frame_size)
            chunk = bytes(view[:size])
            view = view[size:]
            if end and not view:
                self._ended = True
                self._send(H2.send_data, self.id, chunk, end_stream=True)
            else:
                self._send(H2.send_data, self.id, chunk)

    def _send(self, call: Callable[..., object], *args: object, **kwargs: object) -> None:
        """``call(h2_connection, *args)``; what it queues is written at the next flush or
        drain, so a batch of frames leaves in one write."""
        try:
            call(self.conn.h2, *args, **kwargs)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as e:
            raise ClientGone(e) from e


def _response_fields(status: int, headers: Headers) -> list[tuple[bytes, bytes]]:
    return _checked([(b":status", str(status).encode())], headers)


def _checked(pseudo: list[tuple[bytes, bytes]], headers: Headers) -> list[tuple[bytes, bytes]]:
    """A header block as HTTP/2 fields, checked as ``h2`` would (ClientGone as from ``_send``)."""
    try:
        return sendable(pseudo, to_http2(headers).raw)
    except h2.exceptions.ProtocolError as e:
        raise ClientGone(e) from e
