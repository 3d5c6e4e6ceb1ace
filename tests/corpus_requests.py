"""Hostile and broken client requests, by category, each with what it must lead to.

Sources: RFC 9112 sections 2-7 and RFC 9110 section 5 (the MUSTs), the HTTP Garden's
differential findings, and PortSwigger's request smuggling research (CL.TE, TE.CL,
TE.TE obfuscations, header and line-ending tricks).
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
    head_lacks,
    header_once,
    host_is_target,
    lacks,
    lacks_token,
    line_is,
    refused,
    relayed,
    req,
)

BAD = refused(400)
BAD_OR_CLOSED = refused(400, CLOSED)

SMUGGLING = cases(
    "smuggling: CL and TE",
    (
        "cl-and-te",
        req(POST + b"Content-Length: 4\nTransfer-Encoding: chunked\n", b"0\r\n\r\n"),
        BAD,
    ),
    ("te-and-cl", req(CHUNKED + b"Content-Length: 4\n", b"0\r\n\r\n"), BAD),
    ("te-and-cl-zero", req(CHUNKED + b"Content-Length: 0\n", b"5\r\nhello\r\n0\r\n\r\n"), BAD),
    (
        "cl-then-smuggled-get",
        req(
            POST + b"Content-Length: 4\nTransfer-Encoding: chunked\n",
            b"0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n",
        ),
        BAD,
    ),
    (
        "cl-duplicate-differing",
        req(POST + b"Content-Length: 5\nContent-Length: 6\n", b"hello!"),
        BAD,
    ),
    ("cl-list-differing", req(POST + b"Content-Length: 5, 6\n", b"hello!"), BAD),
    ("cl-plus-sign", req(POST + b"Content-Length: +5\n", b"hello"), BAD),
    ("cl-hex", req(POST + b"Content-Length: 0x5\n", b"hello"), BAD),
    ("cl-negative", req(POST + b"Content-Length: -1\n", b"hello"), BAD),
    ("cl-overflow", req(POST + b"Content-Length: 99999999999999999999999999\n"), refused(400, 413)),
    ("cl-space-inside", req(POST + b"Content-Length: 1 0\n", b"helloworld"), BAD),
    ("cl-empty", req(POST + b"Content-Length: \n", b"hello"), BAD),
    ("cl-decimal", req(POST + b"Content-Length: 5.0\n", b"hello"), BAD),
    ("cl-underscore", req(POST + b"Content-Length: 5_0\n", b"hello"), BAD),
    ("cl-nul", req(POST + b"Content-Length: 5\x00\n", b"hello"), BAD),
    ("cl-comma-only", req(POST + b"Content-Length: ,\n", b"hello"), BAD),
    ("cl-unicode-digit", req(POST + b"Content-Length: \xd9\xa5\n", b"hello"), BAD),
    (
        "cl-leading-zeros",
        req(POST + b"Content-Length: 005\n", b"hello"),
        relayed(body_is(b"hello"), framed()),
    ),
    (
        "cl-trailing-ows",
        req(POST + b"Content-Length: 5 \t\n", b"hello"),
        relayed(body_is(b"hello"), framed()),
    ),
    ("te-unknown", req(POST + b"Transfer-Encoding: xchunked\n", b"0\r\n\r\n"), refused(400, 501)),
    (
        "te-chunked-not-last",
        req(POST + b"Transfer-Encoding: chunked, gzip\n", b"0\r\n\r\n"),
        refused(400, 501),
    ),
    ("te-identity", req(POST + b"Transfer-Encoding: identity\n", b"hello"), refused(400, 501)),
    (
        "te-identity-then-chunked",
        req(POST + b"Transfer-Encoding: identity, chunked\n", b"0\r\n\r\n"),
        refused(400, 501),
    ),
    (
        "te-chunked-twice-list",
        req(POST + b"Transfer-Encoding: chunked, chunked\n", b"0\r\n\r\n"),
        refused(400, 501),
    ),
    (
        "te-chunked-twice-fields",
        req(CHUNKED + b"Transfer-Encoding: chunked\n", b"0\r\n\r\n"),
        refused(400, 501),
    ),
    (
        "te-two-fields",
        req(CHUNKED + b"Transfer-Encoding: identity\n", b"0\r\n\r\n"),
        refused(400, 501),
    ),
    ("te-space-before-colon", req(POST + b"Transfer-Encoding : chunked\n", b"0\r\n\r\n"), BAD),
    ("te-tab-before-colon", req(POST + b"Transfer-Encoding\t: chunked\n", b"0\r\n\r\n"), BAD),
    ("te-vertical-tab", req(POST + b"Transfer-Encoding: chunked\x0b\n", b"0\r\n\r\n"), BAD),
    ("te-form-feed", req(POST + b"Transfer-Encoding:\x0cchunked\n", b"0\r\n\r\n"), BAD),
    ("te-nul", req(POST + b"Transfer-Encoding: chun\x00ked\n", b"0\r\n\r\n"), BAD),
    ("te-obs-fold", req(POST + b"Transfer-Encoding:\n chunked\n", b"0\r\n\r\n"), BAD),
    (
        "te-fold-after-other",
        req(POST + b"X-A: x\n Transfer-Encoding: chunked\n", b"0\r\n\r\n"),
        BAD,
    ),
    ("te-quoted", req(POST + b'Transfer-Encoding: "chunked"\n', b"0\r\n\r\n"), refused(400, 501)),
    (
        "te-with-parameter",
        req(POST + b"Transfer-Encoding: chunked;q=1\n", b"0\r\n\r\n"),
        refused(400, 501),
    ),
    (
        "te-truncated-name",
        req(POST + b"Transfer-Encoding: chunk\n", b"0\r\n\r\n"),
        refused(400, 501),
    ),
    (
        "te-in-http10",
        req(b"POST http://{UP}/c HTTP/1.0\nHost: {UP}\nTransfer-Encoding: chunked\n", b"0\r\n\r\n"),
        BAD,
    ),
    (
        "te-and-cl-in-http10",
        req(
            b"POST http://{UP}/c HTTP/1.0\nHost: {UP}\nContent-Length: 5\n"
            b"Transfer-Encoding: chunked\n",
            b"0\r\n\r\n",
        ),
        BAD,
    ),
    (
        "te-uppercase",
        req(POST + b"Transfer-Encoding: CHUNKED\n", b"5\r\nhello\r\n0\r\n\r\n"),
        relayed(body_is(b"hello"), framed()),
    ),
    (
        "te-tab-ows",
        req(POST + b"Transfer-Encoding:\tchunked\t\n", b"5\r\nhello\r\n0\r\n\r\n"),
        relayed(body_is(b"hello"), framed()),
    ),
    (
        "te-underscore-name",
        req(POST + b"Transfer_Encoding: chunked\n"),
        {**BAD, 200: relayed(body_is(b""))[200]},
    ),
    (
        "trailer-smuggles-cl",
        req(CHUNKED, b"5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n"),
        {**BAD, 200: relayed(body_is(b"hello"), framed())[200]},
    ),
    (
        "expect-100-small",
        req(POST + b"Content-Length: 5\nExpect: 100-continue\n", b"hello"),
        relayed(body_is(b"hello")),
    ),
    (
        "trailers-kept",
        req(CHUNKED, b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
        relayed(body_is(b"hello")),
    ),
)

HOP_BY_HOP = cases(
    "hop-by-hop",
    (
        "connection-listed-header",
        req(GET + b"Connection: X-Secret\nX-Secret: 1\n"),
        relayed(lacks(b"x-secret")),
    ),
    (
        "proxy-connection",
        req(GET + b"Proxy-Connection: keep-alive\n"),
        relayed(lacks(b"proxy-connection")),
    ),
    (
        "keep-alive-header",
        req(GET + b"Connection: keep-alive\nKeep-Alive: timeout=5\n"),
        relayed(lacks(b"keep-alive")),
    ),
    (
        "proxy-authorization-unasked",
        req(GET + b"Proxy-Authorization: Basic dTpw\n"),
        relayed(lacks(b"proxy-authorization")),
    ),
    ("te-header-gzip", req(GET + b"TE: gzip\n"), relayed(lacks_token(b"te", b"gzip"))),
    (
        "connection-lists-host",
        req(GET + b"Connection: Host\n"),
        {**BAD, 200: relayed(host_is_target())[200]},
    ),
)

HEADERS = cases(
    "header syntax",
    ("space-before-colon", req(GET + b"X-A : b\n"), BAD),
    ("tab-before-colon", req(GET + b"X-A\t: b\n"), BAD),
    (
        "obs-fold",
        req(GET + b"X-Folded: a\n b\n"),
        {**BAD, 200: relayed(head_lacks(rb"\r\n[ \t]"))[200]},
    ),
    (
        "obs-fold-tab",
        req(GET + b"X-Folded: a\n\tb\n"),
        {**BAD, 200: relayed(head_lacks(rb"\r\n[ \t]"))[200]},
    ),
    ("leading-space-first-header", req(b"GET http://{UP}/c HTTP/1.1\n Host: {UP}\n"), BAD),
    ("bare-cr-in-value", req(GET + b"X-A: a\rb\n"), BAD),
    # refused at once: the client waits for an answer, it does not close its side
    ("bare-cr-line-end", GET.replace(b"\n", b"\r") + b"\r", BAD),
    ("bare-cr-line-end-partial", b"GET http://{UP}/a HTTP/1.1\rHost: {UP}\r", BAD),
    ("nul-in-value", req(GET + b"X-A: a\x00b\n"), BAD),
    ("nul-in-name", req(GET + b"X-\x00A: b\n"), BAD),
    ("control-in-name", req(GET + b"X-\x01A: b\n"), BAD),
    ("control-in-value", req(GET + b"X-A: a\x01b\n"), BAD),
    ("escape-in-value", req(GET + b"X-A: a\x1b[31mb\n"), BAD),
    ("del-in-value", req(GET + b"X-A: a\x7fb\n"), BAD),
    ("obs-text-in-value", req(GET + b"X-A: caf\xe9\n"), relayed(header_once(b"x-a", b"caf\xe9"))),
    ("non-token-name-at", req(GET + b"X@A: b\n"), BAD),
    ("non-token-name-space", req(GET + b"X A: b\n"), BAD),
    ("non-token-name-quote", req(GET + b'X"A: b\n'), BAD),
    ("non-token-name-slash", req(GET + b"X/A: b\n"), BAD),
    ("non-token-name-brackets", req(GET + b"(X): b\n"), BAD),
    ("8bit-name", req(GET + b"X-\xc3\xa9: b\n"), BAD),
    ("empty-name", req(GET + b": b\n"), BAD),
    ("colon-only", req(GET + b":\n"), BAD),
    ("no-colon", req(GET + b"NoColonHere\n"), BAD),
    ("two-host-headers", req(GET + b"Host: other.test\n"), BAD),
    ("host-with-control", req(b"GET http://{UP}/c HTTP/1.1\nHost: a\x01b\n"), BAD),
    (
        "bare-lf-everywhere",
        GET + b"\n",
        {**BAD_OR_CLOSED, 200: relayed(head_lacks(rb"[^\r]\n"))[200]},
    ),
    (
        "mixed-line-ends",
        b"GET http://{UP}/c HTTP/1.1\r\nHost: {UP}\nX: y\r\n\r\n",
        {**BAD_OR_CLOSED, 200: relayed(head_lacks(rb"[^\r]\n"))[200]},
    ),
)

REQUEST_LINE = cases(
    "request line",
    ("method-with-space", req(b"G ET http://{UP}/ HTTP/1.1\nHost: {UP}\n"), BAD),
    ("method-with-nul", req(b"GET\x00 http://{UP}/ HTTP/1.1\nHost: {UP}\n"), BAD),
    ("method-not-token", req(b"GE(T http://{UP}/ HTTP/1.1\nHost: {UP}\n"), BAD),
    ("method-empty", req(b" http://{UP}/ HTTP/1.1\nHost: {UP}\n"), BAD),
    ("method-8bit", req(b"G\xc9T http://{UP}/ HTTP/1.1\nHost: {UP}\n"), BAD),
    (
        "method-lowercase",
        req(b"get http://{UP}/c HTTP/1.1\nHost: {UP}\n"),
        {**refused(400, 501), 200: relayed(line_is(b"get /c HTTP/1.1"))[200]},
    ),
    (
        "method-extension",
        req(b"PURGE http://{UP}/c HTTP/1.1\nHost: {UP}\n"),
        relayed(line_is(b"PURGE /c HTTP/1.1")),
    ),
    (
        "method-overlong",
        req(b"A" * 2000 + b" http://{UP}/ HTTP/1.1\nHost: {UP}\n"),
        {**refused(400, 414, 501), 200: relayed()[200]},
    ),
    ("tab-separator", req(b"GET\thttp://{UP}/ HTTP/1.1\nHost: {UP}\n"), BAD),
    ("double-space", req(b"GET  http://{UP}/ HTTP/1.1\nHost: {UP}\n"), BAD),
    ("trailing-space-after-version", req(b"GET http://{UP}/ HTTP/1.1 \nHost: {UP}\n"), BAD),
    ("leading-space-before-method", req(b" GET http://{UP}/ HTTP/1.1\nHost: {UP}\n"), BAD),
    (
        "leading-empty-line",
        b"\r\n" + req(GET),
        {**BAD, 200: relayed(line_is(b"GET /c HTTP/1.1"))[200]},
    ),
    ("target-userinfo", req(b"GET http://user:pw@{UP}/ HTTP/1.1\nHost: {UP}\n"), BAD),
    ("target-at-confusion", req(b"GET http://{UP}@evil.test/ HTTP/1.1\nHost: {UP}\n"), BAD),
    ("target-backslash", req(b"GET http://{UP}\\@evil.test/ HTTP/1.1\nHost: {UP}\n"), BAD),
    ("target-space", req(b"GET http://{UP}/a b HTTP/1.1\nHost: {UP}\n"), BAD),
    ("target-non-ascii", req(b"GET http://{UP}/\xc3\xa9 HTTP/1.1\nHost: {UP}\n"), BAD),
    ("target-nul", req(b"GET http://{UP}/a\x00b HTTP/1.1\nHost: {UP}\n"), BAD),
    ("target-bare-cr", req(b"GET http://{UP}/a\rb HTTP/1.1\nHost: {UP}\n"), BAD),
    (
        "target-fragment",
        req(b"GET http://{UP}/c#frag HTTP/1.1\nHost: {UP}\n"),
        {**BAD, 200: relayed(head_lacks(rb"#"))[200]},
    ),
    (
        "target-percent-nul-kept",
        req(b"GET http://{UP}/a%00b HTTP/1.1\nHost: {UP}\n"),
        relayed(line_is(b"GET /a%00b HTTP/1.1")),
    ),
    ("origin-form-to-proxy", req(b"GET /c HTTP/1.1\nHost: {UP}\n"), BAD),
    ("asterisk-form", req(b"OPTIONS * HTTP/1.1\nHost: {UP}\n"), BAD),
    ("authority-form-with-get", req(b"GET {UP} HTTP/1.1\nHost: {UP}\n"), BAD),
    ("absolute-bad-port", req(b"GET http://127.0.0.1:99999/ HTTP/1.1\nHost: 127.0.0.1\n"), BAD),
    ("absolute-port-not-digits", req(b"GET http://127.0.0.1:8x/ HTTP/1.1\nHost: 127.0.0.1\n"), BAD),
    ("absolute-ftp-scheme", req(b"GET ftp://{UP}/ HTTP/1.1\nHost: {UP}\n"), refused(400, 501)),
    (
        "absolute-uppercase-scheme",
        req(b"GET HTTP://{UP}/c HTTP/1.1\nHost: {UP}\n"),
        {**BAD, 200: relayed(line_is(b"GET /c HTTP/1.1"))[200]},
    ),
    ("absolute-one-slash", req(b"GET http:/{UP}/c HTTP/1.1\nHost: {UP}\n"), BAD),
    ("absolute-no-slashes", req(b"GET http:{UP}/c HTTP/1.1\nHost: {UP}\n"), BAD),
    ("absolute-empty-host", req(b"GET http:///x HTTP/1.1\nHost: {UP}\n"), BAD),
    ("absolute-bad-ipv6", req(b"GET http://[::1/ HTTP/1.1\nHost: {UP}\n"), BAD),
    ("connect-no-port", req(b"CONNECT example.test HTTP/1.1\nHost: example.test\n"), BAD),
    ("connect-with-url", req(b"CONNECT http://{UP}/ HTTP/1.1\nHost: {UP}\n"), BAD),
    (
        "connect-port-zero",
        req(b"CONNECT 127.0.0.1:0 HTTP/1.1\nHost: 127.0.0.1:0\n"),
        refused(400, 502),
    ),
    ("connect-port-too-big", req(b"CONNECT 127.0.0.1:70000 HTTP/1.1\nHost: 127.0.0.1\n"), BAD),
    ("connect-userinfo", req(b"CONNECT user@127.0.0.1:443 HTTP/1.1\nHost: 127.0.0.1\n"), BAD),
    ("connect-with-path", req(b"CONNECT {UP}/x HTTP/1.1\nHost: {UP}\n"), BAD),
    ("connect-empty-host", req(b"CONNECT :443 HTTP/1.1\nHost: x\n"), BAD),
    ("version-http09", b"GET /\r\n", refused(400, 505, CLOSED)),
    ("version-missing", req(b"GET http://{UP}/\nHost: {UP}\n"), refused(400, 505, CLOSED)),
    # The HTTP/2 preface itself is HTTP/2 with prior knowledge; a PRI request is not.
    ("pri-not-http2-preface", b"PRI * HTTP/1.1\r\nHost: x\r\n\r\n", BAD_OR_CLOSED),
    ("version-http3", req(b"GET http://{UP}/ HTTP/3.0\nHost: {UP}\n"), refused(505, 400)),
    ("version-http2", req(b"GET http://{UP}/ HTTP/2\nHost: {UP}\n"), refused(505, 400)),
    ("version-bad-name", req(b"GET http://{UP}/ HTTX/1.1\nHost: {UP}\n"), BAD),
    ("version-lowercase", req(b"GET http://{UP}/ http/1.1\nHost: {UP}\n"), BAD),
    (
        "version-two-digit-minor",
        req(b"GET http://{UP}/ HTTP/1.10\nHost: {UP}\n"),
        refused(400, 505),
    ),
    ("version-leading-zero", req(b"GET http://{UP}/ HTTP/01.1\nHost: {UP}\n"), refused(400, 505)),
    ("version-no-minor", req(b"GET http://{UP}/ HTTP/1\nHost: {UP}\n"), refused(400, 505)),
    ("version-three-parts", req(b"GET http://{UP}/ HTTP/1.1.1\nHost: {UP}\n"), refused(400, 505)),
    (
        "version-1.2",
        req(b"GET http://{UP}/c HTTP/1.2\nHost: {UP}\n"),
        {**refused(400, 505), 200: relayed(line_is(b"GET /c HTTP/1.1"))[200]},
    ),
    (
        "tls-on-plain-port",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40,
        BAD_OR_CLOSED,
    ),
    ("garbage-bytes", bytes(range(256)), BAD_OR_CLOSED),
)

LIMITS = cases(
    "size limits",
    (
        "overlong-request-line",
        req(b"GET http://{UP}/" + b"a" * 70000 + b" HTTP/1.1\nHost: {UP}\n"),
        refused(414, 400, CLOSED),
    ),
    (
        "thousands-of-headers",
        req(GET + b"".join(b"X-H%d: v\n" % i for i in range(5000))),
        refused(431, 400, CLOSED),
    ),
    (
        "headers-just-over-count",
        req(GET + b"".join(b"X-H%d: v\n" % i for i in range(101))),
        refused(431, 400, CLOSED),
    ),
    (
        "headers-under-count",
        req(GET + b"".join(b"X-H%d: v\n" % i for i in range(90))),
        relayed(header_once(b"x-h89", b"v")),
    ),
    (
        "huge-header-value",
        req(GET + b"X-Big: " + b"v" * 100_000 + b"\n"),
        refused(431, 400, CLOSED),
    ),
    ("huge-header-name", req(GET + b"X" * 100_000 + b": v\n"), refused(431, 400, CLOSED)),
    (
        "big-header-block",
        req(GET + b"".join(b"X-M%d: %s\n" % (i, b"m" * 1000) for i in range(90))),
        refused(431, 400, CLOSED),
    ),
    # 414 when the line limit trips first, 431 when the head's: which depends on how the
    # bytes were split into reads (seen once in ten runs); nothing reaches the origin either way
    (
        "endless-head-no-newline",
        b"GET http://{UP}/" + b"a" * 200_000,
        refused(414, 431, 400, CLOSED),
    ),
    (
        "many-tiny-chunks",
        req(CHUNKED, b"1\r\na\r\n" * 20000 + b"0\r\n\r\n"),
        relayed(body_is(b"a" * 20000)),
    ),
)

REQUESTS: list[Case] = all_of(SMUGGLING, HOP_BY_HOP, HEADERS, REQUEST_LINE, LIMITS)
