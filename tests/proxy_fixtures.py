"""An in-process proxy for the proxy tests: the real runtime on a background thread.

``LiveProxy`` collects every bus event, so tests can wait for finished flows and
look at what was recorded without polling the session file.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from inspector.bus import EventKind, FlowEvent
from inspector.config import Config
from inspector.flow import Flow
from inspector.runtime import ProxyThread

FINISHED = (EventKind.RESPONSE, EventKind.ERROR)


class LiveProxy:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.thread = ProxyThread(config)
        self.runtime = self.thread.start()
        self.events: list[FlowEvent] = []
        self._cond = threading.Condition()
        self.runtime.bus.subscribe(self._on_event)
        self.host, self.port = self.thread.address

    def _on_event(self, event: FlowEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.config.confdir / "ca.pem"

    def finished(self, count: int, timeout: float = 15.0) -> list[Flow]:
        """Wait until ``count`` flows have finished; returns them in finishing order."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                done = [e.flow for e in self.events if e.kind in FINISHED]
                if len(done) >= count:
                    return done
                left = deadline - time.monotonic()
                assert left > 0, f"only {len(done)} of {count} flows finished: {done!r}"
                self._cond.wait(left)

    def kinds(self, flow: Flow) -> list[EventKind]:
        with self._cond:
            return [e.kind for e in self.events if e.flow is flow]

    def connect(self, timeout: float = 10.0) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def stop(self) -> None:
        self.thread.stop()


@contextmanager
def live_proxy(tmp: Path, **options: object) -> Iterator[LiveProxy]:
    """The proxy with a fresh confdir and session under ``tmp``; ``options`` set Config fields."""
    config = replace(
        Config(listen_port=0, confdir=tmp / "conf", session=tmp / "session.db"), **options
    )
    proxy = LiveProxy(config)
    try:
        yield proxy
    finally:
        proxy.stop()


def read_responses(sock: socket.socket, count: int = 1) -> list[tuple[int, dict[str, str], bytes]]:
    """Read ``count`` Content-Length-framed responses (the last may be close-delimited)."""
    buf = b""
    out: list[tuple[int, dict[str, str], bytes]] = []

    def more() -> bool:
        nonlocal buf
        chunk = sock.recv(65536)
        buf += chunk
        return bool(chunk)

    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            if not more():
                raise ConnectionError(f"closed after {len(out)} responses: {buf[:200]!r}")
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])
        }
        if "content-length" in headers:
            length = int(headers["content-length"])
            while len(buf) < length and more():
                pass
            body, buf = buf[:length], buf[length:]
        else:
            while more():
                pass
            body, buf = buf, b""
        out.append((status, headers, body))
    return out


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    return read_responses(sock, 1)[0]


def read_head(sock: socket.socket) -> bytes:
    """Read a response head byte by byte (nothing after it), e.g. the answer to CONNECT."""
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError(f"closed in a response head: {data!r}")
        data += byte
    return data
