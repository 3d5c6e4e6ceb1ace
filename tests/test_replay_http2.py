"""Replay of flows recorded over HTTP/2: sent over HTTP/2 again, to hypercorn, and said so."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import grpc
import h2.events
import httpx
import pytest

from inspector import grpc as grpc_model
from inspector.config import Endpoint, Mode
from inspector.replay.engine import ReplayOptions, replay_flow
from protocol.headers import Headers
from protocol.http2 import AsyncHTTP2Connection
from tests.grpc_peers import GrpcServer, call
from tests.h2_fixtures import hypercorn_plain, hypercorn_tls
from tests.h2_servers import HypercornServer, ScriptedH2Server
from tests.proxy_fixtures import live_proxy
from tests.replay_fixtures import make_flow, read_session, run_inspector, write_session
from tests.servers import EchoServer

__all__ = ["hypercorn_plain", "hypercorn_tls"]  # fixtures used by name
ROOT = Path(__file__).parents[1]


def _record_over_tls(tmp_path: Path, server: HypercornServer, ca_file: Path) -> Path:
    """A GET and a POST made by httpx over HTTP/2 through an intercepting proxy."""
    with live_proxy(tmp_path, upstream_ca=ca_file) as proxy:
        verify = ssl.create_default_context(cafile=proxy.ca_file)
        with httpx.Client(http2=True, proxy=proxy.url, verify=verify) as client:
            base = f"https://localhost:{server.port}"
            assert client.get(f"{base}/get?x=1").http_version == "HTTP/2"
            assert client.post(f"{base}/post", content=b"0123456789").status_code == 200
        proxy.finished(2)
    return tmp_path / "session.db"


def test_replay_cli_resends_http2_flows_over_http2(
    tmp_path: Path, hypercorn_tls: HypercornServer, upstream_ca_file: Path
) -> None:
    session = _record_over_tls(tmp_path, hypercorn_tls, upstream_ca_file)
    done = run_inspector("replay", session, "--upstream-ca", upstream_ca_file, "--diff")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    base = f"https://localhost:{hypercorn_tls.port}"
    assert lines[0].startswith(f"[replay] GET {base}/get?x=1 -> 200 OK  ")
    assert lines[1].startswith(f"[replay] POST {base}/post -> 200 OK  ")
    assert all(line.endswith("  (over HTTP/2)") for line in lines[:2])
    assert lines[2] == "replayed 2 of 2: 2 match, 0 differ, 0 errors"
    replays = [f for f in read_session(session) if f.replay_of is not None]
    # hypercorn's answer says what reached it: HTTP/2, with the recorded body
    assert [f.response.body.data for f in replays] == [  # type: ignore[union-attr]
        b"GET /get?x=1 http/2 body=0",
        b"POST /post? http/2 body=10",
    ]
    assert {(f.request.http_version, f.response.http_version) for f in replays} == {  # type: ignore[union-attr]
        ("HTTP/2", "HTTP/2")
    }
    assert all(f.tls is None or f.error is None for f in replays)


async def _h2c_get(port: int, path: str) -> None:
    conn = AsyncHTTP2Connection("127.0.0.1", port, read_timeout=10)
    await conn.connect()
    try:
        stream = await conn.open_stream(
            b"GET", b"http", b"h2c.test", path.encode(), Headers([(b"te", b"trailers")]),
            end_stream=True,
        )  # fmt: skip
        await stream.receive_response()
        assert [chunk async for chunk in stream.iter_body()]
    finally:
        await conn.close()


def test_prior_knowledge_flow_is_replayed_with_prior_knowledge(
    tmp_path: Path, hypercorn_plain: HypercornServer
) -> None:
    mode = Mode("reverse", Endpoint("http", "127.0.0.1", hypercorn_plain.port))
    with live_proxy(tmp_path, mode=mode) as proxy:
        asyncio.run(_h2c_get(proxy.port, "/h2c"))
        [flow] = proxy.finished(1)
    assert flow.request.http_version == "HTTP/2"
    new = replay_flow(flow, ReplayOptions())
    assert new.error is None
    assert new.response is not None and new.response.body.data == b"GET /h2c? http/2 body=0"
    assert new.request.http_version == new.response.http_version == "HTTP/2"
    t = new.timings
    assert t.start <= t.connect_start <= t.connect_end <= t.request_sent <= t.response_start
    assert t.response_start <= t.end  # type: ignore[operator]


def test_http2_flow_to_an_http1_only_server_is_an_error_that_says_so(
    tmp_path: Path,
    hypercorn_tls: HypercornServer,
    upstream_ca_file: Path,
    tls_echo_server: EchoServer,
    echo_server: EchoServer,
) -> None:
    session = _record_over_tls(tmp_path, hypercorn_tls, upstream_ca_file)
    [flow, _] = read_session(session)
    over_tls = Endpoint("https", "localhost", tls_echo_server.port)
    new = replay_flow(flow, ReplayOptions(target=over_tls, upstream_ca=upstream_ca_file))
    assert new.error is not None and new.response is None
    assert new.error.exc_class == "UnknownProtocol"
    assert new.error.message == (
        f"localhost:{tls_echo_server.port} did not pick HTTP/2 (ALPN h2) in the TLS "
        "handshake; a flow recorded over HTTP/2 is replayed over HTTP/2"
    )
    assert new.error.phase == "tls"
    plain = Endpoint("http", echo_server.host, echo_server.port)
    refused = replay_flow(flow, ReplayOptions(target=plain, timeout=5))
    assert refused.error is not None and refused.response is None
    assert refused.error.exc_class == "RemoteDisconnected"  # it answered the preface with a 400
    assert "closed the HTTP/2 connection" in refused.error.message


def test_ctrl_c_cuts_an_http2_replay_short(tmp_path: Path) -> None:
    """A server that takes the request and never answers: SIGINT ends the replay at once."""
    server = ScriptedH2Server(lambda conn, event: None)
    try:
        flow = make_flow("127.0.0.1", server.port, "GET", "/never")
        flow.request.http_version = "HTTP/2"
        session = tmp_path / "s.db"
        write_session(session, [flow])
        proc = subprocess.Popen(
            [sys.executable, "-m", "inspector", "replay", str(session), "--timeout", "60"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            deadline = time.monotonic() + 30
            while not any(isinstance(e, h2.events.RequestReceived) for e in server.received):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the replay never reached the server"
                time.sleep(0.05)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        server.close()
    assert proc.returncode == 130, err
    assert time.monotonic() - sent < 15  # not the 60 s read timeout
    assert out.decode().splitlines()[-1].endswith("; interrupted")
    assert b"Traceback" not in err


def test_grpc_calls_replay_with_their_trailers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """grpcio calls recorded through the proxy (h2c inside CONNECT) replay against grpcio."""
    server = GrpcServer()
    try:
        with live_proxy(tmp_path) as proxy:
            monkeypatch.setenv("grpc_proxy", proxy.url)
            monkeypatch.delenv("no_grpc_proxy", raising=False)
            monkeypatch.delenv("no_proxy", raising=False)
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                assert call(channel, "Unary", b"hello") == b"olleh"
                with pytest.raises(grpc.RpcError):
                    call(channel, "Missing", b"x")
            recorded = {f.request.path: f for f in proxy.finished(2)}
        replays = {path: replay_flow(f, ReplayOptions()) for path, f in recorded.items()}
    finally:
        server.close()
    unary, missing = replays["/test.Echo/Unary"], replays["/test.Echo/Missing"]
    assert unary.error is None and missing.error is None
    assert unary.response.body.data == recorded["/test.Echo/Unary"].response.body.data  # type: ignore[union-attr]
    # grpcio answers only a request with TE: trailers; its status comes back in the trailers
    assert (grpc_model.status(unary).name, grpc_model.status(missing).name) == ("OK", "NOT_FOUND")  # type: ignore[union-attr]
    assert grpc_model.status(missing).message == "no such thing"  # type: ignore[union-attr]
