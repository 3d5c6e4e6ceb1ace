"""One client connection: the HTTP/1.1 loop, CONNECT tunnels, forwarding and recording.

The loop is read, feed the sans-IO parser, act on its events, drain the writer.
Every exchange becomes a Flow whose life is published on the bus; every failure
is contained in its connection and reported on its flow.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ssl
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from inspector.bus import EventKind
from inspector.failures import exc_message, flow_error
from inspector.flow import Flow, FlowBody, FlowRequest, FlowResponse, Phase, TLSInfo
from inspector.proxy import errors
from inspector.proxy.errors import ClientError, FlowKilled, UpstreamError
from inspector.proxy.hop import request_fields, strip_hop_by_hop
from inspector.proxy.modes import Target, Tunnel, parse_connect_target, resolve
from inspector.proxy.recorder import BodyRecorder
from inspector.proxy.tunnel import ClientHello, looks_like_http, peek_client_hello, relay
from inspector.proxy.upstream import IDEMPOTENT, UpstreamConnection, open_raw
from inspector.proxy.websocket import FrameReader
from protocol.aio import stream_write
from protocol.connection import DONE, IDLE, SERVER, SWITCHED, Connection
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

if TYPE_CHECKING:
    from inspector.proxy.server import ProxyServer

READ_CHUNK = 262144  # large reads: fewer wake-ups and copies per MiB streamed
SLOW_HEAD = "inspector: the request head did not arrive in time; the connection is closed\n"
PEEK_TIMEOUT = 30.0  # a client must start talking inside a CONNECT tunnel within this
TLS_ON_PLAIN_PORT = (
    "a TLS handshake arrived on the proxy's plain HTTP port: configure the proxy as "
    "http://HOST:PORT (not https://); HTTPS sites still work through CONNECT"
)
STAND_IN_REQUEST = b"GET / HTTP/1.1\r\nHost: inspector\r\nConnection: close\r\n\r\n"
EARLY_HINTS = 103
_VERSIONS = {b"1.1": "HTTP/1.1", b"1.0": "HTTP/1.0"}


class ClientGone(Exception):
    """The client closed or broke its connection in the middle of an exchange."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(exc_message(exc))
        self.exc = exc


class ClientHandler:
    """Serves one accepted client connection until it closes."""

    def __init__(
        self, server: ProxyServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.config = server.config
        self.reader = reader
        self.writer = writer
        self.conn = Connection(SERVER)
        peer = writer.get_extra_info("peername") or ("", 0)
        self.client_addr: tuple[str, int] = (str(peer[0]), int(peer[1]))
        self.tunnel: Tunnel | None = None
        self.tls: TLSInfo | None = None
        self.authenticated = server.auth_header is None
        self.head_start = 0.0
        self.partial_head = False  # some bytes of the next request head have arrived
        self.flow: Flow | None = None  # the exchange in progress, for shutdown reporting
        self.responded = False  # a final response head went to the client in this exchange
        self.up: UpstreamConnection | None = None  # the upstream connection in use, if any

    # -- the connection loop ------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._serve()
        except (ConnectionError, TimeoutError, ClientGone, OSError):
            pass  # the client went away; its exchange (if any) was already reported
        except Exception as e:  # never let one connection take the server down
            print(f"inspector: internal error on a client connection: {e!r}", file=sys.stderr)
        finally:
            self.writer.close()

    async def _serve(self) -> None:
        while True:
            try:
                event = await self._read_request_head()
            except HTTPException as e:
                await self._reject_unparseable(e)
                return
            except TimeoutError:
                if self.partial_head:  # a head that never completes (slowloris): say so
                    await self._send_simple(408, SLOW_HEAD, close=True)
                return  # an idle keep-alive client is just closed
            if not isinstance(event, Request):
                return  # ConnectionClosed: the client is done
            keep = await self._exchange(event)
            conn = self.conn
            if not keep or conn.our_state is not DONE or conn.their_state is not DONE:
                return
            if self.server.closing:
                return  # shutting down: the exchange in flight was the last one
            conn.start_next_cycle()

    async def _read_request_head(self) -> Request | ConnectionClosed:
        conn = self.conn
        event = conn.next_event()
        if event is not NEED_DATA:
            self.head_start = time.time()
            return event  # type: ignore[return-value]
        deadlines, reader = self.server.deadlines, self.reader
        self.partial_head = False
        deadlines.arm(reader, self.server.idle_timeout)
        try:
            while event is NEED_DATA:
                data = await reader.read(READ_CHUNK)
                if not self.partial_head and data:
                    # From the first byte on, the whole head has head_timeout to arrive.
                    self.partial_head = True
                    self.head_start = time.time()
                    deadlines.arm(reader, self.server.head_timeout)
                    if data[:1] == b"\x16" and self.tls is None:
                        raise RemoteProtocolError(TLS_ON_PLAIN_PORT)
                conn.receive_data(data)
                event = conn.next_event()
        finally:
            deadlines.disarm(reader)
        return event  # type: ignore[return-value]

    async def _reject_unparseable(self, exc: HTTPException) -> None:
        status = errors.client_status(exc)
        body = f"inspector: cannot parse the request: {type(exc).__name__}: {exc}\n"
        await self._send_simple(status, body, close=True)

    # -- one exchange -------------------------------------------------------------

    async def _exchange(self, req: Request) -> bool:
        """Serve one request; False when the client connection must close afterwards."""
        try:
            if req.method == b"CONNECT":
                return await self._connect(req)
            self._check_auth(req)
            target = resolve(self.config.mode, req.target, self.tunnel, self.server.listen_text)
        except ClientError as e:
            # Only a 407 keeps the connection: the client retries on it with credentials.
            keep = e.status == 407 and self._request_consumed()
            await self._send_simple(e.status, str(e), headers=e.headers, close=not keep)
            return keep
        flow = self._new_flow(req, target)
        self.flow = flow
        self.responded = False
        try:
            await self._forward(flow, req, target)
        except UpstreamError as e:
            return await self._fail(
                flow, e.exc, e.phase, errors.upstream_status(e.exc), errors.upstream_error_body(e)
            )
        except FlowKilled as e:
            body = f"inspector: {e}\n".encode()
            return await self._fail(flow, e, Phase.INTERCEPT, errors.BAD_GATEWAY, body)
        except ClientGone as e:
            self._finish_error(flow, e.exc, Phase.CLIENT)
            if isinstance(e.exc, HTTPException) and not self.responded:
                await self._reject_unparseable(e.exc)  # e.g. a broken chunked request body
            return False
        except asyncio.CancelledError:
            phase = Phase(self.up.phase) if self.up is not None else Phase.CLIENT
            self._finish_error(flow, errors.ProxyShutdown(), phase)
            raise
        except Exception as e:  # unexpected: the flow still ends, run() contains the rest
            self._finish_error(flow, e, Phase.CLIENT)
            raise
        finally:
            self.flow = None
            if self.up is not None:  # the exchange ended abnormally while upstream was busy
                self._discard(self.up, abort=True)
        return True

    def _acquired(self, up: UpstreamConnection) -> UpstreamConnection:
        self.up = up
        return up

    def _release(self, up: UpstreamConnection) -> None:
        self.up = None
        self.server.pool.release(up)

    def _discard(self, up: UpstreamConnection, *, abort: bool = False) -> None:
        if self.up is up:
            self.up = None
            self.server.pool.discard(up, abort=abort)

    def _new_flow(self, req: Request, target: Target) -> Flow:
        fields, _, has_host = request_fields(req.headers.raw)
        headers = Headers()
        headers.raw.extend(fields)
        if not has_host or self.config.mode.kind == "reverse":
            headers.set(b"Host", target.authority)
        request = FlowRequest(
            method=req.method.decode("latin-1"),
            scheme=target.scheme,
            host=target.host,
            port=target.port,
            path=target.path,
            http_version=_VERSIONS.get(req.http_version, "HTTP/1.1"),
            headers=headers.raw,
            timestamp=time.time(),
        )
        flow = self._flow_for(request)
        tls = self.tls
        if tls is not None:  # the client side's details; each flow adds its upstream's
            flow.tls = TLSInfo(tls.sni, tls.client_alpn, tls.client_version)
        self.server.publish(EventKind.STARTED, flow)
        return flow

    def _flow_for(self, request: FlowRequest) -> Flow:
        """A new flow of this client connection, started when its request head began."""
        flow = Flow(
            request=request,
            id=self.server.new_flow_id(),
            client_addr=self.client_addr,
            mode=self.server.mode_text,
        )
        flow.timings.start = self.head_start
        return flow

    async def _forward(self, flow: Flow, req: Request, target: Target) -> None:
        interceptor = self.server.interceptor
        held = interceptor is not None and interceptor.matches(flow)
        pool = self.server.pool
        key = pool.key_for(target, self.tls.sni if self.tls else None)
        recorder = BodyRecorder(self.config.body_limit)
        if held:
            await self._read_request_body(recorder, None)
            flow.request.body = recorder.body()
            self.server.publish(EventKind.REQUEST, flow)
            await interceptor.hold(flow, "request")  # type: ignore[union-attr]
            r = flow.request  # the user may have pointed it elsewhere
            edited = Target(r.scheme, r.host, r.port, r.path, target.via)
            same_host = r.host == target.host
            key = pool.key_for(edited, self.tls.sni if self.tls and same_host else None)
            up = await self._send_recorded(flow, key, fresh=False)
        else:
            up = self._acquired(await pool.acquire(key, flow.timings))
            try:
                await self._send_streamed(flow, up, recorder)
            except UpstreamError as e:
                self._discard(up)
                if not self._may_retry(flow, up, e, recorder):
                    raise
                up = await self._send_recorded(flow, key, fresh=True)
        try:
            response = await self._first_response(flow, up)
        except UpstreamError as e:
            self._discard(up)
            if held or not self._may_retry(flow, up, e, recorder):
                raise
            up = await self._send_recorded(flow, key, fresh=True)
            try:
                response = await self._first_response(flow, up)
            except UpstreamError:
                self._discard(up)
                raise
        await self._respond(flow, up, response)

    # -- request side ---------------------------------------------------------------

    async def _send_streamed(
        self, flow: Flow, up: UpstreamConnection, recorder: BodyRecorder
    ) -> None:
        """Send the head upstream, then the client's body as it arrives."""
        await self._send_head(flow, up)
        if self.conn.they_expect_100_continue:
            # The proxy answers 100 itself once the upstream is connected (RFC 9110
            # 10.1.1 allows it); Expect is still forwarded and the upstream's 100 dropped.
            self._write_client(Response(100, Headers(), b"Continue"))
        await self._read_request_body(recorder, up)
        flow.request.body = recorder.body()
        flow.timings.request_sent = time.time()
        self.server.publish(EventKind.REQUEST, flow)

    async def _send_recorded(self, flow: Flow, key, *, fresh: bool) -> UpstreamConnection:  # type: ignore[no-untyped-def]
        """Send the (possibly edited) recorded request on a connection of its own."""
        up = self._acquired(await self.server.pool.acquire(key, flow.timings, fresh=fresh))
        body = flow.request.body.data
        headers = Headers()
        headers.raw.extend(flow.request.headers)
        if b"transfer-encoding" not in headers and (body or b"content-length" in headers):
            headers.set(b"Content-Length", len(body))
        flow.request.headers = headers.raw
        try:
            await self._send_head(flow, up)
            await up.send_data(body)
            await up.send_end()
        except (OSError, HTTPException) as e:
            self._discard(up)
            raise UpstreamError(e, Phase.SEND, _where(flow)) from e
        flow.timings.request_sent = time.time()
        return up

    async def _send_head(self, flow: Flow, up: UpstreamConnection) -> None:
        r = flow.request
        target = r.path
        if up.key.via is not None and up.key.scheme == "http":
            target = r.url  # an upstream proxy takes absolute-form
        method, path = r.method.encode("latin-1"), target.encode("latin-1")
        try:
            await up.send_head(method, path, _wrap(r.headers))
        except (OSError, HTTPException) as e:
            raise UpstreamError(e, Phase.SEND, _where(flow)) from e

    async def _read_request_body(
        self, recorder: BodyRecorder, up: UpstreamConnection | None
    ) -> None:
        """Read the client's body to its end, recording it and streaming it upstream."""
        while True:
            event = await self._client_event()
            if type(event) is Data:
                recorder.add(event.data)
                if up is not None:
                    try:
                        await up.send_data(event.data)
                    except (OSError, HTTPException) as e:
                        raise UpstreamError(e, Phase.SEND, _where_up(up)) from e
            elif type(event) is EndOfMessage:
                if up is not None:
                    try:
                        await up.send_end(event.trailers)
                    except (OSError, HTTPException) as e:
                        raise UpstreamError(e, Phase.SEND, _where_up(up)) from e
                return
            else:
                raise ClientGone(ConnectionResetError("client closed mid-request"))

    async def _client_event(self):  # type: ignore[no-untyped-def]
        conn = self.conn
        try:
            while True:
                event = conn.next_event()
                if event is not NEED_DATA:
                    return event
                deadlines = self.server.deadlines
                deadlines.arm(self.reader, self.server.idle_timeout)
                try:
                    data = await self.reader.read(READ_CHUNK)
                finally:
                    deadlines.disarm(self.reader)
                conn.receive_data(data)
        except (OSError, TimeoutError, HTTPException) as e:
            raise ClientGone(e) from e

    def _may_retry(
        self, flow: Flow, up: UpstreamConnection, e: UpstreamError, recorder: BodyRecorder
    ) -> bool:
        """A reused connection that died before any response byte: retry an idempotent
        request once, if its whole body is held in the recording."""
        return (
            up.uses > 1
            and up.received == 0
            and isinstance(e.exc, OSError | HTTPException)
            and not isinstance(e.exc, TimeoutError)
            and flow.request.method.encode("latin-1") in IDEMPOTENT
            and self.conn.their_state is DONE
            and recorder.complete
        )

    # -- response side ----------------------------------------------------------------

    async def _first_response(self, flow: Flow, up: UpstreamConnection) -> Response:
        """The final response head; interim 103 Early Hints go on to the client."""

        def interim(response: Response) -> None:
            if flow.timings.response_start is None:
                flow.timings.response_start = time.time()
            if response.status_code == EARLY_HINTS:
                # Only 103 reaches the client: we answer 100 ourselves, and 102 and
                # unknown 1xx mean nothing to an HTTP/1.1 client.
                self._write_client(response)

        try:
            response = await up.receive_response(interim)
        except (OSError, TimeoutError, HTTPException) as e:
            raise UpstreamError(e, Phase(up.phase), _where(flow)) from e
        if flow.timings.response_start is None:
            flow.timings.response_start = time.time()
        return response

    async def _respond(self, flow: Flow, up: UpstreamConnection, response: Response) -> None:
        flow.response = FlowResponse(
            status_code=response.status_code,
            reason=response.reason.decode("latin-1"),
            http_version=_VERSIONS.get(response.http_version, "HTTP/1.1"),
            headers=list(response.headers.raw),
            timestamp=time.time(),
        )
        upstream_tls = up.tls_info()
        if upstream_tls is not None:
            if flow.tls is None:  # plain on the client side, TLS upstream (reverse mode)
                flow.tls = TLSInfo()
            _merge_tls(flow.tls, upstream_tls)
        self.server.publish(EventKind.RESPONSE_HEADERS, flow)
        if response.status_code == 101:
            await self._switch_protocols(flow, up, response)
            return
        interceptor = self.server.interceptor
        if interceptor is not None and interceptor.matches(flow):
            await self._respond_held(flow, up, response)
        else:
            await self._respond_streamed(flow, up, response)

    def _client_head(self, response: Response, up: UpstreamConnection) -> Response:
        upgrade = response.status_code == 101
        headers = _wrap(strip_hop_by_hop(response.headers.raw, upgrade=upgrade))
        dechunk = self.conn.their_http_version == b"1.0" and b"transfer-encoding" in headers
        if dechunk:
            # RFC 9112 6.1: an HTTP/1.0 client cannot read chunked; it gets the body
            # de-chunked, delimited by closing the connection.
            headers.remove(b"Transfer-Encoding")
        if not upgrade and (not up.keep_alive or self.server.closing or dechunk):
            # The upstream closes after this response (or the proxy is stopping): so do
            # we, which keeps the client's view of the connection the same as the server's.
            headers.raw.append((b"Connection", b"close"))
        return Response(response.status_code, headers, response.reason)

    async def _respond_streamed(
        self,
        flow: Flow,
        up: UpstreamConnection,
        response: Response,
        recorder: BodyRecorder | None = None,
        already: list[bytes] | None = None,
    ) -> None:
        """Relay the body as it arrives; what is already buffered goes out in one write.

        ``recorder`` and ``already`` carry a body that was partly read (and recorded) before.
        """
        recorder = recorder or BodyRecorder(self.config.body_limit)
        out = [self._encode_client(self._client_head(response, up))]
        out.extend(self._encode_client(Data(chunk)) for chunk in already or ())
        while True:
            try:
                event = up.body_event_nowait()
                if event is None:
                    await self._flush_client(out)
                    await up.read_more()
                    continue
            except (OSError, TimeoutError, HTTPException) as e:
                flow.response.body = recorder.body()  # type: ignore[union-attr]
                self._discard(up, abort=True)
                await self._flush_client(out)
                raise UpstreamError(e, Phase.BODY, _where(flow)) from e
            if type(event) is Data:
                out.append(self._encode_client(event))
                recorder.add(event.data)
            else:
                out.append(self._encode_client(self._client_end(event)))
                break
        self._release(up)
        flow.response.body = recorder.body()  # type: ignore[union-attr]
        flow.response.trailers = list(event.trailers.raw)  # type: ignore[union-attr]
        await self._flush_client(out)
        self._finish(flow)

    def _client_end(self, end: EndOfMessage) -> EndOfMessage:
        """The end of a relayed response: trailers only reach a client that gets chunks."""
        if end.trailers and self.conn.their_http_version == b"1.0":
            return EndOfMessage()  # recorded on the flow, but HTTP/1.0 has no trailers
        return end

    async def _respond_held(self, flow: Flow, up: UpstreamConnection, response: Response) -> None:
        """Read the whole response, hold it for the user, then send what they left.

        A body larger than the body limit cannot be held (it is not kept whole): it is
        relayed unheld, like any other response.
        """
        limit = self.config.body_limit
        recorder = BodyRecorder(limit)
        chunks: list[bytes] = []
        trailers: list = []
        while True:
            try:
                event = await up.next_body_event()
            except (OSError, TimeoutError, HTTPException) as e:
                self._discard(up, abort=True)
                raise UpstreamError(e, Phase.BODY, _where(flow)) from e
            if type(event) is not Data:
                trailers = list(event.trailers.raw)  # type: ignore[union-attr]
                break
            recorder.add(event.data)
            chunks.append(event.data)
            if recorder.size > limit:
                await self._respond_streamed(flow, up, response, recorder, chunks)
                return
        keep_alive = up.keep_alive
        self._release(up)
        assert flow.response is not None
        flow.response.body = recorder.body()
        flow.response.trailers = trailers
        await self.server.interceptor.hold(flow, "response")  # type: ignore[union-attr]
        r = flow.response
        headers = _wrap(strip_hop_by_hop(r.headers))
        headers.remove(b"Transfer-Encoding")
        if not keep_alive:
            headers.raw.append((b"Connection", b"close"))
        if flow.request.method != "HEAD" and r.status_code not in (204, 304):
            headers.set(b"Content-Length", len(r.body.data))
        self._write_client(Response(r.status_code, headers, r.reason.encode("latin-1")))
        if r.body.data and flow.request.method != "HEAD":
            self._write_client(Data(r.body.data))
        self._write_client(EndOfMessage())
        await self._drain_client()
        self._finish(flow)

    async def _switch_protocols(
        self, flow: Flow, up: UpstreamConnection, response: Response
    ) -> None:
        """After 101: relay raw bytes both ways, recording WebSocket messages."""
        self._write_client(self._client_head(response, up))
        await self._drain_client()
        client_rest, _ = self.conn.trailing_data
        up_reader, up_writer, upstream_rest = up.detach()
        websocket = (flow.request.header("Upgrade") or "").lower() == "websocket"
        to_up = self._ws_recorder(flow, True) if websocket else None
        to_client = self._ws_recorder(flow, False) if websocket else None
        try:
            if client_rest:
                to_up and to_up(client_rest)
                stream_write(up_writer, client_rest, "the upstream")
            if upstream_rest:
                to_client and to_client(upstream_rest)
                stream_write(self.writer, upstream_rest, "the client")
            await relay(
                self.reader, self.writer, up_reader, up_writer, a_to_b=to_up, b_to_a=to_client
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            up_writer.close()
            self._discard(up)  # frees its pool slot; the streams were handed over
        self._finish(flow)

    def _ws_recorder(self, flow: Flow, from_client: bool) -> Callable[[bytes], None]:
        reader = FrameReader(from_client)
        publish = self.server.publish

        def record(data: bytes) -> None:
            messages = reader.feed(data)
            if messages:
                flow.websocket.extend(messages)
                publish(EventKind.WEBSOCKET, flow)

        return record

    def _encode_client(self, event: Response | Data | EndOfMessage) -> bytes:
        if type(event) is Response and event.status_code >= 200:
            self.responded = True
        try:
            return self.conn.send(event)
        except HTTPException as e:
            raise ClientGone(e) from e

    def _write_client(self, event: Response | Data | EndOfMessage) -> None:
        data = self._encode_client(event)
        try:
            stream_write(self.writer, data, "the client")
        except OSError as e:
            raise ClientGone(e) from e

    async def _flush_client(self, out: list[bytes]) -> None:
        """Write the queued pieces in one go, then wait for the client to keep up."""
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        try:
            stream_write(self.writer, data, "the client")
            await self.writer.drain()
        except OSError as e:
            raise ClientGone(e) from e

    async def _drain_client(self) -> None:
        try:
            await self.writer.drain()
        except OSError as e:
            raise ClientGone(e) from e

    # -- finishing ----------------------------------------------------------------------

    def _finish(self, flow: Flow) -> None:
        flow.timings.end = time.time()
        self.server.publish(EventKind.RESPONSE, flow)

    def _finish_error(self, flow: Flow, exc: BaseException, phase: Phase) -> None:
        if flow.timings.end is not None:
            return
        flow.error = flow_error(exc, phase)
        flow.timings.end = time.time()
        self.server.publish(EventKind.ERROR, flow)

    async def _fail(
        self, flow: Flow, exc: BaseException, phase: Phase, status: int, body: bytes
    ) -> bool:
        """Report a failed exchange; answer the client if it has not seen a response yet."""
        self._finish_error(flow, exc, phase)
        if self.responded:
            self.writer.transport.abort()  # the response had started: cut it visibly
            return False
        keep = self._request_consumed()
        await self._send_simple(status, body.decode("utf-8", "replace"), close=not keep)
        return keep

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

    async def _send_simple(
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

    # -- authentication ----------------------------------------------------------------

    def _check_auth(self, req: Request) -> None:
        if self.authenticated:
            return
        expected = self.server.auth_header
        given = req.headers.get(b"Proxy-Authorization")
        if given is not None and expected is not None and _basic_matches(given, expected):
            if self.tunnel is None and req.method == b"CONNECT":
                self.authenticated = True
            return
        why = (
            "the credentials given do not match --proxy-auth"
            if given is not None
            else "pass the --proxy-auth credentials (e.g. curl --proxy-user USER:PASS)"
        )
        raise ClientError(
            407,
            f"inspector: proxy authentication required: {why}\n",
            headers=((b"Proxy-Authenticate", b'Basic realm="inspector"'),),
        )

    # -- CONNECT ---------------------------------------------------------------------

    async def _connect(self, req: Request) -> bool:
        if self.tunnel is not None or self.config.mode.kind == "reverse":
            raise ClientError(
                400, "inspector: CONNECT is not accepted here (reverse mode or nested tunnel)\n"
            )
        self._check_auth(req)
        host, port = parse_connect_target(req.target)
        ignore = self.config.ignore_hosts
        if ignore is not None and ignore.search(host):
            return await self._raw_tunnel(req, host, port)
        transport = self.writer.transport
        transport.pause_reading()  # keep the first tunnel bytes in the kernel for peeking
        self._write_client(Response(200, Headers(), b"Connection established"))
        await self._drain_client()
        if self.conn.our_state is not SWITCHED:
            return False
        early, _ = self.conn.trailing_data
        if early:
            transport.resume_reading()
            return False  # bytes sent before our 200 cannot be peeked: refuse the tunnel
        try:
            first, hello = await peek_client_hello(transport, PEEK_TIMEOUT)
        except TimeoutError:
            return False
        if not first:
            return False
        if hello is not None:
            try:
                await self._start_client_tls(host, hello)
            except ClientGone as e:
                self._report_client_tls_failure(req, host, port, hello, e.exc)
                return False
            self.tunnel = Tunnel("https", host, port)
        elif looks_like_http(first):
            transport.resume_reading()
            self.tunnel = Tunnel("http", host, port)
        else:
            transport.resume_reading()
            return await self._raw_tunnel(req, host, port, answered=True)
        self.conn = Connection(SERVER)
        await self._serve()
        return False

    async def _start_client_tls(self, host: str, hello: ClientHello) -> None:
        name = hello.sni or host
        store = self.server.certstore
        try:
            if name in store:
                ctx = store.server_context(name)
            else:  # minting signs a new leaf: keep it off the event loop
                loop = asyncio.get_running_loop()
                ctx = await loop.run_in_executor(None, store.server_context, name)
        except ValueError as e:  # certs.HostError: a name no certificate can carry
            raise ClientGone(e) from e
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                await self.writer.start_tls(ctx)
        except (OSError, TimeoutError) as e:
            raise ClientGone(e) from e
        sslobj = self.writer.get_extra_info("ssl_object")
        self.tls = TLSInfo(
            sni=hello.sni,
            client_alpn=",".join(hello.alpn) if hello.alpn else None,
            client_version=sslobj.version() if sslobj is not None else None,
        )

    def _report_client_tls_failure(
        self, req: Request, host: str, port: int, hello: ClientHello, exc: BaseException
    ) -> None:
        """A client that refuses our certificate is the commonest set-up problem: record it."""
        flow = self._connect_flow(req, host, port)
        flow.tls = TLSInfo(sni=hello.sni, client_alpn=",".join(hello.alpn or ()) or None)
        self.server.publish(EventKind.STARTED, flow)
        trust = "does it trust the inspector CA? see `inspector ca`"
        if isinstance(exc, ssl.SSLError):
            exc = type(exc)(f"{exc} (the client refused the TLS handshake: {trust})")
        elif isinstance(exc, ConnectionError):  # clients that drop the connection, no alert
            exc = type(exc)(f"the client closed the connection during the TLS handshake: {trust}")
        self._finish_error(flow, exc, Phase.CLIENT)

    def _connect_flow(self, req: Request, host: str, port: int) -> Flow:
        request = FlowRequest(
            method="CONNECT",
            scheme="https" if port == 443 else "http",
            host=host,
            port=port,
            path=f"{host}:{port}",
            headers=list(req.headers.raw),
            timestamp=time.time(),
        )
        return self._flow_for(request)

    async def _raw_tunnel(
        self, req: Request, host: str, port: int, *, answered: bool = False
    ) -> bool:
        """Relay a tunnel untouched (--ignore-hosts, or not HTTP inside); recorded as CONNECT."""
        flow = self._connect_flow(req, host, port)
        self.server.publish(EventKind.STARTED, flow)
        target = Target(
            "tcp",
            host,
            port,
            "",
            self.config.mode.target if self.config.mode.kind == "upstream" else None,
        )
        try:
            up = await open_raw(target, self.server.pool, flow.timings)
        except UpstreamError as e:
            if answered:
                self._finish_error(flow, e.exc, e.phase)
                return False
            return await self._fail(
                flow, e.exc, e.phase, errors.upstream_status(e.exc), errors.upstream_error_body(e)
            )
        if not answered:
            self._write_client(Response(200, Headers(), b"Connection established"))
            await self._drain_client()
        flow.response = FlowResponse(200, "Connection established", timestamp=time.time())
        self.server.publish(EventKind.RESPONSE_HEADERS, flow)
        up_reader, up_writer, early = up.detach()
        rest, _ = self.conn.trailing_data
        try:
            if early:  # the far end spoke first, and it came with the upstream proxy's answer
                stream_write(self.writer, early, "the client")
            if rest:
                stream_write(up_writer, rest, "the upstream")
            sent, received = await relay(self.reader, self.writer, up_reader, up_writer)
        except OSError:
            sent = received = 0
        finally:
            up_writer.close()
        sent, received = sent + len(rest), received + len(early)  # what went before the relay
        flow.request.body = FlowBody(size=sent, truncated=sent > 0)
        flow.response.body = FlowBody(size=received, truncated=received > 0)
        self._finish(flow)
        return False


def _wrap(pairs: list[tuple[bytes, bytes]]) -> Headers:
    """A Headers view over a copy of ``pairs`` (already validated by the parser or the UI)."""
    headers = Headers()
    headers.raw.extend(pairs)
    return headers


def _merge_tls(info: TLSInfo, upstream: TLSInfo) -> None:
    info.upstream_version = upstream.upstream_version
    info.upstream_cipher = upstream.upstream_cipher
    info.upstream_alpn = upstream.upstream_alpn
    info.upstream_cert_subject = upstream.upstream_cert_subject
    info.upstream_cert_issuer = upstream.upstream_cert_issuer


def _where(flow: Flow) -> str:
    host = flow.request.host
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{flow.request.port}"


def _where_up(up: UpstreamConnection) -> str:
    host = up.key.host
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{up.key.port}"


def _basic_matches(given: bytes, expected: bytes) -> bool:
    scheme, _, token = given.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return False
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(decoded, expected)
