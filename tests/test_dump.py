"""``inspector dump`` as a real subprocess: lines, --filter, -q, clean stops and crashes."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from inspector.store import Store
from tests.conftest import needs_ipv6
from tests.proxy_process import ProxyProcess
from tests.servers import EchoServer

ROOT = Path(__file__).parents[1]


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed


def fetch(proxy: ProxyProcess, url: str) -> int:
    return requests.get(url, proxies={"http": proxy.url}, timeout=15).status_code


def stored(session: Path) -> list:  # type: ignore[type-arg]
    with Store(session, readonly=True) as store:
        return list(store.iter_flows())


def test_one_line_per_exchange_and_per_error(tmp_path: Path, echo_server: EchoServer) -> None:
    proxy = ProxyProcess(tmp_path)
    port = dead_port()
    assert fetch(proxy, f"{echo_server.url}/status/404") == 404
    assert fetch(proxy, f"http://127.0.0.1:{port}/x") == 502
    out, err = proxy.stop()
    assert proxy.proc.returncode == 0
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"GET {echo_server.url}/status/404 -> 404 Not Found  11 B  ")
    assert lines[0].endswith(" ms")
    assert lines[1] == (
        f"GET http://127.0.0.1:{port}/x -> ERROR ConnectionRefusedError: "
        "[Errno 111] Connection refused"
    )
    assert f"inspector: proxy listening on http://127.0.0.1:{proxy.port}" in err
    assert "Traceback" not in err


def test_filter_selects_printed_lines_but_everything_is_recorded(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    proxy = ProxyProcess(tmp_path, "--filter", "~c 404 | ~m POST")
    fetch(proxy, f"{echo_server.url}/status/200")
    fetch(proxy, f"{echo_server.url}/status/404")
    requests.post(f"{echo_server.url}/echo", data=b"x", proxies={"http": proxy.url}, timeout=15)
    out, _ = proxy.stop()
    assert [ln.split(" -> ")[0] for ln in out.splitlines()] == [
        f"GET {echo_server.url}/status/404",
        f"POST {echo_server.url}/echo",
    ]
    assert len(stored(proxy.session)) == 3


def test_quiet_prints_only_errors(tmp_path: Path, echo_server: EchoServer) -> None:
    proxy = ProxyProcess(tmp_path, "-q")
    port = dead_port()
    fetch(proxy, f"{echo_server.url}/status/200")
    fetch(proxy, f"http://127.0.0.1:{port}/")
    out, _ = proxy.stop()
    assert out.splitlines() == [
        f"GET http://127.0.0.1:{port}/ -> ERROR ConnectionRefusedError: "
        "[Errno 111] Connection refused"
    ]
    assert len(stored(proxy.session)) == 2


def run_dump(
    tmp_path: Path, *args: str, port: str = "0", session: str = "s.db"
) -> subprocess.CompletedProcess[str]:
    """Run ``inspector dump`` to completion (for start-up errors); its captured output."""
    return subprocess.run(
        [
            sys.executable, "-m", "inspector", "dump", "--listen-port", port,
            "--confdir", str(tmp_path / "conf"), "--session", str(tmp_path / session), *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )  # fmt: skip


def test_bad_filter_is_a_clear_error(tmp_path: Path) -> None:
    done = run_dump(tmp_path, "--filter", "~x nope")
    assert done.returncode == 2
    assert "error: argument --filter: bad --filter expression '~x nope': unknown operator ~x" in (
        done.stderr
    )
    assert "~x" in done.stderr and "Traceback" not in done.stderr


def test_intercept_needs_the_ui(tmp_path: Path) -> None:
    # Held flows would wait forever for a UI to release them (a bad expression given to
    # the UI is tests/test_tui_cli.py's case).
    done = run_dump(tmp_path, "--intercept", "~m GET")
    assert done.returncode == 2
    assert "`inspector dump` has none to release them: run `inspector --intercept EXPR`" in (
        done.stderr
    )
    assert "listening" not in done.stderr and "Traceback" not in done.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = str(busy.getsockname()[1])
        done = run_dump(tmp_path, port=port)
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_unsafe_ca_key_is_a_clear_error(tmp_path: Path) -> None:
    ProxyProcess(tmp_path).stop()  # creates the CA
    key = tmp_path / "conf" / "ca-key.pem"
    key.chmod(0o644)
    done = run_dump(tmp_path, session="s2.db")
    assert done.returncode == 2
    assert done.stderr.startswith("inspector: error: ") and "chmod 600" in done.stderr


def test_insecure_warns(tmp_path: Path) -> None:
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "inspector",
                "dump",
                "--listen-port",
                "0",
                "--insecure",
                "--confdir",
                str(tmp_path / "conf"),
                "--session",
                str(tmp_path / "s.db"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=ROOT,
        )
        try:
            deadline = time.monotonic() + 30
            while "warning" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(15)
    text = log.read_text()
    assert "inspector: proxy listening on http://127.0.0.1:" in text
    assert "inspector: warning: --insecure: upstream certificates are not verified" in text
    assert proc.returncode == 0


@needs_ipv6
def test_ipv6_listen_line_has_brackets(tmp_path: Path, echo_server: EchoServer) -> None:
    proxy = ProxyProcess(tmp_path, "--listen-host", "::1")
    assert proxy.host == "::1"
    status = requests.get(
        f"{echo_server.url}/status/200", proxies={"http": f"http://[::1]:{proxy.port}"}, timeout=15
    ).status_code
    _, err = proxy.stop()
    assert status == 200
    assert f"inspector: proxy listening on http://[::1]:{proxy.port}" in err


def test_sigint_flushes_every_flow_including_in_flight(
    tmp_path: Path, echo_server: EchoServer, raw_server
) -> None:  # type: ignore[no-untyped-def]
    arrived = threading.Event()

    def never_answers(conn: socket.socket) -> None:
        conn.recv(65536)
        arrived.set()
        conn.recv(1)  # until the proxy lets go

    hanging = raw_server(never_answers)
    proxy = ProxyProcess(tmp_path)
    for i in range(20):
        fetch(proxy, f"{echo_server.url}/status/{200 + i}")
    stuck = socket.create_connection((proxy.host, proxy.port), timeout=15)
    stuck.sendall(f"GET {hanging.url}/stuck HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert arrived.wait(10)  # the request is in flight upstream
    out, _ = proxy.stop(signal.SIGINT)
    stuck.close()
    assert proxy.proc.returncode == 0
    lines = out.splitlines()
    assert len(lines) == 21
    assert lines[-1] == (
        f"GET {hanging.url}/stuck -> ERROR ProxyShutdown: "
        "the proxy shut down before the exchange finished"
    )
    flows = stored(proxy.session)
    done = sorted(f.response.status_code for f in flows if f.response)  # type: ignore[union-attr]
    assert done == [200 + i for i in range(20)]
    (cut,) = [f for f in flows if f.error is not None]
    assert (cut.error.exc_class, cut.error.phase) == ("ProxyShutdown", "status line")


def test_sigterm_is_a_clean_stop_too(tmp_path: Path, echo_server: EchoServer) -> None:
    proxy = ProxyProcess(tmp_path)
    fetch(proxy, f"{echo_server.url}/status/200")
    proxy.stop(signal.SIGTERM)
    assert proxy.proc.returncode == 0
    assert len(stored(proxy.session)) == 1


@pytest.mark.timeout(60)
def test_kill_9_keeps_every_finished_flow(tmp_path: Path, echo_server: EchoServer) -> None:
    proxy = ProxyProcess(tmp_path)
    for i in range(25):
        fetch(proxy, f"{echo_server.url}/status/{200 + i}")
    # Every finished flow reaches the file within a short commit window.
    deadline = time.monotonic() + 10
    count = 0
    while time.monotonic() < deadline and count < 25:
        with Store(proxy.session, readonly=True) as store:
            count = store.count()
        time.sleep(0.05)
    os.kill(proxy.proc.pid, signal.SIGKILL)
    proxy.proc.wait(10)
    assert count == 25
    conn = sqlite3.connect(proxy.session)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    flows = stored(proxy.session)
    assert sorted(f.response.status_code for f in flows) == [200 + i for i in range(25)]  # type: ignore[union-attr]


def test_warning_for_a_non_loopback_address() -> None:
    import io

    from inspector.config import Config
    from inspector.runtime import announce

    out = io.StringIO()
    announce("0.0.0.0", 8080, Config(), out)
    text = out.getvalue()
    assert text.startswith("inspector: proxy listening on http://0.0.0.0:8080\n")
    assert "warning: listening on 0.0.0.0, not loopback" in text
    quiet = io.StringIO()
    announce("::1", 8080, Config(), quiet)
    assert quiet.getvalue() == "inspector: proxy listening on http://[::1]:8080\n"


def test_start_up_says_where_it_records_and_names_a_ca_made_just_now(tmp_path: Path) -> None:
    first = ProxyProcess(tmp_path)
    _, err = first.stop()
    lines = err.splitlines()
    assert lines[0] == f"inspector: proxy listening on http://127.0.0.1:{first.port}"
    assert lines[1] == f"inspector: recording to {first.session}"
    ca = first.confdir / "ca.pem"
    assert lines[2] == (
        f"inspector: created a local CA, {ca}: trust it to intercept HTTPS "
        "(`inspector ca` shows how)"
    )
    again = ProxyProcess(tmp_path)  # the same confdir: the CA is already there
    _, err = again.stop()
    assert f"inspector: recording to {again.session}" in err
    assert "created a local CA" not in err
