"""The whole loop: capture through the real proxy, then replay and export the session."""

from __future__ import annotations

import subprocess
import urllib.request

import pytest
import requests

from tests.conftest import needs_curl
from tests.proxy_process import ProxyProcess
from tests.replay_fixtures import read_session, run_inspector
from tests.servers import EchoServer


@pytest.fixture
def captured(tmp_path, echo_server):
    """A session recorded by `inspector dump` from requests and urllib traffic."""
    proxy = ProxyProcess(tmp_path)
    try:
        proxies = {"http": proxy.url}
        with requests.Session() as s:
            s.proxies.update(proxies)
            s.get(f"{echo_server.url}/echo?x=1", headers={"X-Order": "first", "x-lower": "v"})
            s.post(f"{echo_server.url}/echo", json={"items": [1, 2]}, headers={"X-Api": "k"})
            # A generator body goes out chunked; the replay sends it with a Content-Length.
            s.put(f"{echo_server.url}/echo", data=(part for part in [b"chunk-1;", b"chunk-2"]))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies))
        opener.open(urllib.request.Request(f"{echo_server.url}/status/404"), timeout=10).close()
    except urllib.error.HTTPError:
        pass
    finally:
        out, err = proxy.stop()
    flows = read_session(proxy.session)
    assert len(flows) == 4, out + err
    return proxy.session, flows


def test_replay_of_a_proxy_capture_resends_the_same_requests(captured, echo_server):
    session, _ = captured
    recorded = list(echo_server.received)
    fresh = EchoServer()
    try:
        result = run_inspector("replay", session, "--target", fresh.url, "--keep-host")
        received = list(fresh.received)
    finally:
        fresh.close()
    # The echoed headers of the chunked PUT now say Content-Length: a true difference.
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].endswith("[differs: body]")
    assert lines[-1] == "replayed 4 of 4: 3 match, 1 differ, 0 errors"
    assert len(received) == 4
    for original, again in zip(recorded, received, strict=True):
        assert (again.method, again.path, again.body) == (
            original.method,
            original.path,
            original.body,
        )
        framing = ("content-length", "transfer-encoding")
        assert [kv for kv in again.headers if kv[0].lower() not in framing] == [
            kv for kv in original.headers if kv[0].lower() not in framing
        ]
    put = received[2]
    assert ("Content-Length", "15") in put.headers
    assert all(name.lower() != "transfer-encoding" for name, _ in put.headers)
    assert put.body == b"chunk-1;chunk-2"


@needs_curl
def test_curl_export_of_a_proxy_capture_runs(captured, echo_server, tmp_path):
    session, _ = captured
    script = tmp_path / "again.sh"
    assert run_inspector("export", session, "--format", "curl", "-o", script).returncode == 0
    before = len(echo_server.received)
    run = subprocess.run(["bash", str(script)], capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    again = echo_server.received[before:]
    assert [(r.method, r.path, r.body) for r in again] == [
        (r.method, r.path, r.body) for r in echo_server.received[:before]
    ]
