"""`replay` on a terminal: rich's bar on stderr, every result line intact above it, and
nothing but the lines on stdout when stdout is not the terminal."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.cli_fixtures import inspector_command, inspector_env, on_a_terminal
from tests.replay_fixtures import record, write_session
from tests.servers import EchoServer

FLOWS = 40
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _shown(screen: str) -> list[str]:
    """The lines a terminal keeps: on each, what the last carriage return left."""
    lines = []
    for line in screen.split("\n"):
        parts = [p for p in _ESCAPE.sub("", line).split("\r") if p]
        lines.append(parts[-1] if parts else "")
    return lines


def _session(tmp_path: Path, server: EchoServer) -> Path:
    # Long URLs: a result line wider than the terminal must not be cut or wrapped by the bar.
    path = "/echo/" + "p" * 90
    flows = [record(server.host, server.port, "GET", f"{path}?n={i}") for i in range(FLOWS)]
    session = tmp_path / "s.db"
    write_session(session, flows)
    return session


def test_replay_lines_show_above_the_bar_on_the_same_terminal(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    session = _session(tmp_path, echo_server)
    status, screen = on_a_terminal([*inspector_command(), "replay", str(session)])
    assert status == 0, screen
    assert "replaying" in screen and f"/{FLOWS}" in screen  # the bar, counting to the total
    # Each result line is written whole, on a line of its own (the bar is redrawn below it).
    lines = _shown(screen)
    for i in range(FLOWS):
        url = f"{echo_server.url}/echo/{'p' * 90}?n={i}"
        assert sum(line.startswith(f"[replay] GET {url} -> 200 OK") for line in lines) == 1, i
    assert f"replayed {FLOWS} of {FLOWS}: {FLOWS} match, 0 differ, 0 errors" in lines[-2:]


def test_replay_stdout_elsewhere_gets_the_lines_alone(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    session = _session(tmp_path, echo_server)
    done = subprocess.run(
        [*inspector_command(), "replay", str(session)],
        capture_output=True, text=True, timeout=120, env=inspector_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert len(lines) == FLOWS + 1 and all(line.startswith("[replay] GET ") for line in lines[:-1])
