"""The HTTP/1.1 connection layer: one client socket, its framing and its keep-alive loop.

The loop is read, feed the sans-IO parser, act on what comes out, drain the writer.
Each complete request head is admitted here (proxy authentication, where it goes) and
handed, with this connection as its body source and response sink, to the exchange
layer (``exchange.py``), which knows nothing of framing. CONNECT goes to ``tunnel.py``;
the HTTP inside an intercepted tunnel comes back to this same loop.
"""

from __future__ import annotations

import asyncio
import sys
import time

from inspector.flow import FlowResponse, TLSInfo
from inspector.proxy import errors, tunnel
from inspector.proxy.context import ProxyContext
from inspector.proxy.errors import ClientError, ClientGone, drain_client, write_to_client
from inspector.proxy.exchange import Exchange, copied_headers
from inspector.proxy.hop import strip_hop_by_hop
from inspector.proxy.http2 import PREFACE, HTTP2Connection
from inspector.proxy.modes import Tunnel, parse_connect_target, resolve
from protocol.aio import READ_CHUNK, stream_write
from protocol.connection import DONE, IDLE, SERVER, Connection
from protocol.errors import HTTPException, RemoteProtocolError
from protocol.events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Request,
    Response,
)
from protocol.headers import Headers
from protocol.status import describe

SLOW_HEAD = "inspector: the request head did not arrive in time; the connection is closed\n"
TLS_ON_PLAIN_PORT = (
    "a TLS handshake arrived on the proxy's plain HTTP port: configure the proxy as "
    "http://HOST:PORT (not https://); HTTPS sites still work through CONNECT"
)
NOT_A_PREFACE = "inspector: a request starting 'PRI ' that is not the HTTP/2 connection preface\n"
STAND_IN_REQUEST = b"GET / HTTP/1.1\r\nHost: inspector\r\nConnection: close\r\n\r\n"


class PrefaceSeen(Exception):
    """The connection opened with what may be the HTTP/2 preface (``data``: bytes so far)."""

    def __init__(self, data: bytes) -> None:
        super().__init__("HTTP/2 connection preface")
        self.data = data


class HTTP1Connection:
    """Serves one accepted client connection until it closes (the exchange layer's
    ``ClientSide`` for the requests it carries)."""

    http2 = False

    def __init__(
        self, ctx: ProxyContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.ctx = ctx
        self.reader = reader
        self.writer = writer
        self.conn = Connection(SERVER)
        peer = writer.get_extra_info("peername") or ("", 0)
        self.client_addr: tuple[str, int] = (str(peer[0]), int(peer[1]))
        self.tunnel: Tunnel | None = None
        self.tls: TLSInfo | None = None  # set once the client's TLS inside a tunnel is up
        self.authenticated = ctx.auth is None
        self.head_start = 0.0
        self.partial_head = False  # some bytes of the next request head have arrived
        self.exchange: Exchange | None = None  # the exchange in progress, for shutdown
        self._responded = False  # a final response head went out in this exchange
        self.request_method = b""  # the method of the request being answered (HEAD: no body)
        self._out: list[bytes] = []  # encoded response pieces not yet written
        self.fresh = True  # nothing read yet on this connection (or in its tunnel)

    @property
    def tunnel_sni(self) -> str | None:
        """The name the client asked for in its TLS ClientHello inside a tunnel, if any."""
        return self.tls.sni if self.tls is not None else None

    # -- the connection loop ------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.serve()
        except (ConnectionError, TimeoutError, ClientGone, OSError):
            pass  # the client went away; its exchange (if any) was already reported
        except Exception as e:  # never let one connection take the server down
            print(f"inspector: internal error on a client connection: {e!r}", file=sys.stderr)
        finally:
            self.writer.close()

    async def serve(self) -> None:
        """Serve requests on ``self.conn`` until the client or the exchange ends it."""
        while True:
            try:
                event = await self._read_request_head()
            except HTTPException as e:
                await self.reject(e)
                return
            except PrefaceSeen as seen:
                await self._serve_http2(seen.data)
                return
            except TimeoutError:
                if self.partial_head:  # a head that never completes (slowloris): say so
                    await self.answer(408, SLOW_HEAD, close=True)
                return  # an idle keep-alive client is just closed
            if not isinstance(event, Request):
                return  # ConnectionClosed: the client is done
            keep = await self._dispatch(event)
            conn = self.conn
            if not keep or conn.our_state is not DONE or conn.their_state is not DONE:
                return
            if self.ctx.closing:
                return  # shutting down: the exchange in flight was the last one
            conn.start_next_cycle()

    async def _read_request_head(self) -> Request | ConnectionClosed:
        conn = self.conn
        event = conn.next_event()
        if event is not NEED_DATA:
            self.head_start = time.time()
            return event  # type: ignore[return-value]
        ctx, reader = self.ctx, self.reader
        deadlines = ctx.deadlines
        self.partial_head = False
        deadlines.arm(reader, ctx.idle_timeout)
        try:
            while event is NEED_DATA:
                data = await reader.read(READ_CHUNK)
                if not self.partial_head and data:
                    # From the first byte on, the whole head has head_timeout to arrive.
                    self.partial_head = True
                    self.head_start = time.time()
                    deadlines.arm(reader, ctx.head_timeout)
                    if data[:1] == b"\x16" and self.tls is None:
                        raise RemoteProtocolError(TLS_ON_PLAIN_PORT)
                    if self.fresh and data[:4] == b"PRI " and ctx.config.http2:
                        raise PrefaceSeen(data)
                    self.fresh = False
                conn.receive_data(data)
                event = conn.next_event()
        finally:
            deadlines.disarm(reader)
        return event  # type: ignore[return-value]

    async def _dispatch(self, req: Request) -> bool:
        """Admit one request and serve it; False when the connection must close afterwards."""
        self._responded = False
        self.request_method = req.method
        try:
            if req.method == b"CONNECT":
                return await self._connect(req)
            self._authenticate(req)
            ctx = self.ctx
            target = resolve(ctx.config.mode, req.target, self.tunnel, ctx.listen_text)
        except ClientError as e:
            # Only a 407 keeps the connection: the client retries on it with credentials.
            keep = e.status == 407 and self._request_consumed()
            await self.answer(e.status, str(e), headers=e.headers, close=not keep)
            return keep
        self.exchange = exchange = Exchange(self.ctx, self, req, target)
        try:
            return await exchange.run()
        finally:
            self.exchange = None

    def _authenticate(self, req: Request) -> None:
        """ClientError 407 unless --proxy-auth is off or the credentials match; a CONNECT
        that carries them authenticates its whole tunnel."""
        if self.authenticated:
            return
        self.ctx.auth.check(req.headers)  # type: ignore[union-attr]
        if self.tunnel is None and req.method == b"CONNECT":
            self.authenticated = True

    async def _connect(self, req: Request) -> bool:
        """CONNECT: open the tunnel, then serve the HTTP inside it on this same loop."""
        if self.tunnel is not None or self.ctx.config.mode.kind == "reverse":
            raise ClientError(
                400, "inspector: CONNECT is not accepted here (reverse mode or nested tunnel)\n"
            )
        self._authenticate(req)
        host, port = parse_connect_target(req.target)
        opened = await tunnel.open_tunnel(self.ctx, self, req, host, port)
        if not isinstance(opened, Tunnel):
            return opened  # relayed raw, refused or failed
        self.tunnel = opened
        self.conn = Connection(SERVER)
        self.fresh = True
        await self.serve()
        return False

    async def _serve_http2(self, data: bytes) -> None:
        """Prior knowledge or ALPN h2: the rest of the connection is HTTP/2's."""
        ctx = self.ctx
        ctx.deadlines.arm(self.reader, ctx.head_timeout)  # the preface is part of the head
        try:
            while len(data) < len(PREFACE) and PREFACE.startswith(data):
                more = await self.reader.read(READ_CHUNK)
                if not more:
                    return
                data += more
        except TimeoutError:
            return
        finally:
            ctx.deadlines.disarm(self.reader)
        if not data.startswith(PREFACE):
            await self.answer(400, NOT_A_PREFACE, close=True)
            return
        h2conn = HTTP2Connection(
            self.ctx,
            self.reader,
            self.writer,
            client_addr=self.client_addr,
            tunnel=self.tunnel,
            tls=self.tls,
            authenticated=self.authenticated,
        )
        await h2conn.serve(data)

    # -- the request body (exchange layer's body source) ---------------------------------

    @property
    def request_done(self) -> bool:
        """The whole request (head and body) has been read."""
        return self.conn.their_state is DONE

    async def body_event(self) -> Data | EndOfMessage:
        """The next piece of the request body; ClientGone if the client breaks off."""
        conn = self.conn
        try:
            while True:
                event = conn.next_event()
                if event is NEED_DATA:
                    deadlines = self.ctx.deadlines
                    deadlines.arm(self.reader, self.ctx.idle_timeout)
                    try:
                        data = await self.reader.read(READ_CHUNK)
                    finally:
                        deadlines.disarm(self.reader)
                    conn.receive_data(data)
                    continue
                if type(event) is Data or type(event) is EndOfMessage:
                    return event  # type: ignore[return-value]
                raise ConnectionResetError("client closed mid-request")
        except (OSError, TimeoutError, HTTPException) as e:
            raise ClientGone(e) from e

    @property
    def expects_continue(self) -> bool:
        """The client sent ``Expect: 100-continue`` and waits for it before its body."""
        return self.conn.they_expect_100_continue

    def send_continue(self) -> None:
        """Answer ``Expect: 100-continue`` (if the client is waiting for it)."""
        if self.conn.they_expect_100_continue:
            self._write(Response(100, Headers(), b"Continue"))

    def _request_consumed(self) -> bool:
        """Finish parsing the request from what is already buffered; True if it is all read."""
        conn = self.conn
        try:
            while conn.their_state is not DONE:
                event = conn.next_event()
                # PAUSED: the request ended but the connection cannot go on (an HTTP/1.0
                # CONNECT followed by tunnel bytes): nothing more will come out of it.
                if event is NEED_DATA or event is PAUSED or type(event) is ConnectionClosed:
                    return False
        except HTTPException:
            return False
        return True

    # -- the response (exchange layer's response sink) -----------------------------------

    @property
    def responded(self) -> bool:
        """A final response head went to the client in this exchange."""
        return self._responded

    def _encode(self, event: Response | Data | EndOfMessage) -> bytes:
        if type(event) is Response and event.status_code >= 200:
            self._responded = True
        try:
            return self.conn.send(event)
        except HTTPException as e:
            raise ClientGone(e) from e

    def _write(self, event: Response | Data | EndOfMessage) -> None:
        write_to_client(self.writer, self._encode(event))

    async def drain(self) -> None:
        await drain_client(self.writer)

    async def send_established(self) -> None:
        """The 200 to a CONNECT: from here on the connection carries the tunnel."""
        self._write(Response(200, Headers(), tunnel.ESTABLISHED))
        await self.drain()

    def send_interim(self, response: Response) -> None:
        self._write(response)

    def _client_head(self, response: Response, upstream_keeps_alive: bool) -> Response:
        upgrade = response.status_code == 101
        headers = copied_headers(strip_hop_by_hop(response.headers.raw, upgrade=upgrade))
        dechunk = self.conn.their_http_version == b"1.0" and b"transfer-encoding" in headers
        if dechunk:
            # RFC 9112 6.1: an HTTP/1.0 client cannot read chunked; it gets the body
            # de-chunked, delimited by closing the connection.
            headers.remove(b"Transfer-Encoding")
        if not upgrade and (not upstream_keeps_alive or self.ctx.closing or dechunk):
            # The upstream closes after this response (or the proxy is stopping): so do
            # we, which keeps the client's view of the connection the same as the server's.
            headers.raw.append((b"Connection", b"close"))
        return Response(response.status_code, headers, response.reason)

    def queue_head(self, response: Response, upstream_keeps_alive: bool) -> None:
        """Queue a relayed response head; ``flush`` writes what is queued."""
        self._out.append(self._encode(self._client_head(response, upstream_keeps_alive)))

    def queue(self, event: Data | EndOfMessage) -> None:
        """Queue a piece of the relayed body or its end (trailers only where chunked)."""
        if (
            type(event) is EndOfMessage
            and event.trailers
            and self.conn.their_http_version == b"1.0"
        ):
            event = EndOfMessage()  # recorded on the flow, but HTTP/1.0 has no trailers
        self._out.append(self._encode(event))

    async def flush(self) -> None:
        """Write the queued pieces in one go, then wait for the client to keep up."""
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        write_to_client(self.writer, data)
        await drain_client(self.writer)

    async def respond_whole(self, response: FlowResponse, keep_alive: bool) -> None:
        """Send a response held whole (edited, or made by a hook), framed by its length."""
        headers = copied_headers(strip_hop_by_hop(response.headers))
        headers.remove(b"Transfer-Encoding")
        if not keep_alive:
            headers.raw.append((b"Connection", b"close"))
        status, body = response.status_code, response.body.data
        head_only = self.request_method == b"HEAD"
        if not head_only and status not in (204, 304):
            headers.set(b"Content-Length", len(body))
        # One write for head, body and end, as flush() does for a relayed response.
        out = self._out
        out.append(self._encode(Response(status, headers, response.reason.encode("latin-1"))))
        if body and not head_only:
            out.append(self._encode(Data(body)))
        out.append(self._encode(EndOfMessage()))
        await self.flush()

    async def switch_protocols(
        self, response: Response
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
        """Send the 101 on; the raw client streams and the bytes already past the head."""
        self._write(self._client_head(response, True))
        await self.drain()
        rest, _ = self.conn.trailing_data
        return self.reader, self.writer, rest

    # -- answers of the proxy's own ---------------------------------------------------

    async def fail(self, status: int, text: str) -> bool:
        """Answer a failed exchange (or cut a response already started); True if the
        connection can carry on."""
        if self._responded:
            self.writer.transport.abort()  # the response had started: cut it visibly
            return False
        keep = self._request_consumed()
        await self.answer(status, text, close=not keep)
        return keep

    async def reject(self, exc: HTTPException) -> None:
        """A request that cannot be parsed: its status (400, 431, ...) and close."""
        status = errors.client_status(exc)
        body = f"inspector: cannot parse the request: {type(exc).__name__}: {exc}\n"
        await self.answer(status, body, close=True)

    async def answer(
        self, status: int, text: str, *, close: bool = False, headers: tuple = ()
    ) -> None:
        """A short text/plain answer generated by the proxy itself."""
        body = text.encode("utf-8", "replace")
        fields = [
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", str(len(body)).encode()),
            *headers,
        ]
        if close:
            fields.append((b"Connection", b"close"))
        reason = describe(status).phrase.encode()
        conn = self.conn
        if conn.their_state is IDLE:
            # The core answers only requests it has seen; bytes that never became one
            # (a TLS handshake on the plain port) are answered on a stand-in connection.
            conn = Connection(SERVER)
            conn.receive_data(STAND_IN_REQUEST)
            conn.next_event()
        try:
            out = [conn.send(Response(status, Headers(fields), reason))]
            if body:
                out.append(conn.send(Data(body)))
            out.append(conn.send(EndOfMessage()))
            stream_write(self.writer, b"".join(out), "the client")
            await self.writer.drain()
        except (OSError, HTTPException):
            self.writer.transport.abort()
