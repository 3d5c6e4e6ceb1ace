"""Plain HTTP through the explicit proxy with real clients: curl, urllib, requests, httpx."""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.request
from pathlib import Path

import httpx
import requests

from inspector.bus import EventKind
from inspector.store import Store
from tests.conftest import needs_ipv6, run_curl
from tests.proxy_fixtures import LiveProxy, live_proxy, read_response, read_responses
from tests.servers import EchoServer


def curl(proxy: LiveProxy, *args: str) -> subprocess.CompletedProcess[bytes]:
    return run_curl("-x", proxy.url, *args)


def test_curl_get(proxy: LiveProxy, echo_server: EchoServer) -> None:
    out = curl(proxy, f"{echo_server.url}/status/404")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"status 404\n"
    (flow,) = proxy.finished(1)
    assert flow.request.method == "GET"
    assert flow.request.url == f"{echo_server.url}/status/404"
    assert flow.request.path == "/status/404"
    assert flow.response is not None and flow.response.status_code == 404
    assert flow.response.body.data == b"status 404\n"
    assert flow.response.body.size == 11
    assert flow.timings.end is not None and flow.error is None
    kinds = proxy.kinds(flow)
    assert kinds[0] is EventKind.STARTED
    assert kinds[-1] is EventKind.RESPONSE
    assert EventKind.REQUEST in kinds and EventKind.RESPONSE_HEADERS in kinds


def test_origin_form_is_forwarded_and_headers_keep_order_and_case(
    proxy: LiveProxy, echo_server: EchoServer
) -> None:
    out = curl(
        proxy,
        "-H",
        "X-First: 1",
        "-H",
        "x-MiXeD-case: two",
        "-H",
        "Proxy-Connection: keep-alive",
        f"{echo_server.url}/echo?q=1",
    )
    echoed = json.loads(out.stdout)
    assert echoed["path"] == "/echo?q=1"  # origin-form upstream, not the absolute URL
    names = [k for k, _ in echoed["headers"]]
    assert names.index("X-First") < names.index("x-MiXeD-case")
    assert "Proxy-Connection" not in names  # hop-by-hop: removed


def test_post_body_urllib(proxy: LiveProxy, echo_server: EchoServer) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
    body = b"a=1&b=" + b"x" * 5000
    with opener.open(urllib.request.Request(f"{echo_server.url}/echo", data=body), timeout=10) as r:
        echoed = json.loads(r.read())
    assert echoed["method"] == "POST" and echoed["body"].encode() == body
    (flow,) = proxy.finished(1)
    assert flow.request.body.data == body and flow.request.body.size == len(body)
    assert flow.request.body.sha256 is not None


def test_head_has_no_body(proxy: LiveProxy, echo_server: EchoServer) -> None:
    r = requests.head(f"{echo_server.url}/bytes/5000", proxies={"http": proxy.url}, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Length"] == "5000" and r.content == b""
    (flow,) = proxy.finished(1)
    assert flow.response is not None and flow.response.body.size == 0


def test_chunked_response_is_streamed_and_recorded(
    proxy: LiveProxy, echo_server: EchoServer
) -> None:
    r = requests.get(f"{echo_server.url}/chunked/25000", proxies={"http": proxy.url}, timeout=10)
    assert r.content == b"z" * 25000
    assert r.headers["Transfer-Encoding"] == "chunked"
    (flow,) = proxy.finished(1)
    assert flow.response is not None and flow.response.body.size == 25000


def test_chunked_request_body(proxy: LiveProxy, echo_server: EchoServer) -> None:
    def parts():  # type: ignore[no-untyped-def]
        yield b"hello "
        yield b"chunked "
        yield b"world"

    r = requests.post(
        f"{echo_server.url}/echo", data=parts(), proxies={"http": proxy.url}, timeout=10
    )
    assert r.json()["body"] == "hello chunked world"
    (flow,) = proxy.finished(1)
    assert flow.request.body.data == b"hello chunked world"


def test_close_delimited_response(proxy: LiveProxy, echo_server: EchoServer) -> None:
    out = curl(proxy, f"{echo_server.url}/close/3000")
    assert out.returncode == 0 and out.stdout == b"y" * 3000
    (flow,) = proxy.finished(1)
    assert flow.response is not None and flow.response.body.size == 3000


def test_body_limit_truncates_the_recording_only(tmp_path: Path, echo_server: EchoServer) -> None:
    with live_proxy(tmp_path, body_limit=1000) as proxy:
        r = httpx.get(f"{echo_server.url}/bytes/50000", proxy=proxy.url, timeout=10)
        assert r.content == b"x" * 50000
        (flow,) = proxy.finished(1)
    body = flow.response.body  # type: ignore[union-attr]
    assert (len(body.data), body.size, body.truncated) == (1000, 50000, True)
    import hashlib

    assert body.sha256 == hashlib.sha256(b"x" * 50000).hexdigest()


def test_keep_alive_reuses_both_sides(proxy: LiveProxy, echo_server: EchoServer) -> None:
    with requests.Session() as s:
        s.proxies = {"http": proxy.url}
        for i in range(5):
            assert s.get(f"{echo_server.url}/status/{200 + i}", timeout=10).status_code == 200 + i
    flows = proxy.finished(5)
    ports = {f.client_addr[1] for f in flows}
    assert len(ports) == 1  # one client connection carried all five
    assert proxy.runtime.server.pool.opened == 1  # and one upstream connection
    assert [f.timings.connect_start is None for f in flows] == [False, True, True, True, True]


def test_pipelined_requests_are_answered_in_order(
    proxy: LiveProxy, echo_server: EchoServer
) -> None:
    up = f"127.0.0.1:{echo_server.port}"
    data = b"".join(
        f"GET http://{up}/status/{code} HTTP/1.1\r\nHost: {up}\r\n\r\n".encode()
        for code in (201, 202, 203)
    )
    with proxy.connect() as s:
        s.sendall(data)
        answers = read_responses(s, 3)
    assert [(st, body) for st, _, body in answers] == [
        (201, b"status 201\n"),
        (202, b"status 202\n"),
        (203, b"status 203\n"),
    ]


def test_browser_like_parallel_load(proxy: LiveProxy, echo_server: EchoServer) -> None:
    # One event loop, like a browser's network stack. (httpx's sync Client shared by
    # threads closes sockets under other threads now and then, with no proxy at all.)
    async def page() -> list[tuple[int, bytes]]:
        limits = httpx.Limits(max_connections=6)  # like a browser: a few connections per proxy
        async with httpx.AsyncClient(proxy=proxy.url, timeout=20, limits=limits) as client:

            async def fetch(i: int) -> tuple[int, bytes]:
                r = await client.get(f"{echo_server.url}/bytes/{1000 + i}")
                return r.status_code, r.content

            return await asyncio.gather(*(fetch(i) for i in range(30)))

    results = asyncio.run(page())
    assert results == [(200, b"x" * (1000 + i)) for i in range(30)]
    flows = proxy.finished(30)
    assert 1 < len({f.client_addr for f in flows}) <= 6
    assert sorted(f.response.body.size for f in flows) == [1000 + i for i in range(30)]  # type: ignore[union-attr]


def test_http10_client(proxy: LiveProxy, echo_server: EchoServer) -> None:
    up = f"127.0.0.1:{echo_server.port}"
    with proxy.connect() as s:
        s.sendall(f"GET http://{up}/status/200 HTTP/1.0\r\n\r\n".encode())
        status, _, body = read_response(s)
        assert (status, body) == (200, b"status 200\n")
        assert s.recv(1) == b""  # HTTP/1.0 without keep-alive: closed after the response
    (flow,) = proxy.finished(1)
    assert flow.request.header("Host") == up  # added for the upstream


def test_origin_form_to_the_proxy_explains_itself(proxy: LiveProxy) -> None:
    r = requests.get(f"{proxy.url}/some/page", timeout=10)
    assert r.status_code == 400
    assert "is not an absolute URL" in r.text and "curl -x" in r.text


@needs_ipv6
def test_ipv6_upstream(proxy: LiveProxy) -> None:
    server = EchoServer(host="::1")
    try:
        out = curl(proxy, f"{server.url}/status/200")
        (flow,) = proxy.finished(1)
    finally:
        server.close()
    assert out.stdout == b"status 200\n", out.stderr
    assert flow.request.host == "::1" and flow.request.url == f"{server.url}/status/200"


def test_stopping_the_proxy_thread_flushes_the_session(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    with live_proxy(tmp_path) as proxy:
        for i in range(10):
            curl(proxy, f"{echo_server.url}/status/{200 + i}")
        proxy.finished(10)
    with Store(tmp_path / "session.db", readonly=True) as store:
        assert store.count() == 10
