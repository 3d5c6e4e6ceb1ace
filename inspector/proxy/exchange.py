"""The exchange layer: one request in, one response out, the flow recorded.

An ``Exchange`` gets a parsed request head and the connection it came on (a
``ClientSide``: HTTP/1.1's ``http1.HTTP1Connection`` today, an HTTP/2 stream later)
and knows nothing of framing. It makes the flow, runs the hooks at the two stops
(``hooks.py``: request complete and before upstream, response complete and before the
client), sends the request upstream through the pool, retries a reused connection
that died before answering, and hands the response back to the client side as events.
Every failure ends the flow with its phase; the client side turns it into an answer.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Protocol

from inspector.bus import EventKind
from inspector.flow import Flow, FlowBody, FlowRequest, FlowResponse, Phase, TLSInfo
from inspector.intercept import FlowKilled
from inspector.proxy import errors
from inspector.proxy.errors import ClientGone, UpstreamError
from inspector.proxy.hooks import CloseConnection, held_at_head
from inspector.proxy.hop import add_framing, request_fields
from inspector.proxy.modes import Target
from inspector.proxy.recorder import BodyRecorder
from inspector.proxy.upstream import IDEMPOTENT, PoolKey, UpstreamConnection
from inspector.proxy.websocket import relay_switched
from protocol.authority import host_port
from protocol.errors import HTTPException
from protocol.events import Data, EndOfMessage, Request, Response
from protocol.headers import Headers
from protocol.status import EARLY_HINTS

if TYPE_CHECKING:
    from inspector.proxy.context import ProxyContext
    from inspector.proxy.hooks import ExchangeHook

VERSIONS = {b"1.1": "HTTP/1.1", b"1.0": "HTTP/1.0", b"2": "HTTP/2"}
REQUEST_WINDOW = 262144
"""Request body bytes read, their framing checked, before anything goes upstream.

A request whose body ends inside the window reaches the upstream whole, its head and
body in one write, or not at all: a framing error in it (which the connection layer
raises as ``ClientGone``) is a 400 and the origin sees nothing. A longer body streams on
after the window; a framing error there aborts the upstream request (its connection is
reset), as nginx does for unbuffered uploads.
"""


class ClientSide(Protocol):
    """What an exchange needs from the client connection its request came on.

    Request side: ``body_event()`` gives the request body as ``Data`` events and then
    ``EndOfMessage`` (``ClientGone`` if the client breaks off), ``send_continue()`` answers
    ``Expect: 100-continue``. Response side: ``send_interim`` (1xx), ``queue_head`` /
    ``queue`` / ``flush`` (a streamed response, written in batches), ``respond_whole`` (a
    held or local one), ``switch_protocols`` (after 101: the raw streams), ``fail`` (an
    error answer, or a cut once a response has started). Framing is the client side's.
    """

    client_addr: tuple[str, int]
    head_start: float  # when the request head began to arrive
    tls: TLSInfo | None  # the client side's TLS, if any
    tunnel_sni: str | None  # the TLS name the client asked for, if any

    @property
    def responded(self) -> bool: ...

    @property
    def request_done(self) -> bool: ...

    async def body_event(self) -> Data | EndOfMessage: ...

    @property
    def expects_continue(self) -> bool: ...  # the client waits for 100 before its body

    def send_continue(self) -> None: ...

    def send_interim(self, response: Response) -> None: ...

    def queue_head(self, response: Response, upstream_keeps_alive: bool) -> None: ...

    def queue(self, event: Data | EndOfMessage) -> None: ...

    async def flush(self) -> None: ...

    async def respond_whole(self, response: FlowResponse, keep_alive: bool) -> None: ...

    async def switch_protocols(
        self, response: Response
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]: ...

    async def fail(self, status: int, text: str) -> bool: ...

    async def reject(self, exc: HTTPException) -> None: ...


class Exchange:
    """One request and its response; ``run()`` returns whether the client connection
    may carry another exchange."""

    __slots__ = ("client", "ctx", "flow", "head", "target", "up")

    def __init__(self, ctx: ProxyContext, client: ClientSide, head: Request, target: Target):
        self.ctx = ctx
        self.client = client
        self.head = head
        self.target = target
        self.up: UpstreamConnection | None = None  # the upstream connection in use, if any
        self.flow = self._new_flow()

    async def run(self) -> bool:
        flow, ctx = self.flow, self.ctx
        try:
            await self._forward(flow)
        except UpstreamError as e:
            body = errors.upstream_error_body(e).decode("utf-8", "replace")
            ctx.finish_error(flow, e.exc, e.phase)
            return await self.client.fail(errors.upstream_status(e.exc), body)
        except FlowKilled as e:
            ctx.finish_error(flow, e, Phase.INTERCEPT)
            return await self.client.fail(errors.BAD_GATEWAY, f"inspector: {e}\n")
        except CloseConnection as e:
            ctx.finish_error(flow, e, Phase(e.phase))
            return False  # the connection closes with no response, as a hook asked
        except ClientGone as e:
            ctx.finish_error(flow, e.exc, Phase.CLIENT)
            if isinstance(e.exc, HTTPException) and not self.client.responded:
                await self.client.reject(e.exc)  # e.g. a broken chunked request body
            return False
        except asyncio.CancelledError:
            phase = Phase(self.up.phase) if self.up is not None else Phase.CLIENT
            ctx.finish_error(flow, errors.ProxyShutdown(), phase)
            raise
        except Exception as e:  # unexpected: the flow still ends, the connection contains the rest
            ctx.finish_error(flow, e, Phase.CLIENT)
            raise
        finally:
            if self.up is not None:  # the exchange ended abnormally while upstream was busy
                self._discard(self.up, abort=True)
        return True

    # -- the flow -------------------------------------------------------------------

    def _new_flow(self) -> Flow:
        req, target, client = self.head, self.target, self.client
        fields, _, has_host = request_fields(req.headers.raw)
        headers = Headers()
        headers.raw.extend(fields)
        # RFC 9112 3.2.2: the authority of an absolute-form target replaces any Host sent.
        absolute = not req.target.startswith(b"/") and req.target != b"*"
        if absolute or not has_host or self.ctx.config.mode.kind == "reverse":
            headers.set(b"Host", target.authority)
        request = FlowRequest(
            method=req.method.decode("latin-1"),
            scheme=target.scheme,
            host=target.host,
            port=target.port,
            path=target.path,
            http_version=VERSIONS.get(req.http_version, "HTTP/1.1"),
            headers=headers.raw,
            timestamp=time.time(),
        )
        flow = self.ctx.new_flow(request, client.client_addr, client.head_start)
        tls = client.tls
        if tls is not None:  # the client side's details; each flow adds its upstream's
            flow.tls = TLSInfo(tls.sni, tls.client_alpn, tls.client_version)
        self.ctx.publish(EventKind.STARTED, flow)
        return flow

    # -- upstream connections ----------------------------------------------------------

    async def _acquire(self, key: PoolKey, *, fresh: bool = False) -> UpstreamConnection:
        self.up = await self.ctx.pool.acquire(key, self.flow.timings, fresh=fresh)
        return self.up

    def _release(self, up: UpstreamConnection) -> None:
        self.up = None
        self.ctx.pool.release(up)

    def _discard(self, up: UpstreamConnection, *, abort: bool = False) -> None:
        if self.up is up:
            self.up = None
            self.ctx.pool.discard(up, abort=abort)

    def _key(self, target: Target) -> PoolKey:
        return self.ctx.pool.key_for(target, self.client.tunnel_sni, http2=self.client.http2)

    # -- request side -------------------------------------------------------------------

    async def _forward(self, flow: Flow) -> None:
        hooks = held_at_head(self.ctx.hooks, flow, "request")
        recorder = BodyRecorder(self.ctx.config.body_limit)
        key = self._request_key(flow)
        if hooks:
            up = await self._forward_held(flow, hooks, recorder)
            if up is None:
                return  # a hook answered
        else:
            up = await self._send_windowed(flow, key, recorder)
        try:
            response = await self._first_response(flow, up)
        except UpstreamError as e:
            self._discard(up)
            if hooks or not self._may_retry(flow, up, e, recorder):
                raise
            up = await self._send_recorded(flow, key, fresh=True)
            try:
                response = await self._first_response(flow, up)
            except UpstreamError:
                self._discard(up)
                raise
        await self._respond(flow, up, response)

    async def _forward_held(
        self, flow: Flow, hooks: list[ExchangeHook], recorder: BodyRecorder
    ) -> UpstreamConnection | None:
        """Read the request, run the hooks, then send what they left (None: a hook
        answered with ``flow.response``). A body over the body limit cannot be held: the
        hooks see its recorded (truncated) part, and it streams on whole and untouched."""
        self.client.send_continue()  # the body is read now, whatever the upstream says
        held: list[bytes] = []
        whole = await self._read_request_held(recorder, held)
        flow.request.body = recorder.body()
        self.ctx.publish(EventKind.REQUEST, flow)
        for hook in hooks:
            await hook.request(flow)
        if flow.response is not None:
            await self._answer_locally(flow)
            return None
        key = self._request_key(flow)  # the hooks may have pointed it elsewhere
        if not whole:
            return await self._send_rest(flow, key, held, recorder)
        return await self._send_recorded(flow, key, fresh=False)

    async def _read_request_held(self, recorder: BodyRecorder, held: list[bytes]) -> bool:
        """Read the body into ``held`` until its end (True) or past the body limit (False)."""
        body_event, limit = self.client.body_event, self.ctx.config.body_limit
        while True:
            event = await body_event()
            if type(event) is not Data:
                return True
            recorder.add(event.data)
            held.append(event.data)
            if recorder.size > limit:
                return False

    async def _send_rest(
        self, flow: Flow, key: PoolKey, held: list[bytes], recorder: BodyRecorder
    ) -> UpstreamConnection:
        """Send the head, the body read so far, then the rest as it arrives."""
        up = await self._acquire(key)
        await self._send_head(flow, up, b"".join(held))
        await self._read_request_body(recorder, up)
        flow.request.body = recorder.body()
        flow.timings.request_sent = time.time()
        return up

    def _request_key(self, flow: Flow) -> PoolKey:
        """The pool key for the request as it stands (a hook may have re-targeted it)."""
        r, target = flow.request, self.target
        if (r.scheme, r.host, r.port) == (target.scheme, target.host, target.port):
            return self._key(target)
        edited = Target(r.scheme, r.host, r.port, r.path, target.via)
        sni = self.client.tunnel_sni if r.host == target.host else None
        return self.ctx.pool.key_for(edited, sni, http2=self.client.http2)

    async def _send_windowed(
        self, flow: Flow, key: PoolKey, recorder: BodyRecorder
    ) -> UpstreamConnection:
        """Read the body's window (``REQUEST_WINDOW``: nothing goes upstream before its
        framing is checked), send the head with it in one write, stream the rest."""
        client = self.client
        up = None
        if client.expects_continue:
            # The proxy answers 100 itself once the upstream is connected (RFC 9110 10.1.1
            # allows it); Expect is still forwarded and the upstream's 100 dropped.
            up = await self._acquire(key)
            client.send_continue()
        chunks, end = await self._body_window()
        for chunk in chunks:
            recorder.add(chunk)
        if up is None:
            up = await self._acquire(key)
        try:
            window = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            await self._send_head(flow, up, window, end)
            if end is None:
                await self._read_request_body(recorder, up)
        except UpstreamError as e:
            self._discard(up)
            flow.request.body = recorder.body()
            if not self._may_retry(flow, up, e, recorder):
                raise
            return await self._send_recorded(flow, key, fresh=True)
        flow.request.body = _also_original(recorder.body(), flow.original_request)
        flow.timings.request_sent = time.time()
        self.ctx.publish(EventKind.REQUEST, flow)
        return up

    async def _body_window(self) -> tuple[list[bytes], EndOfMessage | None]:
        """The request body's first ``REQUEST_WINDOW`` bytes (all of it, if it is no
        longer), and its end if that came too; ClientGone on a framing error."""
        body_event = self.client.body_event
        chunks: list[bytes] = []
        size = 0
        while size < REQUEST_WINDOW:
            event = await body_event()
            if type(event) is not Data:
                return chunks, event  # type: ignore[return-value]
            chunks.append(event.data)
            size += len(event.data)
        return chunks, None

    async def _send_recorded(self, flow: Flow, key: PoolKey, *, fresh: bool) -> UpstreamConnection:
        """Send the (possibly edited) recorded request on a connection of its own."""
        up = await self._acquire(key, fresh=fresh)
        body = flow.request.body.data
        headers = Headers()
        headers.raw.extend(flow.request.headers)
        if b"transfer-encoding" not in headers and (body or b"content-length" in headers):
            headers.set(b"Content-Length", len(body))
        flow.request.headers = headers.raw
        try:
            await self._send_head(flow, up, body, EndOfMessage())
        except UpstreamError:
            self._discard(up)
            raise
        flow.timings.request_sent = time.time()
        return up

    async def _send_head(
        self,
        flow: Flow,
        up: UpstreamConnection,
        body: bytes = b"",
        end: EndOfMessage | None = None,
    ) -> None:
        """The request head, with ``body`` and ``end`` (if given) in the same write."""
        r = flow.request
        target = r.path
        if up.key.via is not None and up.key.scheme == "http":
            target = r.url  # an upstream proxy takes absolute-form
        method, path = r.method.encode("latin-1"), target.encode("latin-1")
        headers = copied_headers(r.headers)
        if body or end is None:  # a body: an HTTP/2 client's may have no framing field
            add_framing(headers, len(body) if end is not None else None)
        try:
            await up.send_head(method, path, headers, body=body, end=end)
        except (OSError, HTTPException) as e:
            raise UpstreamError(e, Phase.SEND, up.authority) from e

    async def _read_request_body(
        self, recorder: BodyRecorder, up: UpstreamConnection | None
    ) -> None:
        """Read the client's body to its end, recording it and streaming it upstream."""
        body_event = self.client.body_event
        while True:
            event = await body_event()
            data = type(event) is Data
            if data:
                recorder.add(event.data)
            if up is not None:
                try:
                    if data:
                        await up.send_data(event.data)
                    else:
                        await up.send_end(event.trailers)
                except (OSError, HTTPException) as e:
                    raise UpstreamError(e, Phase.SEND, up.authority) from e
            if not data:
                return

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
            and self.client.request_done
            and recorder.complete
        )

    # -- response side ------------------------------------------------------------------

    async def _first_response(self, flow: Flow, up: UpstreamConnection) -> Response:
        """The final response head; interim 103 Early Hints go on to the client."""
        client = self.client

        def interim(response: Response) -> None:
            if flow.timings.response_start is None:
                flow.timings.response_start = time.time()
            if response.status_code == EARLY_HINTS:
                # Only 103 reaches the client: we answer 100 ourselves, and 102 and
                # unknown 1xx mean nothing to an HTTP/1.1 client.
                client.send_interim(response)

        try:
            response = await up.receive_response(interim)
        except (OSError, TimeoutError, HTTPException) as e:
            raise UpstreamError(e, Phase(up.phase), flow_authority(flow)) from e
        if flow.timings.response_start is None:
            flow.timings.response_start = time.time()
        return response

    async def _respond(self, flow: Flow, up: UpstreamConnection, response: Response) -> None:
        flow.response = FlowResponse(
            status_code=response.status_code,
            reason=response.reason.decode("latin-1"),
            http_version=VERSIONS.get(response.http_version, "HTTP/1.1"),
            headers=list(response.headers.raw),
            timestamp=time.time(),
        )
        upstream_tls = up.tls_info()
        if upstream_tls is not None:
            if flow.tls is None:  # plain on the client side, TLS upstream (reverse mode)
                flow.tls = TLSInfo()
            merge_upstream_tls(flow.tls, upstream_tls)
        self.ctx.publish(EventKind.RESPONSE_HEADERS, flow)
        if response.status_code == 101:
            await self._switch_protocols(flow, up, response)
            return
        hooks = held_at_head(self.ctx.hooks, flow, "response")
        if hooks:
            await self._respond_held(flow, up, response, hooks)
            return
        if flow.response.headers != response.headers.raw:  # edited by a head-time hook
            headers = copied_headers(flow.response.headers)
            response = Response(response.status_code, headers, response.reason)
        await self._respond_streamed(flow, up, response)

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
        client = self.client
        recorder = recorder or BodyRecorder(self.ctx.config.body_limit)
        client.queue_head(response, up.keep_alive)
        for chunk in already or ():
            client.queue(Data(chunk))
        while True:
            try:
                event = up.body_event_nowait()
                if event is None:
                    await client.flush()
                    await up.read_more()
                    continue
            except (OSError, TimeoutError, HTTPException) as e:
                flow.response.body = recorder.body()  # type: ignore[union-attr]
                self._discard(up, abort=True)
                await client.flush()
                raise UpstreamError(e, Phase.BODY, flow_authority(flow)) from e
            client.queue(event)
            if type(event) is not Data:
                break
            recorder.add(event.data)
        self._release(up)
        flow.response.body = _also_original(recorder.body(), flow.original_response)  # type: ignore[union-attr]
        flow.response.trailers = list(event.trailers.raw)  # type: ignore[union-attr]
        await client.flush()
        self.ctx.finish(flow)

    async def _respond_held(
        self, flow: Flow, up: UpstreamConnection, response: Response, hooks: list[ExchangeHook]
    ) -> None:
        """Read the whole response, run the hooks, then send what they left.

        A body larger than the body limit cannot be held (it is not kept whole): it is
        relayed unheld, like any other response.
        """
        limit = self.ctx.config.body_limit
        recorder = BodyRecorder(limit)
        chunks: list[bytes] = []
        while True:
            try:
                event = await up.next_body_event()
            except (OSError, TimeoutError, HTTPException) as e:
                self._discard(up, abort=True)
                raise UpstreamError(e, Phase.BODY, flow_authority(flow)) from e
            if type(event) is not Data:
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
        flow.response.trailers = list(event.trailers.raw)
        for hook in hooks:
            await hook.response(flow)
        await self.client.respond_whole(flow.response, keep_alive)
        self.ctx.finish(flow)

    async def _answer_locally(self, flow: Flow) -> None:
        """A hook set ``flow.response``: the client gets it, the upstream is not contacted."""
        assert flow.response is not None
        flow.response.timestamp = flow.response.timestamp or time.time()
        self.ctx.publish(EventKind.RESPONSE_HEADERS, flow)
        await self.client.respond_whole(flow.response, True)
        self.ctx.finish(flow)

    async def _switch_protocols(
        self, flow: Flow, up: UpstreamConnection, response: Response
    ) -> None:
        """After 101: relay both ways (``websocket.relay_switched``), recording messages."""
        client = await self.client.switch_protocols(response)
        try:
            await relay_switched(self.ctx, flow, client, up.detach())
        finally:
            self._discard(up)  # frees its pool slot; the streams were handed over
        self.ctx.finish(flow)


def _also_original(body: FlowBody, original: FlowRequest | FlowResponse | None) -> FlowBody:
    """A streamed body is also the original's: head-time hooks never change bodies."""
    if original is not None:
        original.body = body
    return body


def copied_headers(pairs: list[tuple[bytes, bytes]]) -> Headers:
    """A Headers over a copy of ``pairs`` (already validated by the parser or the UI)."""
    headers = Headers()
    headers.raw.extend(pairs)
    return headers


def merge_upstream_tls(info: TLSInfo, upstream: TLSInfo) -> None:
    """Add the upstream side's TLS facts to a flow's (client-side) TLS record."""
    info.upstream_version = upstream.upstream_version
    info.upstream_cipher = upstream.upstream_cipher
    info.upstream_alpn = upstream.upstream_alpn
    info.upstream_cert_subject = upstream.upstream_cert_subject
    info.upstream_cert_issuer = upstream.upstream_cert_issuer


def flow_authority(flow: Flow) -> str:
    """``host:port`` of the flow's target (IPv6 in brackets), for error texts."""
    return host_port(flow.request.host, flow.request.port)
