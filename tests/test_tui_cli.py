"""`inspector` (proxy + TUI) as a user runs it: the real command in a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from inspector.store import Store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")

ROOT = Path(__file__).resolve().parent.parent


class Terminal:
    """A child process on a pseudo-terminal; collects everything it draws."""

    def __init__(self, argv: list[str]) -> None:
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "30"}
        env["PYTHONPATH"] = str(ROOT)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.chdir(ROOT)
            os.execvpe(sys.executable, [sys.executable, "-m", "inspector", *argv], env)
        self.output = b""

    def read_until(self, pattern: bytes, timeout: float = 15.0) -> re.Match[bytes]:
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.output)
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never appeared; got {self.output[-2000:]!r}")
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:  # the child closed the terminal
                    continue

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                self.pid = 0  # reaped: nothing left to kill
                return os.waitstatus_to_exitcode(status)
            try:
                self.read_until(b"\x00", timeout=0.1)
            except AssertionError:
                pass
        self.kill()
        raise AssertionError("the app did not exit")

    def kill(self) -> None:
        if self.pid:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
            os.close(self.fd)
            self.pid = 0


def test_inspector_runs_proxy_and_ui_until_quit(tmp_path: Path, echo_server):
    session = tmp_path / "s.db"
    term = Terminal(
        ["--listen-port", "0", "--confdir", str(tmp_path / "conf"), "--session", str(session)]
    )
    try:
        port = int(term.read_until(rb"proxy listening on http://127\.0\.0\.1:(\d+)").group(1))
        term.read_until(b"Waiting for traffic")
        proxy = urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"})
        try:
            urllib.request.build_opener(proxy).open(f"{echo_server.url}/status/404", timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code == 404
        term.read_until(b"404 Not Found")
        term.send(b"q")
        term.read_until(b"Quit\\?")
        term.send(b"y")
        assert term.wait() == 0
    finally:
        term.kill()
    store = Store(session, readonly=True)
    try:
        (flow,) = list(store.iter_flows())
        assert flow.request.path == "/status/404" and flow.response.status_code == 404
    finally:
        store.close()


def test_bad_option_is_a_clear_error_without_starting_the_ui(tmp_path: Path):
    term = Terminal(["--listen-port", "0", "--confdir", str(tmp_path), "--intercept", "~c 4O4"])
    try:
        term.read_until(b"bad --intercept expression")
        assert term.wait() == 2
    finally:
        term.kill()
    assert b"Traceback" not in term.output


def test_show_browses_a_saved_session(tmp_path: Path):
    from tests.tui_fixtures import build_session, sample_flows

    path = build_session(tmp_path / "saved.db", sample_flows())
    term = Terminal(["show", str(path)])
    try:
        term.read_until(rb"404 Not Found \(\"Nope\"\)")
        term.read_until(b"ConnectionRefusedError")
        term.send(b"q")
        term.read_until(b"Quit\\?")
        term.send(b"y")
        assert term.wait() == 0
    finally:
        term.kill()
