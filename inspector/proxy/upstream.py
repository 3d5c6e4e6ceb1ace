"""Connections to upstream servers for the proxy: open (TCP, TLS, via an upstream proxy),
pool, expire.

The per-connection I/O is ``protocol.aio.AsyncHTTPConnection``; this module adds the
pool (keys, limits, idle expiry), the proxy's error tagging (``UpstreamError`` with the
flow phase) and the TLS facts recorded on a flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import ssl
import sys
import time
from collections import deque
from dataclasses import dataclass, field

from inspector.config import Config, Endpoint
from inspector.flow import Phase, Timings, TLSInfo
from inspector.proxy.deadlines import ReadDeadlines
from inspector.proxy.errors import UpstreamError
from inspector.proxy.modes import Target
from inspector.proxy.upstream_h2 import H2Pool, UpstreamStream
from protocol.aio import AsyncHTTPConnection
from protocol.authority import host_port
from protocol.errors import HTTPException

IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})


def make_upstream_context(config: Config, alpn: list[str] | None = None) -> ssl.SSLContext:
    """The client-side TLS context for upstream servers: verified unless --insecure.

    Made once per pool (and ALPN offer) and shared by every upstream connection.
    """
    if config.insecure:
        # Nothing is verified, so no trust store: OpenSSL still builds the chain it then
        # ignores, and with the system store that search rescans /etc/ssl/certs per
        # handshake (~0.3 ms each).
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _log_keys_if_asked(ctx)
    else:
        ctx = ssl.create_default_context(**_system_trust())
    if config.upstream_ca is not None:
        ctx.load_verify_locations(cafile=str(config.upstream_ca))
    ctx.set_alpn_protocols(alpn or ["http/1.1"])
    return ctx


def _system_trust() -> dict[str, str]:
    """The system trust store as explicit locations for ``create_default_context``.

    The same certificates as its default, without the directory-scanning lookup that
    OpenSSL 3.0's default paths add: a handshake whose issuer is not a root (any chain
    with an intermediate) would scan the whole certificate directory each time.
    """
    paths = ssl.get_default_verify_paths()  # honours SSL_CERT_FILE / SSL_CERT_DIR
    # SSL_CERT_DIR may list several directories (a:b), which OpenSSL splits itself but
    # get_default_verify_paths drops as "not a directory".
    capath = os.environ.get(paths.openssl_capath_env) or paths.capath
    found = {"cafile": paths.cafile, "capath": capath}
    return {name: path for name, path in found.items() if path}


def _log_keys_if_asked(ctx: ssl.SSLContext) -> None:
    """SSLKEYLOGFILE support, as ``ssl.create_default_context`` gives verified contexts."""
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment:
        ctx.keylog_filename = keylog


@dataclass(frozen=True, slots=True)
class PoolKey:
    scheme: str
    host: str
    port: int
    sni: str | None
    via: Endpoint | None
    http2: bool = False  # the client spoke HTTP/2: offer it upstream too

    @property
    def authority(self) -> str:
        """``host:port`` of the origin (IPv6 in brackets), for error texts."""
        return host_port(self.host, self.port)


class UpstreamConnection(AsyncHTTPConnection):
    """A pooled ``protocol.aio`` connection: its pool key, use count and idle time."""

    __slots__ = ("_tls_info", "idle_since", "key", "uses")

    def __init__(self, key: PoolKey, config: Config, deadlines: ReadDeadlines) -> None:
        host, port = (key.via.host, key.via.port) if key.via else (key.host, key.port)
        super().__init__(
            host,
            port,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            watchdog=deadlines,
        )
        self.key = key
        self.uses = 0
        self.idle_since = 0.0
        self._tls_info: TLSInfo | None = None

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
        up = cls(key, config, deadlines)
        timings.connect_start = time.time()
        try:
            await up.connect()
            timings.connect_end = time.time()
            if key.via is not None and key.via.scheme == "https":
                await up.start_tls(tls, key.via.host)
            if key.via is not None and key.scheme != "http":
                await up.open_tunnel(key.host, key.port)
            if key.scheme == "https":
                await up.start_tls(tls, key.sni or key.host)
                timings.tls_end = time.time()
        except (OSError, TimeoutError, ssl.SSLError, HTTPException) as e:
            up.abort()
            raise UpstreamError(e, Phase(up.phase), key.authority) from e
        return up

    async def finish_dialled(self, key: PoolKey, tls: ssl.SSLContext, timings: Timings) -> None:
        """Make a connection dialled for a CONNECT (TCP to the origin, through any upstream
        proxy) into one for ``key``: TLS for https; UpstreamError on failure."""
        self.key = key
        if key.scheme != "https":
            return
        try:
            await self.start_tls(tls, key.sni or key.host)
            timings.tls_end = time.time()
        except (OSError, TimeoutError, ssl.SSLError, HTTPException) as e:
            self.abort()
            raise UpstreamError(e, Phase(self.phase), key.authority) from e

    @property
    def authority(self) -> str:
        """``host:port`` of the origin this connection serves (not of a proxy on the way)."""
        return self.key.authority

    def tls_info(self) -> TLSInfo | None:
        """What the upstream TLS session looks like (computed once per connection)."""
        if self._tls_info is None and self.key.scheme == "https":
            self._tls_info = _describe_tls(self)
        return self._tls_info


def _describe_tls(up: AsyncHTTPConnection) -> TLSInfo:
    info = TLSInfo(upstream_version=up.tls_version, upstream_cipher=up.cipher)
    info.upstream_alpn = up.alpn
    der = up.peer_certificate
    if der:
        info.upstream_cert_subject, info.upstream_cert_issuer = _subject_and_issuer(der)
    return info


@functools.lru_cache(maxsize=128)
def _subject_and_issuer(der: bytes) -> tuple[str | None, str | None]:
    """A certificate's subject and issuer as RFC 4514 text (None, None if unparsable).

    Cached: one certificate usually serves many hosts and connections (a CDN's, a
    wildcard), and parsing it is most of the cost of describing a TLS session.
    """
    from cryptography import x509  # only needed once an HTTPS upstream is met

    try:
        cert = x509.load_der_x509_certificate(der)
        return cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
    except ValueError:
        return None, None


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
        self._h2: H2Pool | None = None
        # TCP connections dialled to answer a CONNECT, by (host, port, upstream proxy):
        # the next connection opened to that origin starts from one (see keep_dialled).
        self._dialled: dict[tuple[str, int, Endpoint | None], UpstreamConnection] = {}
        self.opened = 0  # connections opened, for tests and benchmarks

    def key_for(self, target: Target, sni: str | None = None, *, http2: bool = False) -> PoolKey:
        return PoolKey(
            target.scheme,
            target.host,
            target.port,
            sni if target.scheme == "https" else None,
            target.via,
            http2 and self.config.http2,
        )

    async def speaks_http2(self, key: PoolKey) -> bool:
        """Whether the origin of an HTTP/2 ``key`` speaks it (its connection is opened and
        kept for the exchanges to come; an unreachable origin counts as not)."""
        if self._h2 is None:
            self._h2 = H2Pool(self)
        return await self._h2.probe(key)

    def tls_for_alpn(self, alpn: list[str]) -> ssl.SSLContext:
        """Another upstream TLS context like ``self.tls``, offering ``alpn``."""
        return make_upstream_context(self.config, alpn)

    async def open(
        self, key: PoolKey, timings: Timings, tls: ssl.SSLContext | None = None
    ) -> UpstreamConnection:
        """A new connection for ``key`` (TLS with ``tls``, default ``self.tls``), unpooled."""
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep())
        up = self._take_dialled(key)
        if up is not None:
            await up.finish_dialled(key, tls or self.tls, timings)
        else:
            up = await UpstreamConnection.open(
                key, tls or self.tls, self.config, timings, self.deadlines
            )
        self.opened += 1
        up.uses = 1
        return up

    async def acquire(
        self, key: PoolKey, timings: Timings, *, fresh: bool = False
    ) -> UpstreamConnection | UpstreamStream:
        """An idle connection for ``key`` (unless ``fresh``), or a new one; UpstreamError.

        For an HTTP/2 key: a stream on the origin's shared connection.
        """
        if key.http2:
            if self._h2 is None:
                self._h2 = H2Pool(self)
            return await self._h2.acquire(key, timings)  # type: ignore[return-value]
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
                    if not up.fresh:  # a fresh one (say the h2 probe's) carried nothing yet
                        await up.start_next_cycle()
                        up.uses += 1
                    return up
            return await self.open(key, timings)
        except BaseException:
            self._free_slot(slots)
            raise

    def keep_dialled(self, up: UpstreamConnection) -> None:
        """Keep ``up``, dialled (TCP) to answer a CONNECT only once its target was reachable,
        for the first connection the tunnel's exchanges open to that origin (TLS is done
        then, with the key's SNI and ALPN): the origin sees one connection, not two."""
        key = (up.key.host, up.key.port, up.key.via)
        old = self._dialled.pop(key, None)
        if old is not None:
            old.close_nowait()
        up.idle_since = time.monotonic()
        self._dialled[key] = up

    def _take_dialled(self, key: PoolKey) -> UpstreamConnection | None:
        if not self._dialled or (key.via is not None and key.scheme == "http"):
            return None  # an upstream proxy takes plain HTTP in absolute form, untunnelled
        up = self._dialled.pop((key.host, key.port, key.via), None)
        if up is None or up.idle_since < time.monotonic() - self.idle_timeout or not up.alive:
            if up is not None:
                up.close_nowait()
            return None
        return up

    def adopt(self, up: UpstreamConnection) -> UpstreamConnection:
        """Count a connection opened by ``open`` as in use: ``release``/``discard`` free it."""
        slots = self._hosts.get(up.key)
        if slots is None:
            slots = self._hosts[up.key] = _HostSlots()
        slots.active += 1
        return up

    def _take_idle(self, slots: _HostSlots) -> UpstreamConnection | None:
        deadline = time.monotonic() - self.idle_timeout
        while slots.idle:
            up = slots.idle.pop()  # most recently used: the warmest
            if up.idle_since >= deadline and (up.reusable or up.fresh):  # no EOF meanwhile
                return up
            up.close_nowait()
        return None

    def release(self, up: UpstreamConnection | UpstreamStream) -> None:
        """Give a connection back: kept idle if it can carry another request, else closed."""
        if type(up) is UpstreamStream:
            up.close_nowait()
            return
        slots = self._hosts.get(up.key)
        if slots is None:
            up.close_nowait()
            return
        self._free_slot(slots)
        if (up.reusable or up.fresh) and len(slots.idle) < self.max_idle:
            up.idle_since = time.monotonic()
            slots.idle.append(up)
        else:
            up.close_nowait()

    def discard(self, up: UpstreamConnection | UpstreamStream, *, abort: bool = False) -> None:
        if type(up) is UpstreamStream:
            up.abort()
            return
        slots = self._hosts.get(up.key)
        if slots is not None:
            self._free_slot(slots)
        up.abort() if abort else up.close_nowait()

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
                        up.close_nowait()
                slots.idle = keep
                if not keep and not slots.active and not slots.waiters:
                    del self._hosts[key]
            for origin, up in list(self._dialled.items()):
                if up.idle_since < deadline:
                    del self._dialled[origin]
                    up.close_nowait()

    async def close(self) -> None:
        await self.deadlines.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for slots in self._hosts.values():
            for up in slots.idle:
                up.close_nowait()
        self._hosts.clear()
        for up in self._dialled.values():
            up.close_nowait()
        self._dialled.clear()
        if self._h2 is not None:
            await self._h2.close()


async def open_raw(target: Target, pool: UpstreamPool, timings: Timings) -> UpstreamConnection:
    """A plain TCP stream to ``target`` (through the upstream proxy's CONNECT if any), unpooled."""
    key = PoolKey("tcp", target.host, target.port, None, target.via)
    return await UpstreamConnection.open(key, pool.tls, pool.config, timings, pool.deadlines)
