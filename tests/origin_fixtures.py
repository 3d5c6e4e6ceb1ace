"""A raw origin for the proxy tests that records every byte it receives, per connection.

"Nothing reached the origin" and "the origin received exactly this" are then shown on
the wire, not inferred from a parsing server's view.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

from tests.servers import RawServer

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class RecordingOrigin:
    """An origin that records each recv() per connection and answers every complete
    request (Content-Length or chunked) with 200."""

    def __init__(self, answer: bytes = OK, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer  # what each complete request gets back
        self.lock = threading.Lock()
        self.connections: list[list[bytes]] = []  # the recv() results of each connection
        self.ended: list[bool] = []  # whether each connection has ended (EOF or reset)
        self.server = RawServer(self._serve, tls=tls)

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def heads(self) -> list[list[bytes]]:
        """The lines of each complete request head received (request line first)."""
        with self.lock:
            streams = [b"".join(c) for c in self.connections]
        out = []
        for data in streams:
            while (rest := _complete_request(data)) is not None:
                out.append(data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"))
                data = rest
        return out

    def received(self) -> bytes:
        with self.lock:
            return b"".join(b"".join(c) for c in self.connections)

    def wait_ended(self, index: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.ended[index]:
                    return
            time.sleep(0.01)
        raise AssertionError(f"origin connection {index} did not end")

    def _serve(self, conn: socket.socket) -> None:
        with self.lock:
            index = len(self.connections)
            self.connections.append([])
            self.ended.append(False)
        buf = b""
        try:
            while data := conn.recv(65536):
                with self.lock:
                    self.connections[index].append(data)
                buf += data
                while (rest := _complete_request(buf)) is not None:
                    conn.sendall(self.answer)
                    buf = rest
        except OSError:
            pass
        finally:
            with self.lock:
                self.ended[index] = True

    def close(self) -> None:
        self.server.close()


def _complete_request(buf: bytes) -> bytes | None:
    """What follows the first complete request in ``buf``, or None if it is not complete."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return None
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        end = _chunked_end(body)
        return None if end is None else body[end:]
    length = 0
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line.split(b":")[1].split(b",")[0])
    return body[length:] if len(body) >= length else None


def _chunked_end(body: bytes) -> int | None:
    """Where a chunked body (with any trailers) ends in ``body``; None if not yet (or never)."""
    pos = 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(body[pos:eol].split(b";")[0], 16)
        except ValueError:
            return None  # not chunked framing this origin can follow: it never answers
        if size == 0:
            end = body.find(b"\r\n\r\n", eol)
            return None if end < 0 else end + 4
        pos = eol + 2 + size + 2
        if pos > len(body):
            return None
