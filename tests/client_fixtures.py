"""Helpers for the client tests: raw peers that record what they got and answer canned bytes."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.servers import RawServer


def recv_until(
    conn: socket.socket, marker: bytes, data: bytes = b"", limit: int = 1 << 26
) -> bytes:
    """Read from ``conn`` until ``marker`` is in the data (or EOF, or ``limit`` bytes)."""
    while marker not in data and len(data) < limit:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def recv_exactly(conn: socket.socket, n: int, data: bytes = b"") -> bytes:
    while len(data) < n:
        chunk = conn.recv(min(65536, n - len(data)))
        if not chunk:
            break
        data += chunk
    return data


@dataclass
class RawRequest:
    head: bytes
    body_wire: bytes  # the body exactly as it came over the wire (chunk framing kept)

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode("latin-1")
        return None

    @property
    def request_line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]

    def decoded_body(self) -> bytes:
        """The body with chunk framing removed (the test's own tiny decoder)."""
        if not (self.header("Transfer-Encoding") or "").lower().endswith("chunked"):
            return self.body_wire
        out, rest = b"", self.body_wire
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                return out
            out, rest = out + rest[:size], rest[size + 2 :]


def read_raw_request(conn: socket.socket, buffered: bytes = b"") -> tuple[RawRequest | None, bytes]:
    """One request from ``conn`` (Content-Length or chunked body); also returns extra bytes."""
    data = recv_until(conn, b"\r\n\r\n", buffered)
    if b"\r\n\r\n" not in data:
        return None, b""
    head, _, rest = data.partition(b"\r\n\r\n")
    request = RawRequest(head, b"")
    if (request.header("Transfer-Encoding") or "").lower().endswith("chunked"):
        end, rest = _chunked_end(conn, rest)
        request.body_wire, rest = rest[:end], rest[end:]
    else:
        length = int(request.header("Content-Length") or 0)
        rest = recv_exactly(conn, length, rest)
        request.body_wire, rest = rest[:length], rest[length:]
    return request, rest


def _chunked_end(conn: socket.socket, data: bytes) -> tuple[int, bytes]:
    """Walk chunk sizes (reading more as needed) to the end of the trailers."""
    pos = 0
    while True:
        while b"\r\n" not in data[pos:]:
            more = conn.recv(65536)
            if not more:
                return len(data), data
            data += more
        line_end = data.index(b"\r\n", pos)
        size = int(data[pos:line_end].split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            while True:
                end = data.find(b"\r\n", pos)
                if end == pos:
                    return pos + 2, data
                if end < 0:
                    more = conn.recv(65536)
                    if not more:
                        return len(data), data
                    data += more
                    continue
                pos = end + 2  # a trailer line
        data = recv_exactly(conn, pos + size + 2, data)
        pos += size + 2


BIG = 64 * 1024 * 1024  # bytes a bounded-memory download test streams


def serve_big_body(conn: socket.socket, size: int = BIG, fill: bytes = b"b") -> None:
    """A raw-server handler: answer one request with ``size`` bytes, 64 KiB per send."""
    block = fill * 65536
    recv_until(conn, b"\r\n\r\n")
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    for _ in range(size // len(block)):
        conn.sendall(block)


def ok_response(body: bytes = b"ok", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


@dataclass
class RecordingServer:
    """A keep-alive raw server: records each request and answers it with ``respond(request)``."""

    start: Callable[..., RawServer]
    respond: Callable[[RawRequest], bytes] = lambda request: ok_response()
    requests: list[RawRequest] = field(default_factory=list)
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server = self.start(self._handle)
        self.port = self.server.port

    def _handle(self, conn: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        rest = b""
        while True:
            request, rest = read_raw_request(conn, rest)
            if request is None:
                return
            self.requests.append(request)
            answer = self.respond(request)
            if not answer:
                return
            conn.sendall(answer)


def connect_forwarder(seen: list[bytes]):
    """A tiny CONNECT proxy: answers 200 and pipes bytes both ways."""

    def handler(client):
        head = recv_until(client, b"\r\n\r\n")
        seen.append(head)
        target = head.split(b" ")[1].decode()
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(src, dst):
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        t = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
        t.start()
        pipe(client, upstream)
        t.join(5)
        upstream.close()

    return handler


class UnansweredListener:
    """A port whose accept queue is full: new connects hang (SYNs dropped) until timeout."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self._fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self._fillers.append(filler)

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self.sock.close()
