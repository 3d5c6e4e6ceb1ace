"""The accept loop and lifecycle of the proxy: start, serve, shut down with a grace period."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from certs import CertStore
from inspector.bus import Bus
from inspector.config import Config
from inspector.proxy.context import FlowIds, Lifecycle, ProxyContext
from inspector.proxy.deadlines import ReadDeadlines
from inspector.proxy.hooks import ExchangeHook, InterceptHook
from inspector.proxy.http1 import HTTP1Connection
from inspector.proxy.modes import ProxyAuth
from inspector.proxy.upstream import UpstreamPool
from protocol.aio import READ_CHUNK
from protocol.authority import host_port

if TYPE_CHECKING:
    from inspector.intercept import Interceptor

BACKLOG = 1024
IDLE_TIMEOUT = 60.0  # a keep-alive client may stay silent this long between requests
HEAD_TIMEOUT = 30.0  # a request head must be complete this long after its first byte


class ProxyServer:
    """Accepts client connections and serves each one with an ``HTTP1Connection``.

    ``hooks`` run at every exchange's two stops (``hooks.py``), before the interceptor's.
    """

    def __init__(
        self,
        config: Config,
        bus: Bus,
        certstore: CertStore,
        *,
        interceptor: Interceptor | None = None,
        hooks: Sequence[ExchangeHook] = (),
        idle_timeout: float = IDLE_TIMEOUT,
        head_timeout: float = HEAD_TIMEOUT,
    ) -> None:
        self.config = config
        self.bus = bus
        self.certstore = certstore
        self.interceptor = interceptor
        self.hooks = (*hooks, InterceptHook(interceptor)) if interceptor else tuple(hooks)
        self.idle_timeout = idle_timeout
        self.head_timeout = head_timeout
        self.lifecycle = Lifecycle()
        self.deadlines = ReadDeadlines()
        self.pool = UpstreamPool(config, deadlines=self.deadlines)
        self.address: tuple[str, int] = ("", 0)
        self.context: ProxyContext | None = None  # made once the listening port is known
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], HTTP1Connection] = {}

    @property
    def closing(self) -> bool:
        return self.lifecycle.closing

    async def start(self) -> tuple[str, int]:
        """Bind and listen; returns the real (host, port) (a free port for port 0)."""
        self._server = await asyncio.start_server(
            self._on_client,
            self.config.listen_host,
            self.config.listen_port,
            backlog=BACKLOG,
            reuse_address=True,
            limit=READ_CHUNK,
        )
        sockname = self._server.sockets[0].getsockname()
        self.address = (str(sockname[0]), int(sockname[1]))
        self.context = self._make_context()
        return self.address

    def _make_context(self) -> ProxyContext:
        config = self.config
        host, port = self.address
        return ProxyContext(
            config=config,
            pool=self.pool,
            bus=self.bus,
            certstore=self.certstore,
            deadlines=self.deadlines,
            hooks=self.hooks,
            tunnels_outlive_targets=any(not isinstance(h, InterceptHook) for h in self.hooks),
            auth=ProxyAuth(*config.proxy_auth) if config.proxy_auth is not None else None,
            new_flow_id=FlowIds(),
            lifecycle=self.lifecycle,
            listen_text=host_port(host, port),
            mode_text=str(config.mode),
            idle_timeout=self.idle_timeout,
            head_timeout=self.head_timeout,
        )

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        assert self.context is not None  # start() made it before accepting
        connection = HTTP1Connection(self.context, reader, writer)
        self._connections[task] = connection
        try:
            sock = writer.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await connection.run()
        except asyncio.CancelledError:
            pass  # shutdown cut this connection; it already reported its flow
        except Exception as e:  # a connection must never take the server down
            print(f"inspector: internal error: {e!r}", file=sys.stderr)
        finally:
            self._connections.pop(task, None)

    @property
    def active_connections(self) -> int:
        return len(self._connections)

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set."""
        await stop.wait()

    async def shutdown(self, grace: float = 2.0) -> None:
        """Stop accepting, let in-flight exchanges finish for ``grace`` seconds, then cut."""
        self.lifecycle.closing = True
        if self._server is not None:
            self._server.close()
        tasks = self._connections
        for task, connection in list(tasks.items()):
            if connection.exchange is None:
                task.cancel()  # idle between requests: nothing to finish
        if tasks:
            await asyncio.wait(set(tasks), timeout=grace)
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(set(tasks), timeout=1.0)
        await self.pool.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
