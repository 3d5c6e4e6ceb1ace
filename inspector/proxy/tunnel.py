"""CONNECT tunnels: dial the target, answer, then intercept what flows through or relay it.

``open_tunnel`` dials the target first (TCP, through the upstream proxy in upstream mode;
mitmproxy's "eager" strategy): an unreachable one is a 502 (504 when the connect timed
out) with the reason in one line, and a CONNECT flow with an exception of phase connect;
the client connection stays usable. Then it answers 200 and looks at the client's first
bytes (``sniff.py``): a TLS ClientHello gets our certificate for its SNI name and the HTTP
inside comes back to the connection layer, whose first upstream connection to the target
starts from the one dialled (``UpstreamPool.keep_dialled``); plain HTTP likewise; anything
else is relayed untouched over the dialled connection and recorded as one CONNECT flow.

``--ignore-hosts`` is matched against the CONNECT host before anything is answered, and
against the ClientHello's SNI once it is peeked (after the 200, which only says the target
is reachable): either way the tunnel is relayed raw over the dialled connection, so a
client connecting to an IP address with the name in SNI is left alone too.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from inspector.bus import EventKind
from inspector.flow import Flow, FlowBody, FlowRequest, FlowResponse, Phase, TLSInfo
from inspector.proxy import errors
from inspector.proxy.errors import ClientGone, UpstreamError
from inspector.proxy.modes import Target, Tunnel
from inspector.proxy.sniff import ClientHello, looks_like_http, peek_client_hello
from inspector.proxy.upstream import UpstreamConnection, open_raw
from protocol.aio import READ_CHUNK, stream_write
from protocol.connection import SWITCHED
from protocol.events import Request

if TYPE_CHECKING:
    from inspector.proxy.context import ProxyContext
    from inspector.proxy.http1 import HTTP1Connection

PEEK_TIMEOUT = 30.0  # a client must start talking inside a CONNECT tunnel within this
ESTABLISHED = b"Connection established"


async def open_tunnel(
    ctx: ProxyContext, client: HTTP1Connection, req: Request, host: str, port: int
) -> Tunnel | bool:
    """Answer CONNECT host:port: the tunnel whose HTTP the client connection serves next,
    or, when there is none (relayed raw, refused, failed), whether the client connection
    may carry another request."""
    flow = _connect_flow(ctx, client, req, host, port)  # published only if it is used
    ignore = ctx.config.ignore_hosts
    ignored = ignore is not None and ignore.search(host) is not None
    up = await _dial(ctx, flow, host, port)
    if isinstance(up, UpstreamError):
        if ignored or not ctx.tunnels_outlive_targets:
            return await _refuse(ctx, client, flow, up)
        failure, up = up, None  # each request inside says how it went (map-remote, ...)
    if ignored:
        return await _raw_tunnel(ctx, client, flow, up)  # type: ignore[arg-type]
    try:
        first, hello = await _answer_and_peek(client)
    except BaseException:  # the client went away (or the proxy stops): nothing to dial for
        _close(up)
        raise
    if not first:
        _close(up)
        return False  # no tunnel after all (the client left, or spoke too early)
    if hello is not None and not (ignore and hello.sni and ignore.search(hello.sni)):
        if up is not None:  # for the upstream side's first connection (or the h2 probe)
            ctx.pool.keep_dialled(up)
        try:
            await _start_client_tls(ctx, client, host, port, hello)
        except ClientGone as e:
            _report_client_tls_failure(ctx, client, req, host, port, hello, e.exc)
            return False
        return Tunnel("https", host, port)
    client.writer.transport.resume_reading()
    if hello is None and looks_like_http(first):
        if up is not None:
            ctx.pool.keep_dialled(up)
        return Tunnel("http", host, port)
    if up is None:  # not HTTP, so no rule can send it elsewhere: the dial's failure stands
        ctx.publish(EventKind.STARTED, flow)
        ctx.finish_error(flow, failure.exc, failure.phase)
        return False
    return await _raw_tunnel(ctx, client, flow, up, answered=True)


async def _dial(
    ctx: ProxyContext, flow: Flow, host: str, port: int
) -> UpstreamConnection | UpstreamError:
    """TCP to the CONNECT target (through the upstream proxy in upstream mode)."""
    mode = ctx.config.mode
    target = Target("tcp", host, port, "", mode.target if mode.kind == "upstream" else None)
    try:
        return await open_raw(target, ctx.pool, flow.timings)
    except UpstreamError as e:
        return e


async def _refuse(ctx: ProxyContext, client: HTTP1Connection, flow: Flow, e: UpstreamError) -> bool:
    """The target is unreachable: 502 (504 for a timeout) with the reason in one line."""
    ctx.publish(EventKind.STARTED, flow)
    ctx.finish_error(flow, e.exc, e.phase)
    body = errors.upstream_error_body(e).decode("utf-8", "replace")
    return await client.fail(errors.upstream_status(e.exc), body)


def _close(up: UpstreamConnection | None) -> None:
    if up is not None:
        up.close_nowait()


async def _answer_and_peek(client: HTTP1Connection) -> tuple[bytes, ClientHello | None]:
    """Answer 200, then the client's first bytes, left unread, and its ClientHello if they
    are TLS; ``b""`` when there is nothing to look at (the transport's reading resumed)."""
    transport = client.writer.transport
    transport.pause_reading()  # keep the first tunnel bytes in the kernel for peeking
    await client.send_established()
    if client.conn.our_state is not SWITCHED:
        return b"", None
    early, _ = client.conn.trailing_data
    if early:
        transport.resume_reading()
        return b"", None  # bytes sent before our 200 cannot be peeked: refuse the tunnel
    try:
        return await peek_client_hello(transport, PEEK_TIMEOUT)
    except TimeoutError:
        return b"", None


async def _start_client_tls(
    ctx: ProxyContext, client: HTTP1Connection, host: str, port: int, hello: ClientHello
) -> None:
    name = hello.sni or host
    store = ctx.certstore
    alpn = await _choose_protocol(ctx, host, port, hello)
    try:
        if name in store:
            tls_context = store.server_context(name, alpn=alpn)
        else:  # minting signs a new leaf: keep it off the event loop
            loop = asyncio.get_running_loop()
            mint = functools.partial(store.server_context, name, alpn=alpn)
            tls_context = await loop.run_in_executor(None, mint)
    except ValueError as e:  # certs.HostError: a name no certificate can carry
        raise ClientGone(e) from e
    try:
        async with asyncio.timeout(ctx.config.connect_timeout):
            await client.writer.start_tls(tls_context)
    except (OSError, TimeoutError) as e:
        raise ClientGone(e) from e
    sslobj = client.writer.get_extra_info("ssl_object")
    client.tls = TLSInfo(
        sni=hello.sni,
        client_alpn=",".join(hello.alpn) if hello.alpn else None,
        client_version=sslobj.version() if sslobj is not None else None,
    )


async def _choose_protocol(ctx: ProxyContext, host: str, port: int, hello: ClientHello) -> str:
    """The protocol to offer the client: what the upstream picks from the client's offer.

    HTTP/2 only end to end (mitmproxy's behaviour): when the client offers h2, the upstream
    is asked first; it decides, and the client is offered just that.
    """
    if not ctx.config.http2 or "h2" not in (hello.alpn or ()):
        return "http/1.1"
    mode = ctx.config.mode
    target = Target("https", host, port, "", mode.target if mode.kind == "upstream" else None)
    key = ctx.pool.key_for(target, hello.sni, http2=True)
    return "h2" if await ctx.pool.speaks_http2(key) else "http/1.1"


def _report_client_tls_failure(
    ctx: ProxyContext,
    client: HTTP1Connection,
    req: Request,
    host: str,
    port: int,
    hello: ClientHello,
    exc: BaseException,
) -> None:
    """A client that refuses our certificate is the commonest set-up problem: record it."""
    flow = _connect_flow(ctx, client, req, host, port)
    flow.tls = TLSInfo(sni=hello.sni, client_alpn=",".join(hello.alpn or ()) or None)
    ctx.publish(EventKind.STARTED, flow)
    trust = "does it trust the inspector CA? see `inspector ca`"
    if isinstance(exc, ssl.SSLError):
        exc = type(exc)(f"{exc} (the client refused the TLS handshake: {trust})")
    elif isinstance(exc, ConnectionError):  # clients that drop the connection, no alert
        exc = type(exc)(f"the client closed the connection during the TLS handshake: {trust}")
    ctx.finish_error(flow, exc, Phase.CLIENT)


def _connect_flow(
    ctx: ProxyContext, client: HTTP1Connection, req: Request, host: str, port: int
) -> Flow:
    """The flow that records a CONNECT itself (a raw tunnel, or a failed one)."""
    request = FlowRequest(
        method="CONNECT",
        scheme="https" if port == 443 else "http",
        host=host,
        port=port,
        path=f"{host}:{port}",
        headers=list(req.headers.raw),
        timestamp=time.time(),
    )
    return ctx.new_flow(request, client.client_addr, client.head_start)


async def _raw_tunnel(
    ctx: ProxyContext,
    client: HTTP1Connection,
    flow: Flow,
    up: UpstreamConnection,
    *,
    answered: bool = False,
) -> bool:
    """Relay a tunnel untouched over the dialled ``up`` (--ignore-hosts, or not HTTP
    inside); recorded as the CONNECT ``flow``. The client connection is done after it."""
    ctx.publish(EventKind.STARTED, flow)
    if not answered:
        await client.send_established()
    flow.response = FlowResponse(200, ESTABLISHED.decode(), timestamp=time.time())
    ctx.publish(EventKind.RESPONSE_HEADERS, flow)
    up_reader, up_writer, early = up.detach()
    rest, _ = client.conn.trailing_data
    try:
        if early:  # the far end spoke first, and it came with the upstream proxy's answer
            stream_write(client.writer, early, "the client")
        if rest:
            stream_write(up_writer, rest, "the upstream")
        sent, received = await relay(client.reader, client.writer, up_reader, up_writer)
    except OSError:
        sent = received = 0
    finally:
        up_writer.close()
    sent, received = sent + len(rest), received + len(early)  # what went before the relay
    flow.request.body = FlowBody(size=sent, truncated=sent > 0)
    flow.response.body = FlowBody(size=received, truncated=received > 0)
    ctx.finish(flow)
    return False


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    on_data: Callable[[bytes], None] | None,
) -> int:
    total = 0
    try:
        while data := await reader.read(READ_CHUNK):
            total += len(data)
            if on_data is not None:
                on_data(data)
            stream_write(writer, data)
            await writer.drain()
    finally:
        _pass_on_eof(writer)
    return total


def _pass_on_eof(writer: asyncio.StreamWriter) -> None:
    """Tell the other side that this one is done: a half-close where the transport has
    one; otherwise (TLS) a close, or its peer would wait for an end that never comes (a
    WebSocket client waits out its close timeout after the server hung up)."""
    if writer.is_closing():
        return
    try:
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
    except OSError:
        pass


async def relay(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
    *,
    a_to_b: Callable[[bytes], None] | None = None,
    b_to_a: Callable[[bytes], None] | None = None,
) -> tuple[int, int]:
    """Copy bytes both ways until both sides are done; returns (bytes a->b, bytes b->a)."""
    up = asyncio.ensure_future(_pump(a_reader, b_writer, a_to_b))
    down = asyncio.ensure_future(_pump(b_reader, a_writer, b_to_a))
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in (up, down):
            task.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
    sent = up.result() if up.done() and not up.cancelled() and up.exception() is None else 0
    back = down.result() if down.done() and not down.cancelled() and down.exception() is None else 0
    return sent, back
