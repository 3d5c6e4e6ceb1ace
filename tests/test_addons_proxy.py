"""Addons end to end: every hook, failures, reload, mitmproxy-style scripts and examples/."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
import requests

from inspector.config import Endpoint, Mode
from inspector.flow import Phase
from inspector.render import flow_line
from protocol.headers import Headers
from protocol.http2 import AsyncHTTP2Connection
from tests.conftest import needs_curl
from tests.proxy_fixtures import LiveProxy, live_proxy
from tests.proxy_process import ProxyProcess
from tests.servers import EchoServer, RawServer, read_request_head

ROOT = Path(__file__).parents[1]
MITM_STYLE = Path(__file__).parent / "addon_scripts"


def script(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def ported(tmp_path: Path, name: str) -> Path:
    """A script written for mitmproxy, with only its import line changed."""
    text = (MITM_STYLE / name).read_text()
    assert text.count("from mitmproxy import http") == 1
    return script(
        tmp_path, name, text.replace("from mitmproxy import http", "from inspector import http")
    )


def proxies(proxy: LiveProxy) -> dict[str, str]:
    return {"http": proxy.url, "https": proxy.url}


class Reports:
    """The addon host's messages as they come (reloads, failures), with an event to wait on."""

    def __init__(self, proxy: LiveProxy) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        proxy.runtime.changes.addons.report = self._add  # type: ignore[union-attr]

    def _add(self, message: str) -> None:
        with self._cond:
            self.lines.append(message)
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 5.0) -> str:
        with self._cond:
            found = self._cond.wait_for(
                lambda: any(text in line for line in self.lines), timeout=timeout
            )
            assert found, f"no report with {text!r}: {self.lines}"
            return next(line for line in self.lines if text in line)


def touch(path: Path, source: str) -> None:
    """Rewrite a script so that its modification time surely changes."""
    before = path.stat().st_mtime_ns
    path.write_text(textwrap.dedent(source))
    os.utime(path, ns=(before + 10_000_000, before + 10_000_000))


def test_every_hook_runs_in_order_after_the_rules(tmp_path: Path, echo_server: EchoServer) -> None:
    log = tmp_path / "log.txt"
    path = script(
        tmp_path,
        "hooks.py",
        f"""
        from inspector import http
        LOG = {str(log)!r}

        def note(text):
            with open(LOG, "a") as f:
                f.write(text + "\\n")

        def running():
            note("running")

        def done():
            note("done")

        async def request(flow: http.HTTPFlow) -> None:
            flow.request.headers["X-Saw-Rule"] = flow.request.headers.get("X-Rule", "no")

        def response(flow: http.HTTPFlow) -> None:
            flow.response.headers["X-Hooked"] = "1"

        def error(flow: http.HTTPFlow) -> None:
            note(f"error {{flow.error.exc_type}} {{flow.error.phase}}")
        """,
    )
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    with live_proxy(tmp_path, scripts=(path,), modify_headers=("/~q/X-Rule/yes",)) as proxy:
        ok = requests.get(f"{echo_server.url}/echo", proxies=proxies(proxy), timeout=10)
        with httpx.Client(proxy=proxy.url) as client:
            failed = client.get(f"http://127.0.0.1:{dead_port}/")
        flows = proxy.finished(2)
    assert dict(json.loads(ok.content)["headers"])["X-Saw-Rule"] == "yes"
    assert ok.headers["X-Hooked"] == "1" and failed.status_code == 502
    good = next(f for f in flows if f.response is not None and f.error is None)
    assert good.modified_by == [
        "--modify-headers /~q/X-Rule/yes",
        "hooks.py:request",
        "hooks.py:response",
    ]
    assert log.read_text().splitlines() == [
        "running",
        "error ConnectionRefusedError connect",
        "done",
    ]


@needs_curl
def test_a_raising_hook_is_an_addon_event_and_the_exchange_goes_on(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    path = script(
        tmp_path,
        "raises.py",
        """
        def response(flow):
            data = {}
            return data["missing"]
        """,
    )
    with live_proxy(tmp_path, scripts=(path,)) as proxy:
        out = subprocess.run(
            ["curl", "-sS", "-x", proxy.url, f"{echo_server.url}/x"],
            capture_output=True, timeout=20, check=True,
        )  # fmt: skip
        (flow,) = proxy.finished(1)
    assert out.stdout == b"hello"
    assert flow.error is not None and flow.error.phase is Phase.ADDON
    assert flow.error.exc_class == "KeyError"
    assert "raises.py:4, in raises.py:response" in flow.error.message
    assert flow_line(flow).startswith(f"GET {echo_server.url}/x -> ERROR KeyError: 'missing'")
    assert "(after 200 OK)" in flow_line(flow)


def test_a_script_with_a_syntax_error_is_off_until_fixed(
    tmp_path: Path, echo_server: EchoServer, capfd: pytest.CaptureFixture[str]
) -> None:
    path = script(tmp_path, "fixme.py", "def request(flow)\n    pass\n")
    with live_proxy(tmp_path, scripts=(path,)) as proxy:
        assert "addon fixme.py is off until it loads cleanly: fixme.py:1: SyntaxError" in (
            capfd.readouterr().err
        )
        reports = Reports(proxy)
        with requests.Session() as session:
            session.proxies = proxies(proxy)
            before = session.get(f"{echo_server.url}/echo", timeout=10)
            touch(path, "def request(flow):\n    flow.request.headers['X-Fixed'] = 'yes'\n")
            reports.wait_for("addon fixme.py reloaded")
            after = session.get(f"{echo_server.url}/echo", timeout=10)
            touch(path, "def request(flow):\n    flow.request.headers['X-Fixed'] = \n")
            reports.wait_for("off until it loads cleanly: fixme.py:2: SyntaxError")
            off = session.get(f"{echo_server.url}/echo", timeout=10)
        flows = proxy.finished(3)
    headers = [dict(json.loads(r.content)["headers"]) for r in (before, after, off)]
    assert [h.get("X-Fixed") for h in headers] == [None, "yes", None]
    # the reloads dropped no connection: one client connection carried all three
    assert len({f.client_addr for f in flows}) == 1


def test_a_mock_response_never_contacts_the_upstream(tmp_path: Path) -> None:
    path = ported(tmp_path, "answer_here.py")
    with live_proxy(tmp_path, scripts=(path,)) as proxy:
        with httpx.Client(proxy=proxy.url) as client:
            resp = client.get("http://answered.invalid/anything")
        (flow,) = proxy.finished(1)
    assert resp.status_code == 200 and resp.text == "<h1>answered by the proxy</h1>"
    assert resp.headers["content-type"] == "text/html"
    # answered.invalid cannot resolve: had the proxy tried, this would be a 502
    assert flow.timings.connect_start is None and flow.error is None
    assert flow.modified_by == ["answer_here.py:request"]


def test_mitmproxy_style_scripts_run_with_only_the_import_changed(
    tmp_path: Path, echo_server: EchoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIRECT_PORT", str(echo_server.port))
    names = ("stamp_response.py", "tag_query.py", "fill_form.py", "send_elsewhere.py")
    paths = tuple(ported(tmp_path, name) for name in names)
    with live_proxy(tmp_path, scripts=paths) as proxy:
        with httpx.Client(proxy=proxy.url) as client:
            form = client.post(f"{echo_server.url}/echo?a=1", data={"comment": "mine", "x": "y"})
            plain = client.get("http://moved.invalid/echo")
        proxy.finished(2)
    seen = json.loads(form.content)
    assert form.headers["x-stamped-by"] == "an addon"
    assert seen["path"] == "/echo?a=1&via=proxy"
    assert seen["body"] == "comment=edited+by+the+proxy&x=y"
    moved = json.loads(plain.content)
    assert moved["method"] == "POST" and moved["body"] == "generated=yes&count=2"
    assert moved["path"] == "/echo?via=proxy"
    assert ["Host", f"127.0.0.1:{echo_server.port}"] in moved["headers"]


def test_bodies_over_the_limit_stream_untouched(tmp_path: Path, echo_server: EchoServer) -> None:
    seen = tmp_path / "seen.txt"
    path = script(
        tmp_path,
        "sizes.py",
        f"""
        def note(text):
            with open({str(seen)!r}, "a") as f:
                f.write(text + "\\n")

        def request(flow):
            note(f"request {{flow.request.content is None}}")
            flow.request.headers["X-Seen"] = "1"

        def response(flow):
            note(f"response {{flow.response.content is None}}")
        """,
    )
    upload = bytes(range(256)) * 40  # 10 kB, over the 1 kB limit
    with live_proxy(tmp_path, scripts=(path,), body_limit=1000) as proxy:
        small = requests.get(f"{echo_server.url}/bytes/500", proxies=proxies(proxy), timeout=10)
        big = requests.get(f"{echo_server.url}/chunked/50000", proxies=proxies(proxy), timeout=10)
        posted = requests.post(
            f"{echo_server.url}/echo", data=upload, proxies=proxies(proxy), timeout=10
        )
        flows = proxy.finished(3)
    assert len(small.content) == 500 and big.content == b"z" * 50000
    assert echo_server.received[-1].body == upload  # whole, in order, untouched
    assert dict(echo_server.received[-1].headers)["X-Seen"] == "1"  # the head could change
    assert posted.status_code == 200
    assert seen.read_text().splitlines() == [
        "request False",
        "response False",  # the small exchange
        "request False",  # the large download reached no response hook
        "request True",  # the large upload: content None, streamed on whole
    ]
    post = next(f for f in flows if f.request.method == "POST")
    assert post.request.body.size == len(upload) and post.request.body.truncated


def test_a_hook_that_blocks_the_loop_is_reported_by_name(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    path = script(
        tmp_path,
        "blocking.py",
        """
        import time
        def request(flow):
            if flow.request.path == "/slow":
                time.sleep(1.1)
        """,
    )
    with live_proxy(tmp_path, scripts=(path,)) as proxy:
        reports = Reports(proxy)
        resp = requests.get(f"{echo_server.url}/slow", proxies=proxies(proxy), timeout=10)
        line = reports.wait_for("blocked the event loop")
    assert resp.status_code == 200
    assert line.startswith("addon hook blocking.py:request blocked the event loop for 1.1 s")


def test_kill_closes_the_connection(tmp_path: Path, echo_server: EchoServer) -> None:
    path = script(tmp_path, "kill.py", "def request(flow):\n    flow.kill()\n")
    with live_proxy(tmp_path, scripts=(path,)) as proxy:
        with proxy.connect() as sock:
            sock.sendall(f"GET {echo_server.url}/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert sock.recv(100) == b""
        (flow,) = proxy.finished(1)
    assert (
        flow.error is not None
        and flow.error.message == "closed without a response by kill.py:request"
        and flow.error.phase == Phase.ADDON
    )
    assert echo_server.received == []


# -- examples/ ----------------------------------------------------------------------------------


def test_example_add_header(tmp_path: Path, echo_server: EchoServer) -> None:
    with live_proxy(tmp_path, scripts=(ROOT / "examples" / "add_header.py",)) as proxy:
        with requests.Session() as session:
            session.proxies = proxies(proxy)
            counts = [
                session.get(echo_server.url, timeout=10).headers["X-Inspector-Count"]
                for _ in range(3)
            ]
        proxy.finished(3)
    assert counts == ["1", "2", "3"]


def test_example_mock_endpoint(tmp_path: Path, echo_server: EchoServer) -> None:
    with live_proxy(tmp_path, scripts=(ROOT / "examples" / "mock_endpoint.py",)) as proxy:
        with httpx.Client(proxy=proxy.url) as client:
            mocked = client.get("http://api.invalid/api/status?x=1")
            passed = client.get(f"{echo_server.url}/echo")
        proxy.finished(2)
    assert mocked.json() == {"status": "ok", "mocked": True, "host": "api.invalid"}
    assert json.loads(passed.content)["path"] == "/echo"


def test_example_redact_token(tmp_path: Path) -> None:
    body = json.dumps({"user": "ann", "auth": {"access_token": "abc123", "ttl": 5}}).encode()

    def handler(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (len(body), body)
        )

    server = RawServer(handler)
    try:
        with live_proxy(tmp_path, scripts=(ROOT / "examples" / "redact_token.py",)) as proxy:
            resp = requests.get(f"{server.url}/login", proxies=proxies(proxy), timeout=10)
            (flow,) = proxy.finished(1)
    finally:
        server.close()
    assert resp.json() == {"user": "ann", "auth": {"access_token": "[redacted]", "ttl": 5}}
    assert flow.original_response is not None and b"abc123" in flow.original_response.body.data
    assert b"abc123" not in flow.response.body.data  # type: ignore[union-attr]


def test_example_log_slow_responses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLOW_SECONDS", "0.3")

    def handler(conn: socket.socket) -> None:
        head = read_request_head(conn)
        if b"/slow" in head:
            time.sleep(0.4)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    server = RawServer(handler)
    try:
        with live_proxy(tmp_path, scripts=(ROOT / "examples" / "log_slow_responses.py",)) as proxy:
            for path in ("/fast", "/slow"):
                requests.get(f"{server.url}{path}", proxies=proxies(proxy), timeout=10)
            flows = proxy.finished(2)
    finally:
        server.close()
    marked = {f.request.path: f.marked for f in flows}
    assert marked == {"/fast": False, "/slow": True}
    err = capfd.readouterr().err
    assert f"slow response: GET {server.url}/slow took" in err and "/fast" not in err


def test_dump_marks_changed_exchanges_and_reports_a_broken_script(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    broken = script(tmp_path, "broken.py", "import no_such_module_anywhere\n")
    proc = ProxyProcess(
        tmp_path, "-s", str(broken), "-H", "/~q/X-Via/dump", "--map-local", "|/local$|/no/such"
    )
    try:
        with httpx.Client(proxy=proc.url) as client:
            client.get(f"{echo_server.url}/x")
            client.get(f"{echo_server.url}/local")
    finally:
        out, err = proc.stop()
    lines = out.splitlines()
    assert lines[0].startswith(f"GET {echo_server.url}/x -> 200 OK") and lines[0].endswith(
        "  [modified]"
    )
    assert lines[1].startswith(f"GET {echo_server.url}/local -> 404 Not Found")
    assert (
        "inspector: addon broken.py is off until it loads cleanly: broken.py:1: ModuleNotFoundError"
        in err
    )
    assert err.index("proxy listening on") < err.index("addon broken.py")


def test_http2_streams_go_through_rules_and_addons(tmp_path: Path, echo_server: EchoServer) -> None:
    path = script(
        tmp_path,
        "h2mock.py",
        """
        from inspector import http
        def request(flow):
            if flow.request.path == "/mock":
                flow.response = http.Response.make(203, b"from the addon")
        """,
    )

    async def get(port: int, paths: list[str]) -> list[tuple[int, bytes]]:
        conn = AsyncHTTP2Connection("127.0.0.1", port, read_timeout=10)
        await conn.connect()
        try:
            out = []
            for p in paths:
                stream = await conn.open_stream(
                    b"GET", b"http", b"example.test", p.encode(), Headers(), end_stream=True
                )
                response = await stream.receive_response()
                out.append((response.status_code, b"".join([c async for c in stream.iter_body()])))
            return out
        finally:
            await conn.close()

    mode = Mode("reverse", Endpoint("http", "127.0.0.1", echo_server.port))
    options = {"mode": mode, "scripts": (path,), "modify_headers": ("/~q/X-H2/yes",)}
    with live_proxy(tmp_path, **options) as proxy:
        (mocked, echoed) = asyncio.run(get(proxy.port, ["/mock", "/echo"]))
        flows = proxy.finished(2)
    assert mocked == (203, b"from the addon")
    assert echoed[0] == 200 and ["X-H2", "yes"] in json.loads(echoed[1])["headers"]
    assert {f.request.http_version for f in flows} == {"HTTP/2"}
    assert all(f.modified for f in flows)


def test_rules_and_scripts_come_from_config_toml(tmp_path: Path, echo_server: EchoServer) -> None:
    addon = script(
        tmp_path, "stamp.py", "def response(flow):\n    flow.response.headers['X-Toml'] = '1'\n"
    )
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.toml").write_text(
        f'script = ["{addon}"]\nmodify-headers = ["/~q/X-From-Config/yes"]\n'
    )
    proc = ProxyProcess(tmp_path)
    try:
        with httpx.Client(proxy=proc.url) as client:
            resp = client.get(f"{echo_server.url}/echo")
    finally:
        out, _ = proc.stop()
    assert resp.headers["x-toml"] == "1"
    assert ["X-From-Config", "yes"] in json.loads(resp.content)["headers"]
    assert out.splitlines()[0].endswith("  [modified]")
