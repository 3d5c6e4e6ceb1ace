"""Export of flows made over HTTP/2: HAR says HTTP/2, curl and the pytest module ask for it,
raw says it renders it."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from protocol.connection import CLIENT, SERVER, Connection
from protocol.events import Data, EndOfMessage, Request, Response
from protocol.headers import Headers
from tests.cli_fixtures import ROOT
from tests.conftest import needs_curl
from tests.h2_fixtures import hypercorn_tls
from tests.h2_servers import HypercornServer
from tests.proxy_fixtures import live_proxy
from tests.replay_fixtures import check_har, run_inspector

__all__ = ["hypercorn_tls"]  # a fixture used by name


@pytest.fixture(scope="module")
def h2_session(
    tmp_path_factory: pytest.TempPathFactory, hypercorn_tls: HypercornServer, upstream_ca_file: Path
) -> Path:
    """A GET and a POST that httpx made over HTTP/2 through an intercepting proxy."""
    tmp = tmp_path_factory.mktemp("h2-export")
    with live_proxy(tmp, upstream_ca=upstream_ca_file) as proxy:
        verify = ssl.create_default_context(cafile=proxy.ca_file)
        with httpx.Client(http2=True, proxy=proxy.url, verify=verify) as client:
            base = f"https://localhost:{hypercorn_tls.port}"
            assert client.get(f"{base}/get?x=1").http_version == "HTTP/2"
            assert client.post(f"{base}/post", content=b"0123456789").status_code == 200
        proxy.finished(2)
    return tmp / "session.db"


def test_har_writes_http2_as_the_version(tmp_path: Path, h2_session: Path) -> None:
    har = tmp_path / "s.har"
    done = run_inspector("export", h2_session, "--format", "har", "-o", har)
    assert done.returncode == 0, done.stderr
    doc = json.loads(har.read_text())
    check_har(doc)
    versions = {
        (e["request"]["httpVersion"], e["response"]["httpVersion"]) for e in doc["log"]["entries"]
    }
    assert versions == {("HTTP/2", "HTTP/2")}


@needs_curl
def test_exported_curl_speaks_http2_to_the_server(
    tmp_path: Path, h2_session: Path, hypercorn_tls: HypercornServer, upstream_ca_file: Path
) -> None:
    script = tmp_path / "again.sh"
    done = run_inspector("export", h2_session, "--format", "curl", "-o", script)
    assert done.returncode == 0, done.stderr
    assert script.read_text().count("curl --http2 ") == 2
    env = {**os.environ, "CURL_CA_BUNDLE": str(upstream_ca_file)}
    run = subprocess.run(
        [shutil.which("dash") or "sh", str(script)], capture_output=True, timeout=60, env=env
    )
    assert run.returncode == 0, run.stderr
    # hypercorn answers with what reached it: both requests over HTTP/2, the body whole
    assert b"GET /get?x=1 http/2 body=0" in run.stdout
    assert b"POST /post? http/2 body=10" in run.stdout


def test_raw_renders_http2_as_http1_and_says_so(
    h2_session: Path, hypercorn_tls: HypercornServer
) -> None:
    port = hypercorn_tls.port
    done = run_inspector("export", h2_session, "--format", "raw", "--filter", "~m POST")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "### exchanged over HTTP/2, rendered here as HTTP/1.1\n" in out
    assert "HTTP/2" not in out.replace("### exchanged over HTTP/2", "")
    assert "### response 200 OK\nHTTP/1.1 200 OK\n" in out  # the standard reason phrase
    request, response = _messages(out)
    assert request.startswith(b"POST /post HTTP/1.1\r\n")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    # each message parses as HTTP/1.1, with the body that HTTP/2 framed by itself
    server = Connection(SERVER)
    server.receive_data(request)
    head = server.next_event()
    assert isinstance(head, Request) and head.headers.get(b"host") == b"localhost:%d" % port
    assert _body(server) == b"0123456789"
    client = Connection(CLIENT)
    client.send(Request(b"POST", b"/post", Headers([(b"Host", b"h"), (b"Content-Length", b"0")])))
    client.send(EndOfMessage())
    client.receive_data(response)
    assert isinstance(client.next_event(), Response)
    assert _body(client) == b"POST /post? http/2 body=10"


def _messages(raw_text: str) -> list[bytes]:
    """The request and the response of one raw export, without the ### lines, in CRLF."""
    parts: list[list[str]] = []
    for line in raw_text.split("\n"):
        if line.startswith("### request") or line.startswith("### response"):
            parts.append([])
        elif not line.startswith("### "):
            parts[-1].append(line)
    return ["\r\n".join(p).encode() for p in parts]


def _body(conn: Connection) -> bytes:
    data = b""
    for _ in range(10):  # a body of one Data event then EndOfMessage, at most
        event = conn.next_event()
        if isinstance(event, EndOfMessage):
            return data
        assert isinstance(event, Data), event
        data += event.data
    raise AssertionError("no end of message")


def test_exported_pytest_module_speaks_http2_to_the_server(
    tmp_path: Path, h2_session: Path, hypercorn_tls: HypercornServer, upstream_ca_file: Path
) -> None:
    # hypercorn's answer names the protocol it was asked over: the recording says http/2,
    # so a test that sent the request over HTTP/1.1 would fail on the body.
    module = tmp_path / "test_captured_h2.py"
    done = run_inspector("export", h2_session, "--format", "pytest", "-o", module)
    assert done.returncode == 0, done.stderr
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "INSPECTOR_CA_FILE": str(upstream_ca_file)},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


def test_a_har_of_http2_flows_imports_as_http2_and_replays_over_it(
    tmp_path: Path, h2_session: Path, upstream_ca_file: Path
) -> None:
    # Our HAR says "HTTP/2"; Chromium's says "http/2.0": both are flows made over HTTP/2.
    har = tmp_path / "s.har"
    assert run_inspector("export", h2_session, "--format", "har", "-o", har).returncode == 0
    doc = json.loads(har.read_text())
    first = doc["log"]["entries"][0]
    first["request"]["httpVersion"] = first["response"]["httpVersion"] = "http/2.0"
    har.write_text(json.dumps(doc))
    session = tmp_path / "imported.db"
    done = run_inspector("import", har, "-o", session)
    assert done.returncode == 0, done.stderr
    replay = run_inspector("replay", session, "--upstream-ca", upstream_ca_file)
    assert replay.returncode == 0, replay.stdout + replay.stderr  # the bodies say http/2 again
    lines = replay.stdout.splitlines()
    assert len(lines) == 3 and all(line.endswith("(over HTTP/2)") for line in lines[:2]), lines
