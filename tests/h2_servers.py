"""HTTP/2 peers for the tests: hypercorn (a real server no one here wrote) and a scripted h2 server.

Both run on loopback in a thread with their own event loop.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _LoopThread:
    """An event loop in a daemon thread, running one server coroutine until ``close()``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[Any], timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


async def echo_app(scope: dict, receive: Callable, send: Callable) -> None:
    """ASGI app: answers with what it got (method, path, body size, http version) as text.

    ``/big/N`` streams N bytes; ``/trailers`` sends a trailer (when the client asks for them).
    """
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    path = scope["path"]
    if path.startswith("/big/"):
        size = int(path.rsplit("/", 1)[1])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        chunk = b"x" * 65536
        while size > 0:
            part = chunk[: min(size, len(chunk))]
            size -= len(part)
            await send({"type": "http.response.body", "body": part, "more_body": size > 0})
        return
    text = (
        f"{scope['method']} {path}?{scope['query_string'].decode()} "
        f"http/{scope['http_version']} body={len(body)}"
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"x-echo", b"1")],
        }
    )
    await send({"type": "http.response.body", "body": text})


class HypercornServer:
    """hypercorn serving ``app`` (``echo_app``): TLS with ALPN ``alpn`` (h2, http/1.1) when
    cert files are given."""

    def __init__(
        self,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        *,
        app: Callable[..., Awaitable[None]] | None = None,
        alpn: list[str] | None = None,
    ) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        self.port = _free_port()
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.loglevel = "WARNING"
        config.accesslog = None
        if certfile is not None:
            config.certfile, config.keyfile = str(certfile), str(keyfile)
        if alpn is not None:
            config.alpn_protocols = alpn
        self._shutdown: asyncio.Event | None = None
        self._thread = _LoopThread()

        async def main() -> None:
            self._shutdown = asyncio.Event()
            await serve(app or echo_app, config, shutdown_trigger=self._shutdown.wait)

        self._task = asyncio.run_coroutine_threadsafe(main(), self._thread.loop)
        _wait_listening(self.port)

    def close(self) -> None:
        if self._shutdown is not None:
            self._thread.loop.call_soon_threadsafe(self._shutdown.set)
        try:
            self._task.result(5)
        finally:
            self._thread.stop()


def _wait_listening(port: int, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.05)):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


Script = Callable[[h2.connection.H2Connection, h2.events.Event], Awaitable[None] | None]


class ScriptedH2Server:
    """A raw HTTP/2 server on ``h2`` whose behaviour per event is a test's ``script``.

    ``script(conn, event)`` runs for every event; it calls ``conn.send_headers``,
    ``conn.reset_stream``, ``conn.close_connection``... and may set ``self.raw`` bytes to
    write unchecked (malformed frames). ``received`` collects every event seen.
    """

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.received: list[h2.events.Event] = []
        self.raw: bytes = b""
        self._thread = _LoopThread()
        self._server = self._thread.run(asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls))
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        try:
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    self.received.append(event)
                    result = self.script(conn, event)
                    if asyncio.iscoroutine(result):
                        await result
                writer.write(conn.data_to_send() + self.raw)
                self.raw = b""
                await writer.drain()
        except (OSError, h2.exceptions.ProtocolError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        self._thread.run(self._shutdown())
        self._thread.stop()

    async def _shutdown(self) -> None:
        self._server.close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
