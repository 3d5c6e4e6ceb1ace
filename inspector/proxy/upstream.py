"""Connections to upstream servers: open (TCP, TLS, via an upstream proxy), talk, pool, expire.

The proxy drives the sans-IO ``protocol.connection.Connection(CLIENT)`` directly over
asyncio streams instead of going through ``protocol.aio``: after a ``101`` or a
tunnel it needs the raw streams, it needs to know the exact phase an error
happened in, and the hot path stays one buffer deep.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from dataclasses import dataclass, field

from inspector.config import Config, Endpoint
from inspector.flow import Phase, Timings, TLSInfo
from inspector.proxy.deadlines import ReadDeadlines
from inspector.proxy.errors import UpstreamError
from inspector.proxy.modes import Target
from protocol.connection import CLIENT, DONE, Connection
from protocol.errors import BadStatusLine, LineTooLong, RemoteDisconnected, RemoteProtocolError
from protocol.events import NEED_DATA, Data, EndOfMessage, Request, Response
from protocol.headers import Headers

READ_CHUNK = 262144  # large reads: fewer wake-ups and copies per MiB streamed
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})


class TunnelRefused(RemoteProtocolError):
    """The upstream proxy answered our CONNECT with something other than 2xx."""


def make_upstream_context(config: Config) -> ssl.SSLContext:
    """The client-side TLS context for upstream servers: verified unless --insecure."""
    ctx = ssl.create_default_context()
    if config.upstream_ca is not None:
        ctx.load_verify_locations(cafile=str(config.upstream_ca))
    if config.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@dataclass(frozen=True, slots=True)
class PoolKey:
    scheme: str
    host: str
    port: int
    sni: str | None
    via: Endpoint | None


class UpstreamConnection:
    """One upstream connection: streams plus the sans-IO client state machine."""

    __slots__ = (
        "_tls_info",
        "conn",
        "deadlines",
        "idle_since",
        "key",
        "phase",
        "read_timeout",
        "reader",
        "received",
        "uses",
        "writer",
    )

    def __init__(
        self,
        key: PoolKey,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rt: float,
        deadlines: ReadDeadlines,
    ) -> None:
        self.deadlines = deadlines
        self.key = key
        self.reader = reader
        self.writer = writer
        self.conn = Connection(CLIENT)
        self.read_timeout = rt
        self.phase = Phase.SEND
        self.uses = 0
        self.received = 0  # bytes received in the current cycle
        self.idle_since = 0.0
        self._tls_info: TLSInfo | None = None

    # -- opening ---------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        key: PoolKey,
        tls: ssl.SSLContext,
        config: Config,
        timings: Timings,
        deadlines: ReadDeadlines,
    ) -> UpstreamConnection:
        """Connect (through the upstream proxy if any) and do TLS; UpstreamError on failure."""
        where = _where(key)
        host, port = (key.via.host, key.via.port) if key.via else (key.host, key.port)
        timings.connect_start = time.time()
        try:
            async with asyncio.timeout(config.connect_timeout):
                reader, writer = await asyncio.open_connection(host, port, limit=READ_CHUNK)
        except (OSError, TimeoutError) as e:
            raise UpstreamError(e, Phase.CONNECT, where) from e
        timings.connect_end = time.time()
        up = cls(key, reader, writer, config.read_timeout, deadlines)
        try:
            if key.via is not None and key.via.scheme == "https":
                await up._start_tls(tls, key.via.host, config.connect_timeout)
            if key.via is not None and key.scheme != "http":
                await up._open_tunnel(config.connect_timeout)
            if key.scheme == "https":
                await up._start_tls(tls, key.sni or key.host, config.connect_timeout)
                timings.tls_end = time.time()
        except UpstreamError:
            up.close()
            raise
        return up

    async def _start_tls(self, tls: ssl.SSLContext, hostname: str, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self.writer.start_tls(tls, server_hostname=hostname)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as e:
            raise UpstreamError(e, Phase.TLS, _where(self.key)) from e

    async def _open_tunnel(self, timeout: float) -> None:
        """CONNECT through the upstream proxy; the connection is then a raw tunnel."""
        authority = f"[{self.key.host}]" if ":" in self.key.host else self.key.host
        authority = f"{authority}:{self.key.port}".encode()
        head = Request(b"CONNECT", authority, Headers([(b"Host", authority)]))
        self.phase = Phase.CONNECT
        try:
            async with asyncio.timeout(timeout):
                self.writer.write(self.conn.send(head))
                response = await self._read_head()
            if not 200 <= response.status_code < 300:
                raise TunnelRefused(
                    f"upstream proxy {self.key.via.url if self.key.via else ''} answered "
                    f"CONNECT {authority.decode()} with {response.status_code} "
                    f"{response.reason.decode('latin-1')}",
                    status_hint=502,
                )
        except (OSError, TimeoutError, RemoteProtocolError, Exception) as e:
            if isinstance(e, UpstreamError):
                raise
            raise UpstreamError(e, Phase.CONNECT, _where(self.key)) from e
        leftover, _ = self.conn.trailing_data
        if leftover:
            self.reader.feed_data(leftover)  # never happens with a well-behaved proxy
        self.conn = Connection(CLIENT)

    # -- talking -----------------------------------------------------------------

    def start_cycle(self) -> None:
        self.uses += 1
        self.received = 0
        self.phase = Phase.SEND

    def send(self, event: Request | Data | EndOfMessage) -> None:
        """Serialise an event and queue it (call ``drain`` for backpressure)."""
        self.writer.write(self.conn.send(event))

    async def drain(self) -> None:
        await self.writer.drain()

    async def _read_head(self) -> Response:
        """The next response head (1xx included), parsing as bytes arrive."""
        conn = self.conn
        while True:
            ev = conn.next_event()
            if ev is NEED_DATA:
                await self.receive()
                continue
            if isinstance(ev, Response):
                return ev
            raise RemoteDisconnected("Remote end closed connection without response")

    async def receive_head(self) -> Response:
        """The next response head; exceptions carry the phase they happened in."""
        self.phase = Phase.STATUS_LINE
        try:
            return await self._read_head()
        except BadStatusLine as e:
            # RemoteDisconnected is a BadStatusLine too: it belongs to the headers
            # phase when part of the head had already arrived.
            if not isinstance(e, ConnectionResetError) or self.received == 0:
                self.phase = Phase.STATUS_LINE
            raise
        except LineTooLong as e:
            self.phase = Phase.STATUS_LINE if e.line_type == "status line" else Phase.HEADERS
            raise

    async def next_body_event(self) -> Data | EndOfMessage:
        conn = self.conn
        while True:
            ev = conn.next_event()
            if ev is NEED_DATA:
                await self.receive()
                continue
            return ev  # type: ignore[return-value]

    async def receive(self) -> None:
        """Read once (read timeout applies) and feed the parser; b"" feeds EOF."""
        self.deadlines.arm(self.reader, self.read_timeout)
        try:
            data = await self.reader.read(READ_CHUNK)
        finally:
            self.deadlines.disarm(self.reader)
        if data and self.phase is Phase.STATUS_LINE and b"\n" in data:
            self.phase = Phase.HEADERS
        self.received += len(data)
        self.conn.receive_data(data)

    # -- state -----------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        """Both sides finished this exchange and keep-alive holds."""
        conn = self.conn
        return (
            conn.keep_alive
            and conn.our_state is DONE
            and conn.their_state is DONE
            and not self.writer.is_closing()
        )

    def alive_for_reuse(self) -> bool:
        """Cheap check before handing out an idle connection: no EOF or unread bytes seen."""
        return not (self.writer.is_closing() or self.reader.at_eof())

    def tls_info(self) -> TLSInfo | None:
        """What the upstream TLS session looks like (computed once per connection)."""
        if self._tls_info is None and self.key.scheme == "https":
            self._tls_info = _describe_tls(self.writer.get_extra_info("ssl_object"))
        return self._tls_info

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


def _where(key: PoolKey) -> str:
    host = f"[{key.host}]" if ":" in key.host else key.host
    return f"{host}:{key.port}"


def _describe_tls(sslobj: ssl.SSLObject | None) -> TLSInfo:
    info = TLSInfo()
    if sslobj is None:
        return info
    info.upstream_version = sslobj.version()
    cipher = sslobj.cipher()
    info.upstream_cipher = cipher[0] if cipher else None
    info.upstream_alpn = sslobj.selected_alpn_protocol()
    der = sslobj.getpeercert(binary_form=True)
    if der:
        from cryptography import x509

        try:
            cert = x509.load_der_x509_certificate(der)
            info.upstream_cert_subject = cert.subject.rfc4514_string()
            info.upstream_cert_issuer = cert.issuer.rfc4514_string()
        except ValueError:
            pass
    return info


@dataclass(slots=True)
class _HostSlots:
    idle: deque[UpstreamConnection] = field(default_factory=deque)
    active: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)


class UpstreamPool:
    """Keep-alive connections per (scheme, host, port, SNI, upstream proxy).

    ``max_per_host`` bounds connections in use at once per key (others wait);
    at most ``max_idle_per_host`` idle connections are kept, each for
    ``idle_timeout`` seconds.
    """

    def __init__(
        self,
        config: Config,
        *,
        max_per_host: int = 256,
        max_idle_per_host: int = 256,
        idle_timeout: float = 30.0,
        deadlines: ReadDeadlines | None = None,
    ) -> None:
        self.config = config
        self.deadlines = deadlines or ReadDeadlines()
        self.tls = make_upstream_context(config)
        self.max_per_host = max_per_host
        self.max_idle = max_idle_per_host
        self.idle_timeout = idle_timeout
        self._hosts: dict[PoolKey, _HostSlots] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.opened = 0  # connections opened, for tests and benchmarks

    def key_for(self, target: Target, sni: str | None = None) -> PoolKey:
        return PoolKey(
            target.scheme,
            target.host,
            target.port,
            sni if target.scheme == "https" else None,
            target.via,
        )

    async def acquire(
        self, key: PoolKey, timings: Timings, *, fresh: bool = False
    ) -> UpstreamConnection:
        """An idle connection for ``key`` (unless ``fresh``), or a new one; UpstreamError."""
        slots = self._hosts.get(key)
        if slots is None:
            slots = self._hosts[key] = _HostSlots()
        while slots.active >= self.max_per_host:
            fut = asyncio.get_running_loop().create_future()
            slots.waiters.append(fut)
            await fut
        slots.active += 1
        try:
            if not fresh:
                up = self._take_idle(slots)
                if up is not None:
                    up.start_cycle()
                    return up
            if self._sweeper is None:
                self._sweeper = asyncio.ensure_future(self._sweep())
            up = await UpstreamConnection.open(key, self.tls, self.config, timings, self.deadlines)
            self.opened += 1
            up.start_cycle()
            return up
        except BaseException:
            self._free_slot(slots)
            raise

    def _take_idle(self, slots: _HostSlots) -> UpstreamConnection | None:
        deadline = time.monotonic() - self.idle_timeout
        while slots.idle:
            up = slots.idle.pop()  # most recently used: the warmest
            if up.idle_since >= deadline and up.alive_for_reuse():
                return up
            up.close()
        return None

    def release(self, up: UpstreamConnection) -> None:
        """Give a connection back: kept idle if it can carry another request, else closed."""
        slots = self._hosts.get(up.key)
        if slots is None:
            up.close()
            return
        self._free_slot(slots)
        if up.reusable and len(slots.idle) < self.max_idle:
            up.conn.start_next_cycle()
            up.idle_since = time.monotonic()
            slots.idle.append(up)
        else:
            up.close()

    def discard(self, up: UpstreamConnection, *, abort: bool = False) -> None:
        slots = self._hosts.get(up.key)
        if slots is not None:
            self._free_slot(slots)
        up.abort() if abort else up.close()

    def _free_slot(self, slots: _HostSlots) -> None:
        slots.active -= 1
        while slots.waiters:
            fut = slots.waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                break

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(max(self.idle_timeout / 2, 0.5))
            deadline = time.monotonic() - self.idle_timeout
            for key, slots in list(self._hosts.items()):
                keep = deque(u for u in slots.idle if u.idle_since >= deadline)
                for up in slots.idle:
                    if up.idle_since < deadline:
                        up.close()
                slots.idle = keep
                if not keep and not slots.active and not slots.waiters:
                    del self._hosts[key]

    async def close(self) -> None:
        await self.deadlines.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for slots in self._hosts.values():
            for up in slots.idle:
                up.close()
        self._hosts.clear()


async def open_raw(target: Target, pool: UpstreamPool, timings: Timings) -> UpstreamConnection:
    """A plain TCP stream to ``target`` (through the upstream proxy's CONNECT if any), unpooled."""
    key = PoolKey("tcp", target.host, target.port, None, target.via)
    return await UpstreamConnection.open(key, pool.tls, pool.config, timings, pool.deadlines)
