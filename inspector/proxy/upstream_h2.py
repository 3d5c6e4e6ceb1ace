"""Upstream HTTP/2: one shared connection per origin, one ``UpstreamStream`` per request.

An exchange whose client spoke HTTP/2 asks the pool for an HTTP/2 key; the first request
to that origin opens the connection (TLS offering ``h2`` then ``http/1.1``, or prior
knowledge on plain TCP, as the client did) and later ones open streams on it. Where the
server picks HTTP/1.1, the origin is remembered as HTTP/1.1-only and the request goes
the HTTP/1.1 way: the application sees what it would see without the proxy.

``UpstreamStream`` has the parts of ``UpstreamConnection`` the exchange layer uses, so
the exchange does not know which protocol carries its request.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from inspector.flow import Phase, Timings, TLSInfo
from inspector.proxy.errors import UpstreamError
from protocol.errors import HTTPException
from protocol.events import Data, EndOfMessage, Response
from protocol.headers import Headers
from protocol.http2 import AsyncHTTP2Connection, H2Stream
from protocol.http2_fields import to_http2

if TYPE_CHECKING:
    from collections.abc import Callable

    from inspector.proxy.upstream import PoolKey, UpstreamConnection, UpstreamPool


class UpstreamStream:
    """One request/response on a shared upstream HTTP/2 connection."""

    keep_alive = True
    reusable = False  # a stream carries one exchange; the connection is the pool's

    def __init__(self, key: PoolKey, conn: AsyncHTTP2Connection, tls: TLSInfo | None) -> None:
        self.key = key
        self.conn = conn
        self.uses = 1
        self.phase = Phase.SEND.value
        self._tls = tls
        self._stream: H2Stream | None = None
        self._head: tuple[bytes, bytes, Headers] | None = None

    @property
    def authority(self) -> str:
        return self.key.authority

    @property
    def received(self) -> int:
        return self._stream.received if self._stream is not None else 0

    def tls_info(self) -> TLSInfo | None:
        return self._tls

    # -- request --------------------------------------------------------------------------

    async def send_head(
        self,
        method: bytes,
        target: bytes,
        headers: Headers,
        *,
        body: bytes = b"",
        end: EndOfMessage | None = None,
    ) -> None:
        """Note the head; it goes out with the first body bytes or the end (one frame
        with END_STREAM for a request without a body). ``body`` and ``end``, when given,
        follow at once (the exchange hands over a request's first window this way)."""
        self._head = (method, target, headers)
        if body:
            await self.send_data(body)
        if end is not None:
            await self.send_end(end.trailers or None)

    async def _open(self, end_stream: bool) -> H2Stream:
        if self._stream is None:
            assert self._head is not None, "send_head first"
            method, target, headers = self._head
            authority = headers.get(b"host") or self.key.authority.encode()
            self._stream = await self.conn.open_stream(
                method,
                self.key.scheme.encode(),
                authority,
                target,
                to_http2(headers),
                end_stream=end_stream,
            )
        return self._stream

    async def send_data(self, data: bytes) -> None:
        if data:
            stream = await self._open(end_stream=False)
            await stream.send_data(data)

    async def send_end(self, trailers: Headers | None = None) -> None:
        if self._stream is None and not trailers:
            await self._open(end_stream=True)
        else:
            stream = await self._open(end_stream=False)
            await stream.send_end(to_http2(trailers) if trailers else None)
        self.phase = Phase.HEADERS.value

    # -- response -------------------------------------------------------------------------

    async def receive_response(
        self, on_informational: Callable[[Response], object] | None = None
    ) -> Response:
        stream = await self._open(end_stream=True)
        self.phase = Phase.HEADERS.value
        response = await stream.receive_response(on_informational)
        self.phase = Phase.BODY.value
        return response

    def body_event_nowait(self) -> Data | EndOfMessage | None:
        assert self._stream is not None
        return self._stream.body_event_nowait()

    async def read_more(self) -> None:
        assert self._stream is not None
        await self._stream.wait_readable()

    async def next_body_event(self) -> Data | EndOfMessage:
        while True:
            event = self.body_event_nowait()
            if event is not None:
                return event
            await self.read_more()

    def detach(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
        raise UpstreamError(
            ConnectionError("an HTTP/2 stream cannot switch protocols"), Phase.BODY, self.authority
        )

    # -- ending -----------------------------------------------------------------------------

    def abort(self) -> None:
        if self._stream is not None:
            self._stream.reset()

    def close_nowait(self) -> None:
        if self._stream is not None and not self._stream.ended:
            self._stream.reset()


class H2Pool:
    """The shared HTTP/2 connections of an ``UpstreamPool``, one per origin key."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.tls = pool.tls_for_alpn(["h2", "http/1.1"])
        # Per origin, its connections: usually one; more only while one is full of streams.
        self._conns: dict[PoolKey, list[tuple[AsyncHTTP2Connection, TLSInfo | None]]] = {}
        self._opening: dict[PoolKey, asyncio.Future[None]] = {}
        self.http1_only: set[PoolKey] = set()

    async def acquire(self, key: PoolKey, timings: Timings) -> UpstreamStream | UpstreamConnection:
        """A stream on the origin's connection (opened if need be), or an HTTP/1.1
        connection where the origin does not speak HTTP/2."""
        while True:
            for conn, tls in self._conns.get(key, ()):
                if conn.usable:
                    stream = UpstreamStream(key, conn, tls)
                    # A stream on a connection already in use counts as a reuse: if the
                    # origin goes away before answering it (GOAWAY past it, a close), an
                    # idempotent request is retried once, as on a reused HTTP/1.1 connection.
                    stream.uses = 2
                    return stream
            if key in self.http1_only:
                return await self.pool.acquire(replace(key, http2=False), timings)
            opening = self._opening.get(key)
            if opening is not None:
                await asyncio.shield(opening)
                continue
            up = await self._open(key, timings)
            if up is not None:
                return up

    async def probe(self, key: PoolKey) -> bool:
        """Open the origin's connection ahead of its first request; True if it is HTTP/2."""
        try:
            up = await self.acquire(key, Timings())
        except UpstreamError:
            return False  # the exchange will fail and say why
        if type(up) is UpstreamStream:
            return True
        self.pool.release(up)  # an HTTP/1.1 connection: idle for the first exchange
        return False

    async def _open(self, key: PoolKey, timings: Timings) -> UpstreamConnection | None:
        """Open the origin's connection; an HTTP/1.1 one is returned for this exchange."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._opening[key] = done
        try:
            await self._drop_spent(key)
            up = await self.pool.open(replace(key, http2=False), timings, self.tls)
            if key.scheme == "https" and up.alpn != "h2":
                self.http1_only.add(key)
                return self.pool.adopt(up)
            tls = up.tls_info()
            reader, writer, _ = up.detach()
            config = self.pool.config
            conn = AsyncHTTP2Connection(
                key.host,
                key.port,
                connect_timeout=config.connect_timeout,
                read_timeout=config.read_timeout,
            )
            await conn.start(reader, writer)
            if key.scheme == "http" and not await _speaks_http2(conn):
                self.http1_only.add(key)  # prior knowledge refused: HTTP/1.1 from now on
                return None
            self._conns.setdefault(key, []).append((conn, tls))
            return None
        finally:
            del self._opening[key]
            done.set_result(None)

    async def _drop_spent(self, key: PoolKey) -> None:
        """Close the origin's connections that ended (GOAWAY, closed) and carry no stream."""
        found = self._conns.get(key, [])
        spent = [c for c in found if not c[0].alive and c[0].idle]
        self._conns[key] = [c for c in found if c not in spent]
        for conn, _ in spent:
            await conn.close()

    async def close(self) -> None:
        conns = [conn for found in self._conns.values() for conn, _ in found]
        self._conns.clear()
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


async def _speaks_http2(conn: AsyncHTTP2Connection) -> bool:
    """Whether a prior-knowledge connection got the server's SETTINGS (closed if not)."""
    try:
        await conn.settled()
        return True
    except (OSError, HTTPException):
        await conn.close()
        return False
