"""Hostile requests whose right outcome needs issue #12 items 1-2 in the proxy.

A request is held until its framing is validated (nothing of a malformed request
reaches the origin), the Host sent upstream is the absolute-form target's authority,
Content-Length lists are de-duplicated, and Connection-listed or Upgrade headers never
change the framing or reach the origin outside a WebSocket handshake.
"""

from __future__ import annotations

from tests.corpus import (
    CHUNKED,
    CLOSED,
    GET,
    POST,
    Case,
    all_of,
    body_is,
    cases,
    framed,
    header_once,
    host_is_target,
    lacks,
    refused,
    relayed,
    req,
)

BAD = refused(400)
BAD_OR_CLOSED = refused(400, CLOSED)

# Framing a proxy must hold back: the origin must see none of it (issue #12 item 1-2).
HELD = cases(
    "smuggling: chunk framing held back",
    ("chunk-negative", req(CHUNKED, b"-5\r\nhello\r\n0\r\n\r\n"), BAD_OR_CLOSED),
    ("chunk-0x-prefix", req(CHUNKED, b"0x5\r\nhello\r\n0\r\n\r\n"), BAD_OR_CLOSED),
    ("chunk-underscore", req(CHUNKED, b"0_5\r\nhello\r\n0\r\n\r\n"), BAD_OR_CLOSED),
    ("chunk-plus", req(CHUNKED, b"+5\r\nhello\r\n0\r\n\r\n"), BAD_OR_CLOSED),
    ("chunk-leading-space", req(CHUNKED, b" 5\r\nhello\r\n0\r\n\r\n"), BAD_OR_CLOSED),
    ("chunk-trailing-space", req(CHUNKED, b"5 \r\nhello\r\n0\r\n\r\n"), BAD_OR_CLOSED),
    ("chunk-empty-size", req(CHUNKED, b"\r\nhello\r\n0\r\n\r\n"), BAD_OR_CLOSED),
    ("chunk-not-hex", req(CHUNKED, b"zz\r\nhello\r\n0\r\n\r\n"), BAD_OR_CLOSED),
    ("chunk-size-junk", req(CHUNKED, b"5 x\r\nhello\r\n0\r\n\r\n"), BAD_OR_CLOSED),
    (
        "chunk-overflow-64bit",
        req(CHUNKED, b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
        refused(400, 413, CLOSED),
    ),
    (
        "chunk-huge-then-close",
        req(CHUNKED, b"fffffffff\r\nabc"),
        refused(400, 413, CLOSED),
        {"half_close": True},
    ),
    ("chunk-ext-bare-cr", req(CHUNKED, b"5;a\rb\r\nhello\r\n0\r\n\r\n"), BAD_OR_CLOSED),
    ("chunk-ext-control", req(CHUNKED, b"5;a=\x01\r\nhello\r\n0\r\n\r\n"), BAD_OR_CLOSED),
    ("chunk-more-data-than-size", req(CHUNKED, b"3\r\nhello\r\n0\r\n\r\n"), BAD_OR_CLOSED),
    ("chunk-missing-crlf", req(CHUNKED, b"5\r\nhelloXX0\r\n\r\n"), BAD_OR_CLOSED),
    ("chunk-bare-lf", req(CHUNKED, b"5\nhello\n0\n\n"), BAD_OR_CLOSED),
    ("chunk-bare-cr-after-data", req(CHUNKED, b"5\r\nhello\r0\r\n\r\n"), BAD_OR_CLOSED),
    ("chunk-last-with-data", req(CHUNKED, b"0\r\nhello\r\n\r\n"), BAD_OR_CLOSED),
    needs_12=True,
)

# What is relayed keeps its meaning (issue #12 item 2).
MEANING = cases(
    "relayed meaning",
    (
        "absolute-host-mismatch",
        req(b"GET http://{UP}/c HTTP/1.1\nHost: other.test\n"),
        relayed(host_is_target()),
    ),
    ("absolute-host-empty", req(b"GET http://{UP}/c HTTP/1.1\nHost:\n"), relayed(host_is_target())),
    (
        "cl-duplicate-identical",
        req(POST + b"Content-Length: 5\nContent-Length: 5\n", b"hello"),
        relayed(header_once(b"content-length", b"5"), body_is(b"hello")),
    ),
    (
        "cl-list-identical",
        req(POST + b"Content-Length: 5, 5\n", b"hello"),
        relayed(header_once(b"content-length", b"5"), body_is(b"hello")),
    ),
    (
        "upgrade-h2c-dropped",
        req(
            GET
            + b"Connection: Upgrade, HTTP2-Settings\nUpgrade: h2c\n"
            + b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\n"
        ),
        relayed(lacks(b"upgrade"), lacks(b"http2-settings")),
    ),
    (
        "connection-lists-content-length",
        req(POST + b"Content-Length: 5\nConnection: Content-Length\n", b"hello"),
        {**BAD, 200: relayed(body_is(b"hello"), framed())[200]},
    ),
    (
        "connection-lists-te",
        req(CHUNKED + b"Connection: Transfer-Encoding\n", b"5\r\nhello\r\n0\r\n\r\n"),
        {**BAD, 200: relayed(body_is(b"hello"), framed())[200]},
    ),
    (
        "host-list",
        req(b"GET http://{UP}/c HTTP/1.1\nHost: {UP}, other.test\n"),
        {**BAD, 200: relayed(host_is_target())[200]},
    ),
    (
        "host-with-space",
        req(b"GET http://{UP}/c HTTP/1.1\nHost: a b\n"),
        {**BAD, 200: relayed(host_is_target())[200]},
    ),
    (
        "host-with-userinfo",
        req(b"GET http://{UP}/c HTTP/1.1\nHost: u@{UP}\n"),
        {**BAD, 200: relayed(host_is_target())[200]},
    ),
    needs_12=True,
)


LIMITS_HELD = cases(
    "size limits",
    (
        "huge-chunk-extension",
        req(CHUNKED, b"5;" + b"e" * 100_000 + b"\r\nhello\r\n0\r\n\r\n"),
        refused(400, 413, 431, CLOSED),
    ),
    (
        "huge-trailers",
        req(
            CHUNKED,
            b"5\r\nhello\r\n0\r\n"
            + b"".join(b"T%d: %s\r\n" % (i, b"t" * 1000) for i in range(100))
            + b"\r\n",
        ),
        refused(400, 413, 431, CLOSED),
    ),
    needs_12=True,
)

HELD_BACK: list[Case] = all_of(HELD, MEANING, LIMITS_HELD)
