"""Each rule kind end to end: curl, requests and httpx through the proxy to real servers."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import threading
from pathlib import Path

import httpx
import requests

from inspector.flow import Phase
from inspector.render import flow_line
from tests.conftest import needs_curl
from tests.proxy_fixtures import live_proxy, read_response
from tests.servers import EchoServer, RawServer, read_request_head


class Untouchable:
    """An upstream that counts connections: the proof that a rule did not contact it."""

    def __init__(self) -> None:
        self.connections = 0
        self._lock = threading.Lock()
        self.server = RawServer(self._count)

    def _count(self, conn: socket.socket) -> None:
        with self._lock:
            self.connections += 1

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.server.port}"


def proxies(url: str) -> dict[str, str]:
    return {"http": url, "https": url}


def test_map_remote_sends_to_the_new_url_and_records_both(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    rule = f"|//service\\.invalid/api/|//127.0.0.1:{echo_server.port}/echo/"
    with live_proxy(tmp_path, map_remote=(rule,)) as proxy:
        with httpx.Client(proxy=proxy.url) as client:
            resp = client.get("http://service.invalid/api/items?page=2")
        (flow,) = proxy.finished(1)
    assert resp.status_code == 200
    seen = json.loads(resp.content)
    assert seen["path"] == "/echo/items?page=2"
    assert ["Host", f"127.0.0.1:{echo_server.port}"] in seen["headers"]
    assert flow.original_request is not None
    assert flow.original_request.url == "http://service.invalid/api/items?page=2"
    assert flow.request.url == f"http://127.0.0.1:{echo_server.port}/echo/items?page=2"
    assert flow.modified_by == [f"--map-remote {rule}"]
    assert flow_line(flow).endswith("  [modified]")


def test_map_remote_to_tls_verifies_the_new_upstream(
    tmp_path: Path, tls_echo_server: EchoServer, upstream_ca_file: Path
) -> None:
    rule = f"|^http://plain\\.invalid/|https://localhost:{tls_echo_server.port}/"
    with live_proxy(tmp_path, map_remote=(rule,), upstream_ca=upstream_ca_file) as proxy:
        ok = requests.get("http://plain.invalid/echo", proxies=proxies(proxy.url), timeout=10)
        flows = proxy.finished(1)
    assert ok.status_code == 200 and json.loads(ok.content)["path"] == "/echo"
    assert flows[0].tls is not None and flows[0].tls.upstream_version is not None
    with live_proxy(tmp_path / "untrusted", map_remote=(rule,)) as proxy:
        bad = requests.get("http://plain.invalid/echo", proxies=proxies(proxy.url), timeout=10)
        (failed,) = proxy.finished(1)
    assert bad.status_code == 502
    assert failed.error is not None and failed.error.exc_class == "SSLCertVerificationError"


@needs_curl
def test_map_local_answers_from_files_without_the_upstream(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("top secret")
    upstream = Untouchable()
    rule = f"|//{upstream.authority}/static/|{site}"
    try:
        with live_proxy(tmp_path, map_local=(rule,)) as proxy:
            base = f"http://{upstream.authority}/static"
            found = subprocess.run(
                ["curl", "-sS", "-x", proxy.url, "-D", "-", f"{base}/app.js"],
                capture_output=True, timeout=20, check=True,
            )  # fmt: skip
            escape = subprocess.run(
                ["curl", "-sS", "--path-as-is", "-x", proxy.url, f"{base}/../secret.txt"],
                capture_output=True, timeout=20, check=True,
            )  # fmt: skip
            missing = requests.get(f"{base}/nope.css", proxies=proxies(proxy.url), timeout=10)
            flows = proxy.finished(3)
    finally:
        upstream.server.close()
    head, _, body = found.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b"console.log(1)"
    assert (
        b"Content-Type: text/javascript" in head or b"Content-Type: application/javascript" in head
    )
    assert b"top secret" not in escape.stdout and b"is outside" in escape.stdout
    assert missing.status_code == 404 and "cannot read" in missing.text
    assert upstream.connections == 0
    assert all(f.modified_by == [f"--map-local {rule}"] for f in flows)
    assert all(f.original_response is None for f in flows)  # no upstream answered


def test_block_list_answers_locally_and_444_closes(tmp_path: Path) -> None:
    upstream = Untouchable()
    rules = ("/~u /pixel/403", "|~u /beacon|444")
    try:
        with live_proxy(tmp_path, block_list=rules) as proxy:
            blocked = requests.get(
                f"http://{upstream.authority}/pixel", proxies=proxies(proxy.url), timeout=10
            )
            with proxy.connect() as sock:
                sock.sendall(
                    f"GET http://{upstream.authority}/beacon HTTP/1.1\r\n"
                    f"Host: {upstream.authority}\r\n\r\n".encode()
                )
                closed = sock.recv(100)
            flows = proxy.finished(2)
    finally:
        upstream.server.close()
    assert blocked.status_code == 403 and "blocked by --block-list /~u /pixel/403" in blocked.text
    assert closed == b""  # no response at all: the connection was closed
    assert upstream.connections == 0
    by_path = {f.request.path: f for f in flows}
    assert by_path["/pixel"].modified_by == ["--block-list /~u /pixel/403"]
    gone = by_path["/beacon"]
    assert gone.response is None and gone.error is not None and gone.error.phase is Phase.RULE
    assert gone.modified_by == ["--block-list |~u /beacon|444"]
    assert "closed without a response by --block-list" in flow_line(gone)


def test_modify_headers_on_requests_and_responses(tmp_path: Path, echo_server: EchoServer) -> None:
    token = tmp_path / "token.txt"
    token.write_text("Bearer from-a-file\n")
    rules = (f"/~q/Authorization/@{token}", "/~q/User-Agent/", "/~s/Server/", "/~s/X-Proxy/yes")
    with live_proxy(tmp_path, modify_headers=rules) as proxy:
        resp = requests.get(
            f"{echo_server.url}/echo", proxies=proxies(proxy.url), timeout=10,
            headers={"User-Agent": "hidden/1.0"},
        )  # fmt: skip
        (flow,) = proxy.finished(1)
    seen = dict(json.loads(resp.content)["headers"])
    assert seen["Authorization"] == "Bearer from-a-file" and "User-Agent" not in seen
    assert "Server" not in resp.headers and resp.headers["X-Proxy"] == "yes"
    assert flow.original_request is not None and flow.original_response is not None
    assert flow.original_request.header("user-agent") == "hidden/1.0"
    assert flow.original_response.header("server", "").startswith("TestEcho")
    # streamed with their heads edited: the originals share the bodies that went through
    assert flow.original_response.body.data == flow.response.body.data == resp.content  # type: ignore[union-attr]
    assert set(flow.modified_by) == {f"--modify-headers {r}" for r in rules}


def gzip_json_server() -> RawServer:
    body = gzip.compress(b'{"feature": "off", "user": "ann"}')

    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        )

    return RawServer(handler)


def test_modify_body_re_encodes_and_fixes_the_framing(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    server = gzip_json_server()
    rules = ('/~s/"off"/"on"', "/~q/password=\\w+/password=***")
    try:
        with live_proxy(tmp_path, modify_body=rules) as proxy:
            with httpx.Client(proxy=proxy.url) as client:
                changed = client.get(f"{server.url}/flags")
                echoed = client.post(f"{echo_server.url}/echo", content=b"user=a&password=hunter2")
            flows = proxy.finished(2)
    finally:
        server.close()
    assert changed.json() == {"feature": "on", "user": "ann"}
    assert changed.headers["content-encoding"] == "gzip"
    assert int(changed.headers["content-length"]) == changed.num_bytes_downloaded
    assert "transfer-encoding" not in changed.headers
    assert json.loads(echoed.content)["body"] == "user=a&password=***"
    by_path = {f.request.path: f for f in flows}
    flag = by_path["/flags"]
    assert flag.original_response is not None
    assert gzip.decompress(flag.original_response.body.data) == b'{"feature": "off", "user": "ann"}'
    assert gzip.decompress(flag.response.body.data) == b'{"feature": "on", "user": "ann"}'  # type: ignore[union-attr]
    sent = by_path["/echo"]
    assert sent.original_request is not None
    assert sent.original_request.body.data == b"user=a&password=hunter2"


def test_a_flow_no_rule_matches_is_not_modified(tmp_path: Path, echo_server: EchoServer) -> None:
    with live_proxy(tmp_path, modify_headers=("/~d nothing\\.test/X-A/1",)) as proxy:
        with proxy.connect() as sock:
            sock.sendall(
                f"GET {echo_server.url}/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            status, _, body = read_response(sock)
        (flow,) = proxy.finished(1)
    assert (status, body) == (200, b"hello")
    assert flow.modified_by == [] and flow.original_request is None
    assert not flow_line(flow).endswith("[modified]")


def test_map_remote_inside_an_intercepted_tls_tunnel(
    tmp_path: Path, tls_echo_server: EchoServer, upstream_ca_file: Path
) -> None:
    rule = f"|^https://svc\\.invalid/|https://localhost:{tls_echo_server.port}/"
    with live_proxy(tmp_path, map_remote=(rule,), upstream_ca=upstream_ca_file) as proxy:
        resp = requests.get(
            "https://svc.invalid/echo?x=1", proxies=proxies(proxy.url), timeout=10,
            verify=str(proxy.ca_file),
        )  # fmt: skip
        (flow,) = proxy.finished(1)
    assert resp.status_code == 200
    seen = json.loads(resp.content)
    assert (
        seen["path"] == "/echo?x=1"
        and ["Host", f"localhost:{tls_echo_server.port}"] in seen["headers"]
    )
    assert (
        flow.original_request is not None
        and flow.original_request.url == "https://svc.invalid/echo?x=1"
    )
    assert flow.tls is not None and flow.tls.sni == "svc.invalid"  # what the client asked for


def test_a_request_only_rule_leaves_responses_streaming(tmp_path: Path) -> None:
    first_seen = threading.Event()

    def events(conn: socket.socket) -> None:  # server-sent events: the rest waits for the client
        read_request_head(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n7\r\ndata: 1\r\n"
        )
        if first_seen.wait(10):
            conn.sendall(b"7\r\ndata: 2\r\n0\r\n\r\n")

    server = RawServer(events)
    try:
        with live_proxy(tmp_path, modify_headers=("/~q/X-Client/1",)) as proxy:
            with httpx.Client(proxy=proxy.url, timeout=10) as client:
                with client.stream("GET", f"{server.url}/events") as resp:
                    chunks = resp.iter_raw()
                    first = next(chunks)
                    first_seen.set()
                    rest = b"".join(chunks)
            (flow,) = proxy.finished(1)
    finally:
        server.close()
    assert first == b"data: 1" and rest == b"data: 2"
    assert flow.modified_by == ["--modify-headers /~q/X-Client/1"]
