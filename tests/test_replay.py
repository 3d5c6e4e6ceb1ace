"""replay_flow and the replay loop over real loopback sockets (no session file involved)."""

from __future__ import annotations

import io
import json
import threading

import pytest

from inspector.config import Endpoint
from inspector.flow import Phase
from inspector.replay.cli import Reporter, Tally
from inspector.replay.engine import RateLimiter, ReplayOptions, replay_flow, run_replays
from inspector.replay.request import ReplayError
from tests.replay_fixtures import body, closed_port, make_flow
from tests.servers import read_request_head


def test_replay_sends_the_recorded_request_exactly(echo_server):
    headers = [
        (b"user-agent", b"rec/1"),
        (b"X-Second", b"two"),
        (b"Transfer-Encoding", b"chunked"),
        (b"accept-ENCODING", b"gzip"),
        (b"Connection", b"keep-alive"),
    ]
    flow = make_flow(
        echo_server.host, echo_server.port, "PATCH", "/echo?a=%20b", headers, b"\x00\xffbin"
    )
    new = replay_flow(flow, ReplayOptions())
    assert new.error is None
    assert new.mode == "replay"
    assert new.replay_of == flow.id
    assert new.id != flow.id
    got = echo_server.received[-1]
    assert (got.method, got.path, got.body) == ("PATCH", "/echo?a=%20b", b"\x00\xffbin")
    assert got.headers == [
        ("Host", f"{echo_server.host}:{echo_server.port}"),
        ("user-agent", "rec/1"),
        ("X-Second", "two"),
        ("Content-Length", "5"),
        ("accept-ENCODING", "gzip"),
    ]
    assert new.response.status_code == 200
    assert json.loads(new.response.body.data)["body"] == "\x00\xffbin"
    assert new.response.body.sha256 is not None
    t = new.timings
    assert (
        t.start <= t.connect_start <= t.connect_end <= t.request_sent <= t.response_start <= t.end
    )


def test_replay_to_another_target_rewrites_host_unless_kept(echo_server):
    flow = make_flow("recorded.invalid", 80, "GET", "/echo")
    target = Endpoint("http", echo_server.host, echo_server.port)
    new = replay_flow(flow, ReplayOptions(target=target))
    assert new.request.url == f"{echo_server.url}/echo"
    assert echo_server.received[-1].headers[0] == ("Host", f"{echo_server.host}:{echo_server.port}")
    replay_flow(flow, ReplayOptions(target=target, keep_host=True))
    assert echo_server.received[-1].headers[0] == ("Host", "recorded.invalid")


def test_replay_over_tls_verifies_with_the_given_ca(tls_echo_server, upstream_ca_file):
    flow = make_flow("localhost", tls_echo_server.port, "GET", "/status/201", scheme="https")
    ok = replay_flow(flow, ReplayOptions(upstream_ca=upstream_ca_file))
    assert ok.error is None and ok.response.status_code == 201
    assert ok.timings.tls_end is not None
    refused = replay_flow(flow, ReplayOptions())
    assert refused.error is not None
    assert refused.error.phase == Phase.TLS
    assert "certificate" in refused.error.message.lower()
    insecure = replay_flow(flow, ReplayOptions(insecure=True))
    assert insecure.response.status_code == 201


def test_connection_refused_is_recorded_as_an_error():
    new = replay_flow(make_flow("127.0.0.1", closed_port()), ReplayOptions())
    assert new.response is None
    assert new.error.exc_class == "ConnectionRefusedError"
    assert new.error.phase == Phase.CONNECT
    assert new.finished


def test_silent_server_times_out_waiting_for_the_status_line(raw_server):
    release = threading.Event()

    def silent(conn):
        read_request_head(conn)
        release.wait(5)

    server = raw_server(silent)
    new = replay_flow(make_flow("127.0.0.1", server.port), ReplayOptions(timeout=0.3))
    release.set()
    assert new.error.phase == Phase.STATUS_LINE
    assert new.error.exc_class in ("TimeoutError", "timeout")


def test_garbage_status_line_is_a_protocol_error(raw_server):
    def garbage(conn):
        read_request_head(conn)
        conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")

    server = raw_server(garbage)
    new = replay_flow(make_flow("127.0.0.1", server.port), ReplayOptions())
    assert new.error.exc_class == "BadStatusLine"
    assert new.error.phase == Phase.STATUS_LINE


def test_truncated_request_body_is_refused_before_sending(echo_server):
    flow = make_flow(echo_server.host, echo_server.port, "POST", "/echo", request_body=b"ab")
    flow.request.body = body(b"ab", size=5000)
    with pytest.raises(ReplayError, match="capture again with a larger --body-limit"):
        replay_flow(flow, ReplayOptions())
    assert echo_server.received == []


def test_large_response_is_kept_up_to_the_body_limit(echo_server):
    flow = make_flow(echo_server.host, echo_server.port, "GET", "/bytes/100000")
    new = replay_flow(flow, ReplayOptions(body_limit=1000))
    assert new.response.body.size == 100_000
    assert len(new.response.body.data) == 1000
    assert new.response.body.truncated


def test_concurrent_replays_report_in_capture_order(echo_server):
    flows = [
        make_flow(echo_server.host, echo_server.port, "GET", f"/status/{200 + i}")
        for i in range(12)
    ]
    seen = []
    finished = run_replays(
        iter(flows),
        ReplayOptions(),
        concurrency=4,
        rate=None,
        on_outcome=lambda outcome: seen.append(outcome),
    )
    assert finished
    assert [o.original.id for o in seen] == [f.id for f in flows]
    assert [o.new.response.status_code for o in seen] == [200 + i for i in range(12)]
    assert sorted(r.path for r in echo_server.received) == sorted(f.request.path for f in flows)


def test_rate_limiter_spaces_sends_evenly():
    now = [100.0]
    limiter = RateLimiter(
        4.0, clock=lambda: now[0], sleep=lambda seconds: now.__setitem__(0, now[0] + seconds)
    )
    ticks = []
    for _ in range(5):
        limiter.wait()
        ticks.append(now[0])
    assert [round(t - 100.0, 6) for t in ticks] == [0.0, 0.25, 0.5, 0.75, 1.0]
    now[0] += 10  # idle time does not build up a burst: the bucket holds one token
    limiter.wait()
    limiter.wait()
    assert round(now[0] - 111.0, 6) == 0.25


def test_reporter_lines_and_diff(echo_server):
    flow = make_flow(
        echo_server.host,
        echo_server.port,
        "GET",
        "/status/404",
        response_headers=[(b"Content-Type", b"text/plain")],
        response_body=b"status 200\n",
    )
    out = io.StringIO()
    tally = Tally(total=1)
    reporter = Reporter(tally, show_diff=True, ignore=[], out=out)
    run_replays(iter([flow]), ReplayOptions(), concurrency=1, rate=None, on_outcome=reporter.report)
    reporter.finish()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"[replay] GET {echo_server.url}/status/404 -> 404 Not Found")
    assert lines[0].endswith("(recorded 200 OK)")
    assert "    status: 200 OK -> 404 Not Found" in lines
    assert "    -status 200" in lines and "    +status 404" in lines
    assert lines[-1] == "replayed 1 of 1: 0 match, 1 differ, 0 errors"
    assert tally.exit_code() == 1
