"""Hostile and broken upstream responses, by category, each with what the client must get.

The origin answers ``GET /u/NAME`` with the case's handler. The client must get one of
the case's statuses (``CLOSED``: a response cut short or none; after the head has gone
out a proxy can only cut the body), a 502/504 page naming one of the case's exception
classes, never the bytes the case lists, and the proxy must serve the next request.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.hostile_harness import CLOSED, Handler
from tests.servers import reset, wait_until_read

DISCONNECTS = frozenset(
    {"RemoteDisconnected", "ConnectionResetError", "IncompleteRead", "BrokenPipeError"}
)
PROTOCOL = frozenset(
    {
        "RemoteProtocolError",
        "BadStatusLine",
        "LineTooLong",
        "HTTPException",
        "IncompleteRead",
        "UnknownTransferEncoding",
        "UnknownProtocol",
        "InvalidChunk",
    }
)
TIMEOUT = frozenset({"TimeoutError"})


@dataclass(frozen=True)
class Response:
    category: str
    name: str
    handler: Handler
    statuses: frozenset[int]
    errors: frozenset[str] = frozenset()  # exception classes a 502/504 page may name
    never: tuple[bytes, ...] = ()  # bytes the client must never receive
    method: bytes = b"GET"
    then_second: bool = False  # a second request on the same connection must get "ok"


def answer(data: bytes, hold: bool = False, close: bool = False) -> Handler:
    """Send ``data``; then keep serving the connection like a keep-alive origin (a proxy
    that reuses it after a broken response gets what follows), or close it."""

    def handle(conn: socket.socket, head: bytes) -> bool:
        conn.sendall(data)
        if hold:
            conn.recv(1)  # until the proxy gives up and closes
        return not close

    return handle


def closing(data: bytes) -> Handler:
    """Send ``data`` and close: the end of a body read until close."""
    return answer(data, close=True)


def reset_after(data: bytes) -> Handler:
    def handle(conn: socket.socket, head: bytes) -> None:
        if data:
            conn.sendall(data)
            wait_until_read(conn)  # the reset must not overtake the bytes
        reset(conn)

    return handle


def hang(conn: socket.socket, head: bytes) -> None:
    """Say nothing until the proxy gives up and closes."""
    conn.recv(1)


def flood_1xx(conn: socket.socket, head: bytes) -> None:
    for _ in range(2000):
        conn.sendall(b"HTTP/1.1 102 Processing\r\n\r\n")


def trickle(conn: socket.socket, head: bytes) -> bool:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow":
        conn.sendall(bytes([byte]))
        time.sleep(0.01)
    return True


def big_body(conn: socket.socket, head: bytes) -> bool:
    size = 64 * 1024 * 1024
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    block = b"b" * 65536
    for _ in range(size // len(block)):
        conn.sendall(block)
    return True


def make(category: str) -> Callable[..., Response]:
    def case(
        name: str, handler: Handler | bytes, statuses: set[int], errors=frozenset(), **kw
    ) -> Response:  # type: ignore[no-untyped-def]
        if isinstance(handler, bytes):
            handler = answer(handler, close=kw.pop("close", False))
        return Response(category, name, handler, frozenset(statuses), frozenset(errors), **kw)

    return case


def head(*lines: bytes, body: bytes = b"") -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


OK_HEAD = b"HTTP/1.1 200 OK"
CLOSE_AFTER = {200, CLOSED}  # the head went out; the body is cut

c = make("response framing")
FRAMING = [
    c(
        "cl-and-te",
        head(OK_HEAD, b"Content-Length: 3", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
        {502},
        PROTOCOL,
    ),
    c(
        "te-and-cl",
        head(OK_HEAD, b"Transfer-Encoding: chunked", b"Content-Length: 3", body=b"0\r\n\r\n"),
        {502},
        PROTOCOL,
    ),
    c(
        "cl-duplicate-differing",
        head(OK_HEAD, b"Content-Length: 2", b"Content-Length: 3", body=b"okk"),
        {502},
        PROTOCOL,
    ),
    c("cl-list-differing", head(OK_HEAD, b"Content-Length: 2, 3", body=b"okk"), {502}, PROTOCOL),
    c(
        "cl-list-identical",
        head(OK_HEAD, b"Content-Length: 2, 2", body=b"ok"),
        {200, 502},
        PROTOCOL,
    ),
    c("cl-negative", head(OK_HEAD, b"Content-Length: -1", body=b"ok"), {502}, PROTOCOL),
    c("cl-plus", head(OK_HEAD, b"Content-Length: +2", body=b"ok"), {502}, PROTOCOL),
    c("cl-hex", head(OK_HEAD, b"Content-Length: 0x2", body=b"ok"), {502}, PROTOCOL),
    c(
        "cl-overflow",
        head(OK_HEAD, b"Content-Length: 99999999999999999999999", body=b"ok"),
        {502},
        PROTOCOL,
    ),
    c("cl-empty", head(OK_HEAD, b"Content-Length: ", body=b"ok"), {502}, PROTOCOL),
    c(
        "te-not-chunked-reads-to-close",
        head(OK_HEAD, b"Transfer-Encoding: gzip", body=b"raw"),
        {200, 502},
        PROTOCOL,
        close=True,
    ),
    c(
        "te-unknown",
        head(OK_HEAD, b"Transfer-Encoding: xchunked", body=b"0\r\n\r\n"),
        {200, 502},
        PROTOCOL,
        close=True,
    ),
    c(
        "te-chunked-twice",
        head(OK_HEAD, b"Transfer-Encoding: chunked, chunked", body=b"0\r\n\r\n"),
        {502},
        PROTOCOL,
    ),
    c(
        "te-space-before-colon",
        head(OK_HEAD, b"Transfer-Encoding : chunked", body=b"2\r\nok\r\n0\r\n\r\n"),
        {502},
        PROTOCOL,
    ),
    c(
        "te-in-http10",
        head(b"HTTP/1.0 200 OK", b"Transfer-Encoding: chunked", body=b"2\r\nok\r\n0\r\n\r\n"),
        {200, 502},
        PROTOCOL,
        close=True,
    ),
    c(
        "chunk-not-hex",
        head(OK_HEAD, b"Transfer-Encoding: chunked", body=b"zz\r\nabc\r\n"),
        CLOSE_AFTER | {502},
        PROTOCOL,
    ),
    c(
        "chunk-negative",
        head(OK_HEAD, b"Transfer-Encoding: chunked", body=b"-2\r\nok\r\n0\r\n\r\n"),
        CLOSE_AFTER | {502},
        PROTOCOL,
    ),
    c(
        "chunk-0x-prefix",
        head(OK_HEAD, b"Transfer-Encoding: chunked", body=b"0x2\r\nok\r\n0\r\n\r\n"),
        CLOSE_AFTER | {502},
        PROTOCOL,
    ),
    c(
        "chunk-overflow",
        head(OK_HEAD, b"Transfer-Encoding: chunked", body=b"ffffffffffffffffff\r\nok\r\n"),
        CLOSE_AFTER | {502},
        PROTOCOL,
    ),
    c(
        "chunk-more-than-size",
        head(OK_HEAD, b"Transfer-Encoding: chunked", body=b"1\r\nok\r\n0\r\n\r\n"),
        CLOSE_AFTER | {502},
        PROTOCOL,
    ),
    c(
        "chunk-bare-lf",
        head(OK_HEAD, b"Transfer-Encoding: chunked", body=b"2\nok\n0\n\n"),
        CLOSE_AFTER | {502},
        PROTOCOL,
    ),
    c(
        "chunk-unterminated",
        head(OK_HEAD, b"Transfer-Encoding: chunked", body=b"2\r\nok\r\n"),
        CLOSE_AFTER | {502},
        DISCONNECTS | PROTOCOL,
        close=True,
    ),
    c(
        "body-shorter-than-cl",
        head(OK_HEAD, b"Content-Length: 100", body=b"only-this"),
        {CLOSED},
        DISCONNECTS,
        close=True,
    ),
    c("no-length-reads-to-close", head(OK_HEAD, body=b"until close"), {200}, close=True),
    c(
        "204-with-body",
        head(b"HTTP/1.1 204 No Content", b"Content-Length: 5", body=b"HELLO"),
        {204},
        never=(b"HELLO",),
    ),
    c(
        "304-with-body",
        head(b"HTTP/1.1 304 Not Modified", b"Content-Length: 5", body=b"HELLO"),
        {304},
        never=(b"HELLO",),
    ),
    c(
        "head-response-with-body",
        head(OK_HEAD, b"Content-Length: 5", body=b"HELLO"),
        {200},
        never=(b"HELLO",),
        method=b"HEAD",
    ),
    c(
        "smuggled-second-response",
        head(
            OK_HEAD,
            b"Content-Length: 2",
            body=b"ok" + head(OK_HEAD, b"Content-Length: 7", body=b"SMUGGLE"),
        ),
        {200},
        never=(b"SMUGGLE",),
        then_second=True,
    ),
    c(
        "extra-bytes-after-body",
        head(OK_HEAD, b"Content-Length: 2", body=b"okGARBAGE"),
        {200},
        never=(b"GARBAGE",),
        then_second=True,
    ),
]

c = make("informational responses")
INFORMATIONAL = [
    c(
        "100-then-200",
        b"HTTP/1.1 100 Continue\r\n\r\n" + head(OK_HEAD, b"Content-Length: 2", body=b"ok"),
        {200},
    ),
    c(
        "103-then-200",
        head(b"HTTP/1.1 103 Early Hints", b"Link: </s.css>; rel=preload")
        + head(OK_HEAD, b"Content-Length: 2", body=b"ok"),
        {200},
    ),
    c("1xx-flood", flood_1xx, {502}, PROTOCOL),
    c(
        "1xx-with-body",
        head(b"HTTP/1.1 100 Continue", b"Content-Length: 5", body=b"HELLO")
        + head(OK_HEAD, b"Content-Length: 2", body=b"ok"),
        {200, 502},
        PROTOCOL,
    ),
    c(
        "101-unasked",
        head(b"HTTP/1.1 101 Switching Protocols", b"Upgrade: websocket", b"Connection: Upgrade"),
        {502, CLOSED},
        PROTOCOL,
        close=True,
    ),
]

c = make("status line")
STATUS_LINE = [
    c("garbage-banner", b"SSH-2.0-OpenSSH_9.6\r\n\r\n", {502}, PROTOCOL),
    c("http09-body-only", b"hello world\n", {502}, PROTOCOL | DISCONNECTS, close=True),
    c("no-reason", head(b"HTTP/1.1 200", b"Content-Length: 2", body=b"ok"), {200, 502}, PROTOCOL),
    c(
        "two-digit-status",
        head(b"HTTP/1.1 20 OK", b"Content-Length: 2", body=b"ok"),
        {502},
        PROTOCOL,
    ),
    c(
        "four-digit-status",
        head(b"HTTP/1.1 2000 OK", b"Content-Length: 2", body=b"ok"),
        {502},
        PROTOCOL,
    ),
    c("status-000", head(b"HTTP/1.1 000 Zero", b"Content-Length: 2", body=b"ok"), {502}, PROTOCOL),
    c(
        "status-600",
        head(b"HTTP/1.1 600 Beyond", b"Content-Length: 2", body=b"ok"),
        {600, 502},
        PROTOCOL,
    ),
    c("version-http2", head(b"HTTP/2.0 200 OK", b"Content-Length: 2", body=b"ok"), {502}, PROTOCOL),
    c(
        "version-lowercase",
        head(b"http/1.1 200 OK", b"Content-Length: 2", body=b"ok"),
        {502},
        PROTOCOL,
    ),
    c(
        "leading-space",
        head(b" HTTP/1.1 200 OK", b"Content-Length: 2", body=b"ok"),
        {502},
        PROTOCOL,
    ),
    c("icy-protocol", head(b"ICY 200 OK", b"Content-Length: 2", body=b"ok"), {502}, PROTOCOL),
    c(
        "nul-in-reason",
        head(b"HTTP/1.1 200 O\x00K", b"Content-Length: 2", body=b"ok"),
        {502},
        PROTOCOL,
    ),
    c("bare-lf-lines", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", {200, 502}, PROTOCOL),
]

c = make("response headers")
HEADERS = [
    c("space-before-colon", head(OK_HEAD, b"Content-Length : 2", body=b"ok"), {502}, PROTOCOL),
    c(
        "obs-fold",
        head(OK_HEAD, b"X-Folded: a", b" b", b"Content-Length: 2", body=b"ok"),
        {502, 200},
        PROTOCOL,
        never=(b"\r\n b",),
    ),
    c(
        "nul-in-value",
        head(OK_HEAD, b"X-A: a\x00b", b"Content-Length: 2", body=b"ok"),
        {502},
        PROTOCOL,
    ),
    c(
        "bare-cr-in-value",
        head(OK_HEAD, b"X-A: a\rb", b"Content-Length: 2", body=b"ok"),
        {502},
        PROTOCOL,
    ),
    c("no-colon", head(OK_HEAD, b"NoColon", b"Content-Length: 2", body=b"ok"), {502}, PROTOCOL),
    c("obs-text-kept", head(OK_HEAD, b"X-A: caf\xe9", b"Content-Length: 2", body=b"ok"), {200}),
    c(
        "connection-listed-dropped",
        head(OK_HEAD, b"Connection: X-Secret", b"X-Secret: 1", b"Content-Length: 2", body=b"ok"),
        {200},
        never=(b"X-Secret",),
    ),
    c(
        "many-set-cookies",
        head(
            OK_HEAD,
            *(b"Set-Cookie: c%d=v" % i for i in range(90)),
            b"Content-Length: 2",
            body=b"ok",
        ),
        {200},
    ),
]

c = make("upstream limits")
LIMITS = [
    c("overlong-status-line", head(b"HTTP/1.1 200 " + b"O" * 70000), {502}, {"LineTooLong"}),
    c("too-many-headers", head(OK_HEAD, *(b"X-%d: v" % i for i in range(500))), {502}, PROTOCOL),
    c("huge-header-value", head(OK_HEAD, b"X-Big: " + b"v" * 100_000), {502}, PROTOCOL),
    c("big-body-streams", big_body, {200}),
]

c = make("silent and slow upstreams")
SILENT = [
    c("hang-before-status", hang, {504}, TIMEOUT),
    c("close-before-status", b"", {502}, DISCONNECTS, close=True),
    c("reset-before-status", reset_after(b""), {502}, DISCONNECTS),
    c("reset-mid-headers", reset_after(b"HTTP/1.1 200 OK\r\nContent-Le"), {502}, DISCONNECTS),
    c(
        "reset-mid-body",
        reset_after(head(OK_HEAD, b"Content-Length: 100", body=b"abc")),
        {CLOSED},
        DISCONNECTS,
    ),
    c(
        "stall-mid-body",
        answer(head(OK_HEAD, b"Content-Length: 100", body=b"abc"), hold=True, close=True),
        {CLOSED},
        TIMEOUT,
    ),
    c("trickle", trickle, {200}),
]

RESPONSES: list[Response] = [*FRAMING, *INFORMATIONAL, *STATUS_LINE, *HEADERS, *LIMITS, *SILENT]
