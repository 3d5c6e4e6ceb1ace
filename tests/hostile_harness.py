"""The bench the hostile-input corpus runs on: a recording origin, the proxy, and probes.

``RecordingOrigin`` is a raw TCP origin that counts every byte it receives and keeps
each request it can frame (head and body, exactly as they arrived), so a test can say
what the origin saw: nothing at all, or one request with these bytes. A request to
``/u/NAME`` is answered by the upstream case NAME's handler instead (a misbehaving
origin); a WebSocket handshake is answered 101 and the frames after it are kept raw.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.proxy_process import ProxyProcess

CLOSED = 0  # pseudo-status: the connection closed without a (complete) response head
UP = b"{UP}"  # in a case's bytes: the origin's host:port
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# (connection, request head already read) -> keep serving the connection afterwards?
Handler = Callable[[socket.socket, bytes], bool | None]


@dataclass
class Seen:
    """One request as the origin received it."""

    head: bytes
    body: bytes = b""

    @property
    def raw(self) -> bytes:
        return self.head + self.body

    def header_values(self, name: bytes) -> list[bytes]:
        found = []
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower():
                found.append(value.strip())
        return found


@dataclass
class RecordingOrigin:
    handlers: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)  # WebSocket bytes after a 101, raw
    received: int = 0  # every byte received on every connection
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self._sock.getsockname()[1]
        self.authority = f"127.0.0.1:{self.port}".encode()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self._sock.close()

    def _recv(self, conn: socket.socket, buf: bytearray) -> bool:
        chunk = conn.recv(65536)
        with self._lock:
            self.received += len(chunk)
        buf += chunk
        return bool(chunk)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(15)
        buf = bytearray()
        try:
            with conn:
                while self._one_request(conn, buf):
                    pass
        except OSError:
            pass

    def _one_request(self, conn: socket.socket, buf: bytearray) -> bool:
        while b"\r\n\r\n" not in buf:
            if not self._recv(conn, buf):
                return False
        end = buf.index(b"\r\n\r\n") + 4
        head = bytes(buf[:end])
        del buf[:end]
        parts = head.split(b" ", 2)
        if len(parts) < 3:  # not HTTP (say raw bytes relayed through a tunnel): keep them
            self._record(Seen(head))
            return False
        target = parts[1].decode("latin-1")
        name = target.split("/u/", 1)[1] if "/u/" in target else None
        if name is not None and name in self.handlers:
            self._record(Seen(head))
            # True: the handler left a clean keep-alive connection, serve the next request.
            return bool(self.handlers[name](conn, head))
        body = self._body(conn, buf, Seen(head))
        if body is None:
            return False
        self._record(Seen(head, body))
        if b"\r\nupgrade: websocket" in head.lower():
            self._websocket(conn, head, buf)
            return False
        conn.sendall(OK)
        return True

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)
            self._lock.notify_all()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until ``condition()`` holds (checked whenever the origin records something)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    def _body(self, conn: socket.socket, buf: bytearray, seen: Seen) -> bytes | None:
        """The body bytes as framed on the wire; None when they never complete."""
        lengths = seen.header_values(b"content-length")
        if b"chunked" in b",".join(seen.header_values(b"transfer-encoding")).lower():
            end = self._chunked_end(conn, buf)
            if end is None:
                return None
        else:
            end = int(lengths[0]) if lengths and lengths[0].isdigit() else 0
            while len(buf) < end:
                if not self._recv(conn, buf):
                    return None
        body = bytes(buf[:end])
        del buf[:end]
        return body

    def _chunked_end(self, conn: socket.socket, buf: bytearray) -> int | None:
        pos = 0
        while True:
            while b"\r\n" not in buf[pos:]:
                if not self._recv(conn, buf):
                    return None
            line_end = buf.index(b"\r\n", pos)
            size_text = bytes(buf[pos:line_end]).split(b";")[0].strip()
            if not re.fullmatch(rb"[0-9a-fA-F]{1,16}", size_text):
                return None
            size = int(size_text, 16)
            pos = line_end + 2
            if size == 0:  # then trailers, if any, up to an empty line
                while buf.find(b"\r\n\r\n", pos - 2) < 0:
                    if not self._recv(conn, buf):
                        return None
                return buf.find(b"\r\n\r\n", pos - 2) + 4
            while len(buf) < pos + size + 2:
                if not self._recv(conn, buf):
                    return None
            pos += size + 2

    def _websocket(self, conn: socket.socket, head: bytes, buf: bytearray) -> None:
        key = Seen(head).header_values(b"sec-websocket-key")[0]
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        target = head.split(b" ", 2)[1].decode("latin-1")
        name = target.rsplit("/ws/", 1)[1] if "/ws/" in target else None
        if name is not None and name in self.handlers:
            self.handlers[name](conn, head)
            return
        data = bytearray(buf)
        conn.settimeout(3)
        try:
            while self._recv(conn, data):
                pass
        except OSError:
            pass
        with self._lock:
            self.frames.append(bytes(data))
            self._lock.notify_all()


def fill(data: bytes, origin: RecordingOrigin) -> bytes:
    return data.replace(UP, origin.authority)


def status_and_close(sock: socket.socket, timeout: float = 8.0) -> tuple[int, bool, bytes]:
    """The first final response's status (CLOSED for none), whether the proxy then closed,
    and everything read. A success returns once its body is in; an error or no answer
    waits (up to ``timeout``) for the proxy to close, which it must."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    closed = False
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
        status = _final_status(data)
        if status is not None and status < 400 and _body_complete(data):
            return status, False, data
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
    status = _final_status(data)
    if not data.startswith(b"HTTP/") or status is None:
        return CLOSED, closed, data
    return status, closed, data


_FINAL_HEAD = re.compile(rb"HTTP/1\.[01] ([2-9]\d\d)[^\r\n]*\r\n(.*?)\r\n\r\n", re.S)


def _final_status(data: bytes) -> int | None:
    """The status of the first final (non-1xx) response whose head is complete."""
    head = _FINAL_HEAD.search(data)
    return int(head.group(1)) if head else None


def _body_complete(data: bytes) -> bool:
    head = _FINAL_HEAD.search(data)
    assert head is not None
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", b"\r\n" + head.group(2))
    return length is not None and len(data) - head.end() >= int(length.group(1))


def rss_kib(proxy: ProxyProcess) -> int:
    """The proxy process's resident memory, from /proc."""
    for line in Path(f"/proc/{proxy.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS for the proxy process")


def normal_request(proxy: ProxyProcess, origin: RecordingOrigin, path: str = "/barrier") -> None:
    """A plain GET through the proxy that must work: the proxy still serves."""
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
        s.sendall(
            b"GET http://%s%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
            % (origin.authority, path.encode(), origin.authority)
        )
        status, _, data = status_and_close(s)
    assert status == 200 and data.endswith(b"ok"), data[:300]
