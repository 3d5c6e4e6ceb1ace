"""The accept loop and lifecycle of the proxy: start, serve, shut down with a grace period."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import sys
from typing import TYPE_CHECKING

from certs import CertStore
from inspector.bus import Bus, EventKind, FlowEvent
from inspector.config import Config
from inspector.flow import Flow
from inspector.proxy.deadlines import ReadDeadlines
from inspector.proxy.handler import READ_CHUNK, ClientHandler
from inspector.proxy.upstream import UpstreamPool

if TYPE_CHECKING:
    from inspector.intercept import Interceptor

BACKLOG = 1024
IDLE_TIMEOUT = 60.0  # a keep-alive client may stay silent this long between requests
HEAD_TIMEOUT = 30.0  # a request head must be complete this long after its first byte


class ProxyServer:
    """Accepts client connections and runs a ClientHandler for each one."""

    def __init__(
        self,
        config: Config,
        bus: Bus,
        certstore: CertStore,
        *,
        interceptor: Interceptor | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        head_timeout: float = HEAD_TIMEOUT,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.head_timeout = head_timeout
        self.closing = False  # shutting down: finish exchanges in flight, start no new ones
        self.config = config
        self.bus = bus
        self.certstore = certstore
        self.interceptor = interceptor
        self.mode_text = str(config.mode)
        self.auth_header: bytes | None = None
        if config.proxy_auth is not None:
            user, password = config.proxy_auth
            self.auth_header = f"{user}:{password}".encode()
        self.deadlines = ReadDeadlines()
        self.pool = UpstreamPool(config, deadlines=self.deadlines)
        self.listen_text = ""
        self.address: tuple[str, int] = ("", 0)
        self._server: asyncio.Server | None = None
        self._tasks: dict[asyncio.Task[None], ClientHandler] = {}
        # Flow ids: a random per-process prefix and a counter, 32 hex digits like a uuid4
        # hex, without a getrandom() call per exchange.
        self._id_prefix = os.urandom(8).hex()
        self._id_counter = itertools.count(1)

    def new_flow_id(self) -> str:
        return f"{self._id_prefix}{next(self._id_counter):016x}"

    def publish(self, kind: EventKind, flow: Flow) -> None:
        bus = self.bus
        if bus.wants(kind):  # dump and the store take only finished flows
            bus.publish(FlowEvent(kind, flow))

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
        host = self.address[0]
        self.listen_text = (
            f"[{host}]:{self.address[1]}" if ":" in host else f"{host}:{self.address[1]}"
        )
        return self.address

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handler = ClientHandler(self, reader, writer)
        self._tasks[task] = handler
        try:
            sock = writer.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await handler.run()
        except asyncio.CancelledError:
            pass  # shutdown cut this connection; the handler already reported its flow
        except Exception as e:  # a handler must never take the server down
            print(f"inspector: internal error: {e!r}", file=sys.stderr)
        finally:
            self._tasks.pop(task, None)

    @property
    def active_connections(self) -> int:
        return len(self._tasks)

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set."""
        await stop.wait()

    async def shutdown(self, grace: float = 2.0) -> None:
        """Stop accepting, let in-flight exchanges finish for ``grace`` seconds, then cut."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        for task, handler in list(self._tasks.items()):
            if handler.flow is None:
                task.cancel()  # idle between requests: nothing to finish
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1.0)
        await self.pool.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
