"""What is relayed keeps its meaning (RFC 9110 7.6, RFC 9112 3.2.2, 6-7): for each rule,
what the origin receives on the wire, recorded by a raw origin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.origin_fixtures import RecordingOrigin
from tests.proxy_fixtures import LiveProxy, live_proxy, read_response


@pytest.fixture(scope="module")
def origin() -> Iterator[RecordingOrigin]:
    server = RecordingOrigin()
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveProxy]:
    with live_proxy(tmp_path_factory.mktemp("fields")) as p:
        yield p


def send(proxy: LiveProxy, origin: RecordingOrigin, head: bytes, body: bytes = b"") -> int:
    """Send one request (``{UP}`` is the origin's host:port) and return the status."""
    data = head.replace(b"{UP}", origin.authority.encode()).replace(b"\n", b"\r\n")
    with proxy.connect() as s:
        s.sendall(data + b"\r\n" + body)
        return read_response(s)[0]


def received_fields(origin: RecordingOrigin, path: bytes) -> list[tuple[bytes, bytes]]:
    """The header fields of the request for ``path`` as the origin received them."""
    (head,) = [h for h in origin.heads() if h[0].split(b" ")[1] == path]
    return [tuple(line.split(b": ", 1)) for line in head[1:]]  # type: ignore[misc]


def names(fields: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [n.lower() for n, _ in fields]


def test_absolute_form_host_is_the_targets_authority(
    proxy: LiveProxy, origin: RecordingOrigin
) -> None:
    assert send(proxy, origin, b"GET http://{UP}/abs HTTP/1.1\nHost: other.example\n") == 200
    fields = received_fields(origin, b"/abs")
    assert [v for n, v in fields if n.lower() == b"host"] == [origin.authority.encode()]
    flow = next(f for f in proxy.finished(1) if f.request.path == "/abs")
    assert flow.request.header("Host") == origin.authority


@pytest.mark.parametrize(
    "lengths",
    [b"Content-Length: 5, 5\n", b"Content-Length: 5\nContent-Length: 5\n", b"Content-Length: 05\n"],
    ids=["list", "two-fields", "leading-zero"],
)
def test_identical_content_lengths_go_on_as_one(
    proxy: LiveProxy, origin: RecordingOrigin, lengths: bytes
) -> None:
    path = b"/cl-" + str(len(origin.heads())).encode()
    head = b"POST http://{UP}" + path + b" HTTP/1.1\nHost: {UP}\n" + lengths
    assert send(proxy, origin, head, b"hello") == 200
    fields = received_fields(origin, path)
    expected = [b"5"] if lengths != b"Content-Length: 05\n" else [b"05"]
    assert [v for n, v in fields if n.lower() == b"content-length"] == expected


def test_differing_content_lengths_are_a_400_and_reach_nothing(
    proxy: LiveProxy, origin: RecordingOrigin
) -> None:
    before = len(origin.received())
    head = b"POST http://{UP}/cl-differ HTTP/1.1\nHost: {UP}\nContent-Length: 5, 6\n"
    assert send(proxy, origin, head, b"hello") == 400
    assert len(origin.received()) == before


def test_a_content_length_list_in_a_response_reaches_the_client_as_one(tmp_path) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok"
    upstream = RecordingOrigin(answer)
    try:
        with live_proxy(tmp_path) as proxy, proxy.connect() as s:
            up = upstream.authority.encode()
            s.sendall(b"GET http://" + up + b"/ HTTP/1.1\r\nHost: " + up + b"\r\n\r\n")
            status, headers, body = read_response(s)
    finally:
        upstream.close()
    assert (status, headers["content-length"], body) == (200, "2", b"ok")


HOP_BY_HOP = {
    # name: (fields sent, names the origin must not receive, names it must receive)
    "connection-listed": (
        b"Connection: X-Private, close\nX-Private: secret\nX-Public: 1\n",
        [b"connection", b"x-private"],
        [b"x-public"],
    ),
    "keep-alive": (b"Connection: keep-alive\nKeep-Alive: timeout=5\n", [b"keep-alive"], []),
    "te": (b"TE: trailers, deflate\n", [b"te"], []),
    "proxy-connection": (
        b"Proxy-Connection: keep-alive, X-Via-Proxy\nX-Via-Proxy: 1\n",
        [b"proxy-connection", b"x-via-proxy"],
        [],
    ),
    "upgrade-h2c": (
        b"Connection: Upgrade, HTTP2-Settings\nUpgrade: h2c\nHTTP2-Settings: AAMAAABkAAQAAP__\n",
        [b"upgrade", b"http2-settings", b"connection"],
        [],
    ),
    "upgrade-without-connection": (b"Upgrade: websocket\n", [b"upgrade"], []),
    "proxy-authorization": (b"Proxy-Authorization: Basic dTpw\n", [b"proxy-authorization"], []),
}


@pytest.mark.parametrize("rule", list(HOP_BY_HOP))
def test_hop_by_hop_fields_stop_at_the_proxy(
    proxy: LiveProxy, origin: RecordingOrigin, rule: str
) -> None:
    sent, dropped, kept = HOP_BY_HOP[rule]
    path = b"/hop-" + rule.encode()
    head = b"GET http://{UP}" + path + b" HTTP/1.1\nHost: {UP}\nX-End: 1\n" + sent
    assert send(proxy, origin, head) == 200
    got = names(received_fields(origin, path))
    assert not set(dropped) & set(got), got
    assert set(kept) | {b"host", b"x-end"} <= set(got)


def test_trailer_and_its_trailers_go_on(proxy: LiveProxy, origin: RecordingOrigin) -> None:
    head = b"POST http://{UP}/trailer HTTP/1.1\nHost: {UP}\nTrailer: X-Sum\n"
    head += b"Transfer-Encoding: chunked\n"
    body = b"5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n"
    assert send(proxy, origin, head, body) == 200
    assert (b"Trailer", b"X-Sum") in received_fields(origin, b"/trailer")
    stream = origin.received()
    request = stream[stream.index(b"POST /trailer ") :]
    assert request.endswith(b"\r\n0\r\nX-Sum: 42\r\n\r\n")


def test_transfer_encoding_on_http10_is_a_400_and_reaches_nothing(
    proxy: LiveProxy, origin: RecordingOrigin
) -> None:
    before = len(origin.received())
    head = b"POST http://{UP}/te10 HTTP/1.0\nTransfer-Encoding: chunked\n"
    assert send(proxy, origin, head, b"5\r\nhello\r\n0\r\n\r\n") == 400
    assert len(origin.received()) == before
