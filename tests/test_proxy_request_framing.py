"""Request framing is checked before anything goes upstream (exchange.REQUEST_WINDOW).

A raw origin records every byte it receives, so "nothing reached the origin" is shown,
not assumed: a malformed chunked body inside the window gets a 400 (413 for a size past
any limit) and the origin sees no byte of it; a body that fits goes up with its head in
one write; a longer one streams, and a framing error after the window aborts it.
"""

from __future__ import annotations

import socket
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from inspector.proxy.exchange import REQUEST_WINDOW
from tests.origin_fixtures import RecordingOrigin
from tests.proxy_fixtures import LiveProxy, live_proxy, read_head, read_response


@pytest.fixture(scope="module")
def origin() -> Iterator[RecordingOrigin]:
    server = RecordingOrigin()
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveProxy]:
    with live_proxy(tmp_path_factory.mktemp("framing")) as p:
        yield p


def chunked_post(
    origin: RecordingOrigin, body: bytes, extra: bytes = b"", path: bytes = b"/upload"
) -> bytes:
    up = origin.authority.encode()
    return (
        b"POST http://" + up + path + b" HTTP/1.1\r\nHost: " + up + b"\r\n" + extra
        + b"Transfer-Encoding: chunked\r\n\r\n" + body
    )  # fmt: skip


def get_after(proxy: LiveProxy, origin: RecordingOrigin) -> None:
    """A normal request after the bad one: it is served, and it is what the origin saw."""
    with proxy.connect() as s:
        up = origin.authority.encode()
        s.sendall(b"GET http://" + up + b"/after HTTP/1.1\r\nHost: " + up + b"\r\n\r\n")
        assert read_response(s)[0] == 200


BAD_CHUNKS = {
    "negative size": b"-5\r\nhello\r\n0\r\n\r\n",
    "0x prefix": b"0x5\r\nhello\r\n0\r\n\r\n",
    "underscore": b"0_5\r\nhello\r\n0\r\n\r\n",
    "plus sign": b"+5\r\nhello\r\n0\r\n\r\n",
    "leading space": b" 5\r\nhello\r\n0\r\n\r\n",
    "empty size": b"\r\nhello\r\n0\r\n\r\n",
    "not hex": b"zz\r\nhello\r\n0\r\n\r\n",
    "size past 64 bits": b"10000000000000005\r\nhello\r\n0\r\n\r\n",
    "bare CR in extension": b"5;a\rb\r\nhello\r\n0\r\n\r\n",
    "more data than the size": b"5\r\nhelloEXTRA\r\n0\r\n\r\n",
    "bare LF line ends": b"5\nhello\n0\n\n",
}


@pytest.mark.parametrize("after_a_good_chunk", [False, True], ids=["first", "after-good"])
@pytest.mark.parametrize("name", list(BAD_CHUNKS))
def test_malformed_chunk_inside_the_window_never_reaches_the_origin(
    proxy: LiveProxy, origin: RecordingOrigin, name: str, after_a_good_chunk: bool
) -> None:
    before = len(origin.received())
    body = (b"3\r\nabc\r\n" if after_a_good_chunk else b"") + BAD_CHUNKS[name]
    with proxy.connect() as s:
        s.sendall(chunked_post(origin, body))
        status, headers, text = read_response(s)
    assert status == (413 if name == "size past 64 bits" else 400), text
    assert headers["connection"] == "close"
    get_after(proxy, origin)
    seen = origin.received()[before:]
    assert seen.startswith(b"GET /after "), seen[:200]  # the bad request sent no byte first
    assert b"POST" not in seen and b"upload" not in seen


def test_malformed_chunk_with_expect_continue_never_reaches_the_origin(
    proxy: LiveProxy, origin: RecordingOrigin
) -> None:
    """With Expect, the upstream is connected before the 100, but is sent nothing."""
    before = len(origin.received())
    with proxy.connect() as s:
        s.sendall(chunked_post(origin, b"", b"Expect: 100-continue\r\n"))
        assert read_head(s).startswith(b"HTTP/1.1 100 ")
        s.sendall(b"3\r\nabc\r\nzz\r\n")
        assert read_response(s)[0] == 400
    get_after(proxy, origin)
    assert origin.received()[before:].startswith(b"GET /after ")


def test_impossible_sizes_are_refused_at_once_and_nothing_is_reserved(
    proxy: LiveProxy, origin: RecordingOrigin
) -> None:
    before = len(origin.received())
    up = origin.authority.encode()
    huge_length = b"POST http://" + up + b"/x HTTP/1.1\r\nHost: x\r\nContent-Length: "
    with proxy.connect() as s:
        s.sendall(huge_length + b"9" * 25 + b"\r\n\r\n")  # the client waits: no more bytes
        assert read_response(s)[0] == 413
    tracemalloc.start()
    try:
        with proxy.connect() as s:
            # 2**64-1 announced (the most 64 bits hold), three bytes sent, then the client goes.
            s.sendall(chunked_post(origin, b"ffffffffffffffff\r\nabc"))
            s.shutdown(socket.SHUT_WR)
            assert read_response(s)[0] == 400
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # the announced size was never allocated
    get_after(proxy, origin)
    assert origin.received()[before:].startswith(b"GET /after ")


def test_head_and_a_body_that_fits_go_upstream_in_one_write(
    proxy: LiveProxy, origin: RecordingOrigin
) -> None:
    up = origin.authority.encode()
    body = b"b" * 5000
    head = b"POST http://" + up + b"/one HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
    with proxy.connect() as s:
        s.sendall(head[:40])  # the client trickles: the proxy still sends it whole
        time.sleep(0.05)
        s.sendall(head[40:] + body[:100])
        time.sleep(0.05)
        s.sendall(body[100:])
        assert read_response(s)[0] == 200
    with origin.lock:
        reads = [r for c in origin.connections for r in c if r.startswith(b"POST /one ")]
    assert len(reads) == 1 and reads[0].endswith(b"\r\n\r\n" + body)


def test_a_framing_error_after_the_window_aborts_the_upstream_request(proxy: LiveProxy) -> None:
    origin = RecordingOrigin()  # its own: the one connection the proxy opens to it
    size = REQUEST_WINDOW + 100_000
    try:
        with proxy.connect() as s:
            s.sendall(chunked_post(origin, b"%x\r\n" % size + b"z" * size + b"\r\n"))
            deadline = time.monotonic() + 10
            while len(origin.received()) <= size and time.monotonic() < deadline:
                time.sleep(0.01)  # past the window, the body streams to the origin
            assert len(origin.received()) > size
            s.sendall(b"zz\r\n")  # then a framing error
            status, _, text = read_response(s)
        assert status == 400, text
        origin.wait_ended(0)  # the upstream request was cut, not finished
        assert len(origin.connections) == 1
        assert not origin.received().endswith(b"0\r\n\r\n")
    finally:
        origin.close()


def test_a_long_body_streams_through_whole(tmp_path: Path, origin: RecordingOrigin) -> None:
    size = 3 * REQUEST_WINDOW
    with live_proxy(tmp_path) as proxy, proxy.connect() as s:
        s.sendall(chunked_post(origin, b"%x\r\n" % size + b"q" * size + b"\r\n0\r\n\r\n"))
        assert read_response(s)[0] == 200
        flow = proxy.finished(1)[0]
    assert flow.request.body.size == size
