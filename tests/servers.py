"""Real local servers for the tests: a threaded HTTP(S) echo server and raw-socket peers.

Every server binds to loopback on a free port, runs in daemon threads and is shut
down by the fixture that started it.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


class _EchoHandler(BaseHTTPRequestHandler):
    """Routes:

    ``/status/CODE``  answers CODE with a short body
    ``/echo``         answers JSON of method, path, headers and body (text)
    ``/bytes/N``      answers N bytes (``Content-Length``)
    ``/chunked/N``    answers N bytes in chunks of 1000 (``Transfer-Encoding: chunked``)
    ``/close/N``      answers N bytes with no length, then closes (read-until-close)
    anything else     ``200 OK`` with body ``hello``
    """

    protocol_version = "HTTP/1.1"
    server_version = "TestEcho/1.0"

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._body()
        self.server.received.append(  # type: ignore[attr-defined]
            Received(self.command, self.path, list(self.headers.items()), body)
        )
        parts = self.path.split("?")[0].strip("/").split("/")
        route, arg = parts[0], (parts[1] if len(parts) > 1 else "")
        if route == "status" and arg.isdigit():
            self._send(int(arg), f"status {arg}\n".encode())
        elif route == "echo":
            payload = {
                "method": self.command,
                "path": self.path,
                "headers": list(self.headers.items()),
                "body": body.decode("latin-1"),
            }
            self._send(200, json.dumps(payload).encode(), "application/json")
        elif route == "bytes" and arg.isdigit():
            self._send(200, b"x" * int(arg), "application/octet-stream")
        elif route == "chunked" and arg.isdigit():
            self._send_chunked(int(arg))
        elif route == "close" and arg.isdigit():
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(b"y" * int(arg))
            self.close_connection = True
        else:
            self._send(200, b"hello", "text/plain")

    def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(code)
        if code in (204, 304) or code < 200:
            self.end_headers()
            return
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_chunked(self, n: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        left = n
        while left > 0:
            size = min(1000, left)
            self.wfile.write(b"%x\r\n" % size + b"z" * size + b"\r\n")
            left -= size
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


class EchoServer:
    """A threaded HTTP/1.1 server on loopback (optionally TLS)."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
                pass  # hostile-input tests feed it garbage on purpose; no tracebacks in the log

        self.httpd = Server((host, 0), _EchoHandler)
        self.httpd.received = []  # type: ignore[attr-defined]
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.host = host
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def received(self) -> list[Received]:
        return self.httpd.received  # type: ignore[attr-defined]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class RawServer:
    """A TCP server that runs ``handler(conn)`` in a thread per accepted connection.

    Use it for peers that misbehave on purpose: the handler writes whatever bytes
    it likes and closes (or resets) when it wants.
    """

    handler: Callable[[socket.socket], None]
    host: str = "127.0.0.1"
    tls: ssl.SSLContext | None = None
    port: int = 0
    _sock: socket.socket = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self.handler(conn)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


def read_request_head(conn: socket.socket, limit: int = 65536) -> bytes:
    """Read from ``conn`` until the end of a request head (or EOF, or ``limit`` bytes)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _proc_net_address(address: tuple) -> str:  # type: ignore[type-arg]
    """``host:port`` as /proc/net/tcp* writes it (the address in host byte order words)."""
    packed = socket.inet_pton(socket.AF_INET6 if ":" in address[0] else socket.AF_INET, address[0])
    words = [packed[i : i + 4] for i in range(0, len(packed), 4)]
    if sys.byteorder == "little":
        words = [word[::-1] for word in words]
    return f"{b''.join(words).hex().upper()}:{address[1]:04X}"


def _unread_by_peer(conn: socket.socket) -> int | None:
    """Bytes ``conn`` sent that its loopback peer's application has not read yet, if shown."""
    theirs = f"{_proc_net_address(conn.getpeername())} {_proc_net_address(conn.getsockname())}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            return None
        for line in lines:
            fields = line.split()
            if f"{fields[1]} {fields[2]}" == theirs:
                return int(fields[4].split(":")[1], 16)  # tx_queue:rx_queue
    return None


def wait_until_read(conn: socket.socket, timeout: float = 10.0) -> None:
    """Return once the loopback peer has read everything sent on ``conn``.

    An ordering aid that waits for the fact instead of guessing a delay: a reset sent
    now cannot overtake the data. Where the kernel does not show receive queues
    (not Linux), it falls back to a short pause.
    """
    deadline = time.monotonic() + timeout
    while (unread := _unread_by_peer(conn)) and time.monotonic() < deadline:
        time.sleep(0.002)
    if unread is None:
        time.sleep(0.05)


def answers(data: bytes, *, then_reset: bool = False) -> Callable[[socket.socket], None]:
    """A raw peer's handler: read a request head, send ``data``, then close.

    ``then_reset``: close with a reset instead, once the proxy has read ``data``.
    """

    def handle(conn: socket.socket) -> None:
        read_request_head(conn)
        if data:
            conn.sendall(data)
        if then_reset:
            wait_until_read(conn)  # a reset must not overtake the bytes the proxy should see
            reset(conn)

    return handle


def hangs(conn: socket.socket) -> None:
    """A raw peer's handler: read a request head, then say nothing until the proxy gives up
    and closes (RawServer's 10 s socket timeout caps the wait)."""
    read_request_head(conn)
    conn.recv(1)


def reset(conn: socket.socket) -> None:
    """Close ``conn`` with a TCP RST instead of a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()


def has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False
