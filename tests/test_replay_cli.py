"""`inspector replay` end to end: sessions on disk, a subprocess, real servers on loopback."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.replay_fixtures import (
    JsonServer,
    body,
    closed_port,
    make_flow,
    read_session,
    record,
    run_inspector,
    write_session,
)
from tests.servers import EchoServer, read_request_head


@pytest.fixture
def fresh_echo():
    server = EchoServer()
    yield server
    server.close()


def _recorded_session(tmp_path: Path, server: EchoServer) -> tuple[Path, list]:
    h, p = server.host, server.port
    flows = [
        record(h, p, "GET", "/echo?q=1", [(b"User-Agent", b"rec/1"), (b"X-Order", b"a")]),
        record(
            h,
            p,
            "POST",
            "/echo",
            [(b"Content-Type", b"application/json"), (b"Content-Length", b"9")],
            b'{"a": 1}\n',
        ),
        record(h, p, "PUT", "/status/204", [(b"x-lower", b"v")], b"\x00\x01binary\xff"),
        record(h, p, "GET", "/bytes/3000"),
    ]
    session = tmp_path / "s.db"
    write_session(session, flows)
    return session, flows


def test_replay_sends_each_request_as_recorded_and_matches(tmp_path, echo_server, fresh_echo):
    session, flows = _recorded_session(tmp_path, echo_server)
    result = run_inspector("replay", session, "--target", fresh_echo.url, "--keep-host")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(flows) + 1
    for line, flow in zip(lines, flows, strict=False):
        assert line.startswith(
            f"[replay] {flow.request.method} {fresh_echo.url}{flow.request.path} -> "
        )
    assert lines[-1] == "replayed 4 of 4: 4 match, 0 differ, 0 errors"
    for got, flow in zip(fresh_echo.received, flows, strict=True):
        assert (got.method, got.path) == (flow.request.method, flow.request.path)
        sent = [(n.decode(), v.decode("latin-1")) for n, v in flow.request.headers]
        expected = [kv for kv in sent if kv[0].lower() != "content-length"]
        if flow.request.body.data:
            expected.append(("Content-Length", str(len(flow.request.body.data))))
        assert sorted(got.headers) == sorted(expected)
        assert [n for n, _ in got.headers if n != "Content-Length"] == [
            n for n, _ in expected if n != "Content-Length"
        ]
        assert got.body == flow.request.body.data
    # Every replay was recorded in the session, pointing at its original.
    stored = read_session(session)
    replays = [f for f in stored if f.replay_of]
    assert [f.replay_of for f in replays] == [f.id for f in flows]
    assert {f.mode for f in replays} == {"replay"}
    # A second run replays the originals again, not the recorded replays.
    again = run_inspector("replay", session, "--target", fresh_echo.url, "--keep-host")
    assert again.stdout.splitlines()[-1] == "replayed 4 of 4: 4 match, 0 differ, 0 errors"


def test_host_follows_the_target_and_diff_shows_it(tmp_path, echo_server, fresh_echo):
    flow = record(echo_server.host, echo_server.port, "GET", "/echo")
    session = tmp_path / "s.db"
    write_session(session, [flow])
    result = run_inspector("replay", session, "--target", fresh_echo.url, "--diff")
    assert result.returncode == 1, result.stderr
    assert fresh_echo.received[0].headers[0] == ("Host", f"127.0.0.1:{fresh_echo.port}")
    assert (
        f'    $.headers[0][1]: "127.0.0.1:{echo_server.port}" -> "127.0.0.1:{fresh_echo.port}"'
        in (result.stdout.splitlines())
    )


def test_diff_against_a_changed_upstream(tmp_path):
    before = JsonServer(200, {"items": [{"id": 1, "price": 10}], "total": 10}, [("X-Version", "1")])
    after = JsonServer(
        201, {"items": [{"id": 1, "price": 12}], "currency": "EUR"}, [("X-Version", "2")]
    )
    try:
        flows = [record("127.0.0.1", before.port, "GET", "/cart")]
        session = tmp_path / "s.db"
        write_session(session, flows)
        result = run_inspector("replay", session, "--target", after.url, "--diff")
        plain = run_inspector("replay", session, "--target", after.url)
        ignoring = run_inspector(
            "replay", session, "--target", before.url, "--diff", "--ignore-header", "x-version"
        )
    finally:
        before.close()
        after.close()
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"[replay] GET {after.url}/cart -> 201 Created")
    assert lines[0].endswith("(recorded 200 OK)")
    assert lines[1:6] == [
        "    status: 200 OK -> 201 Created",
        "    header ~ X-Version: 1 -> 2",
        "    $.items[0].price: 10 -> 12",
        "    $.total: - 10",
        '    $.currency: + "EUR"',
    ]
    assert lines[-1] == "replayed 1 of 1: 0 match, 1 differ, 0 errors"
    assert plain.returncode == 1
    assert plain.stdout.splitlines()[0].endswith("[differs: status, headers, body]")
    assert ignoring.returncode == 0, ignoring.stdout


def test_connection_failures_are_reported_and_the_run_continues(tmp_path, echo_server):
    flows = [make_flow("127.0.0.1", 9, "GET", f"/n{i}") for i in range(2)]
    cut = make_flow(echo_server.host, echo_server.port, "POST", "/echo", request_body=b"ab")
    cut.request.body = body(b"ab", size=9_000_000)
    tunnel = make_flow("example.com", 443, "CONNECT", "example.com:443")
    fine = make_flow(echo_server.host, echo_server.port, "GET", "/", response_body=b"hello")
    session = tmp_path / "s.db"
    write_session(session, [*flows, cut, tunnel, fine])
    port = closed_port()
    result = run_inspector("replay", session, "--target", f"http://127.0.0.1:{port}")
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"[replay] GET http://127.0.0.1:{port}/n0 -> "
        "ERROR ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert lines[2].startswith(
        f"POST http://127.0.0.1:{echo_server.port}/echo -> ERROR cannot replay:"
    )
    assert "capture again with a larger --body-limit" in lines[2]
    assert lines[3] == "CONNECT example.com:443 -> skipped: CONNECT tunnels are not replayed"
    assert lines[-1] == "replayed 4 of 5: 0 match, 0 differ, 4 errors, 1 skipped"
    assert "Traceback" not in result.stderr
    # Without --target the good one still matches, and the run still ends in errors.
    direct = run_inspector("replay", session, "--filter", "~u /echo|~u /$")
    assert direct.returncode == 2
    assert direct.stdout.splitlines()[-1] == "replayed 2 of 2: 1 match, 0 differ, 1 errors"


def test_into_records_elsewhere(tmp_path, echo_server):
    session, flows = _recorded_session(tmp_path, echo_server)
    other = tmp_path / "other.db"
    result = run_inspector("replay", session, "--into", other, "--filter", "~m GET")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(read_session(session)) == len(flows)
    replays = read_session(other)
    gets = [f for f in flows if f.request.method == "GET"]
    assert [f.replay_of for f in replays] == [f.id for f in gets]
    assert all(f.response is not None for f in replays)


def test_concurrency_and_rate_keep_capture_order(tmp_path, echo_server):
    flows = [
        record(echo_server.host, echo_server.port, "GET", f"/status/{200 + i}") for i in range(20)
    ]
    session = tmp_path / "s.db"
    write_session(session, flows)
    result = run_inspector("replay", session, "--concurrency", "5", "--rate", "200")
    assert result.returncode == 0, result.stdout
    paths = [line.split()[2] for line in result.stdout.splitlines()[:-1]]
    assert paths == [f.request.url for f in flows]
    assert len(echo_server.received) == 40  # 20 recorded, 20 replayed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--filter", "~q ("], "bad --filter '~q (': expected a filter at position 4"),
        (["--target", "ftp://x"], "bad --target URL 'ftp://x'"),
        (["--concurrency", "0"], "bad --concurrency 0"),
        (["--rate", "-1"], "--rate: must be greater than 0, got '-1'"),
        (["--rate", "nan"], "--rate: must be greater than 0, got 'nan'"),
        (["--timeout", "nan"], "--timeout: must be greater than 0, got 'nan'"),
        (
            ["--upstream-ca", "/nonexistent/ca.pem"],
            "--upstream-ca: /nonexistent/ca.pem: no such file",
        ),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, args, message):
    session = tmp_path / "s.db"
    write_session(session, [make_flow("127.0.0.1", 9)])
    result = run_inspector("replay", session, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_or_bogus_session(tmp_path):
    result = run_inspector("replay", tmp_path / "nope.db")
    assert result.returncode == 2
    assert f"session file {tmp_path / 'nope.db'} does not exist" in result.stderr
    bogus = tmp_path / "bogus.db"
    bogus.write_text("not a database")
    result = run_inspector("replay", bogus)
    assert result.returncode == 2
    assert str(bogus) in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_stops_cleanly_with_a_summary(tmp_path, echo_server):
    flows = [make_flow(echo_server.host, echo_server.port, "GET", f"/n{i}") for i in range(40)]
    session = tmp_path / "s.db"
    write_session(session, flows)
    root = Path(__file__).parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "inspector", "replay", str(session), "--rate", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=root,
        env=dict(os.environ, PYTHONPATH=str(root), PYTHONUNBUFFERED="1"),
    )
    try:
        deadline = time.monotonic() + 30
        seen = b""
        while seen.count(b"\n") < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                seen += os.read(proc.stdout.fileno(), 4096)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = (seen + out).decode().splitlines()
    assert proc.returncode == 130, err
    summary = lines[-1]
    assert summary.startswith("replayed ")
    assert summary.endswith("; interrupted")
    done = int(summary.split()[1])
    assert 2 <= done < 40
    assert len(lines) == done + 1
    assert b"Traceback" not in err
    stored = [f for f in read_session(session) if f.replay_of]
    assert len(stored) == done


def test_https_replay_verifies_with_upstream_ca(tmp_path, tls_echo_server, upstream_ca_file):
    flow = make_flow("localhost", tls_echo_server.port, "GET", "/", scheme="https")
    session = tmp_path / "s.db"
    write_session(session, [flow])
    trusted = run_inspector("replay", session, "--upstream-ca", upstream_ca_file)
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert trusted.stdout.startswith(
        f"[replay] GET https://localhost:{tls_echo_server.port}/ -> 200"
    )
    untrusted = run_inspector("replay", session)
    assert untrusted.returncode == 2
    assert "ERROR SSLCertVerificationError: " in untrusted.stdout
    # The same hint as the proxy's, naming replay's own options.
    assert "add its CA with --upstream-ca FILE, or skip verification with --insecure" in (
        untrusted.stdout
    )
    insecure = run_inspector("replay", session, "--insecure")
    assert insecure.returncode == 0


def test_progress_goes_to_stderr_only_on_a_tty(tmp_path, echo_server):
    flows = [
        record(echo_server.host, echo_server.port, "GET", f"/status/{200 + i}") for i in range(3)
    ]
    session = tmp_path / "s.db"
    write_session(session, flows)
    root = Path(__file__).parents[1]
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "inspector", "replay", str(session)],
            stdout=subprocess.PIPE,
            stderr=follower,
            cwd=root,
            env=dict(os.environ, PYTHONPATH=str(root)),
            timeout=60,
        )
        os.close(follower)
        follower = -1
        tty_text = b""
        while select.select([leader], [], [], 0.5)[0]:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            tty_text += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    assert b"replaying" in tty_text and b"3/3" in tty_text  # rich's bar, counting
    assert b"\x1b" not in proc.stdout and b"replaying" not in proc.stdout
    assert proc.stdout.decode().splitlines()[-1] == "replayed 3 of 3: 3 match, 0 differ, 0 errors"
    plain = run_inspector("replay", session)
    assert "replaying" not in plain.stderr


def test_ctrl_c_cuts_a_hung_request_short(tmp_path, raw_server):
    got_request, release = threading.Event(), threading.Event()

    def hang(conn):
        read_request_head(conn)
        got_request.set()
        release.wait(60)

    server = raw_server(hang)
    session = tmp_path / "s.db"
    write_session(session, [make_flow("127.0.0.1", server.port, "GET", f"/h{i}") for i in range(3)])
    root = Path(__file__).parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "inspector", "replay", str(session), "--timeout", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=root,
        env=dict(os.environ, PYTHONPATH=str(root)),
    )
    try:
        assert got_request.wait(30)
        proc.send_signal(signal.SIGINT)
        # It ends on the signal, long before the 120 s read timeout would have.
        out, err = proc.communicate(timeout=30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert out.decode().splitlines() == [
        "replayed 0 of 3: 0 match, 0 differ, 0 errors; interrupted"
    ]
    assert b"Traceback" not in err
