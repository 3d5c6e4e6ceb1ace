"""Exports stream from the store: flat memory at 100,000 flows, a progress bar on a terminal
only, and a reader that stops early (`| head`) ends the export quietly with status 0."""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.flow import Flow, new_flow_id
from inspector.store import Store
from tests.cli_fixtures import inspector_command, inspector_env
from tests.replay_fixtures import make_flow
from tests.servers import EchoServer

BIG = 100_000
SMALL = 10_000


def _flow() -> Flow:
    body = b'{"name": "' + b"v" * 400 + b'"}'
    return make_flow(
        "127.0.0.1", 9000, "POST", "/items", [(b"Content-Type", b"application/json")], body
    )


def _session(path: Path, n: int) -> Path:
    template = _flow()
    with Store(path) as store:
        for _ in range(n):
            store.put(dataclasses.replace(template, id=new_flow_id()))
        store.flush()
    return path


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("stream")
    return {n: _session(root / f"s{n}.db", n) for n in (SMALL, BIG)}


MEASURE = """\
import resource, subprocess, sys
with open(sys.argv[1], "wb") as sink:
    done = subprocess.run(sys.argv[2:], stdout=sink)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _export_peak_kib(session: Path, fmt: str, out: Path) -> int:
    """Peak resident memory (KiB) of `inspector export` writing the whole session to a file."""
    cmd = [*inspector_command(), "export", str(session), "--format", fmt]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(out), *cmd],
        capture_output=True, text=True, timeout=600, env=inspector_env(),
    )  # fmt: skip
    status, peak = done.stdout.split()
    assert status == "0", done.stderr
    return int(peak)


@pytest.mark.parametrize("fmt", ["har", "pytest"])
def test_memory_stays_flat_from_10_000_to_100_000_flows(
    fmt: str, sessions: dict[int, Path], tmp_path: Path
) -> None:
    small = _export_peak_kib(sessions[SMALL], fmt, tmp_path / "small.out")
    big = _export_peak_kib(sessions[BIG], fmt, tmp_path / "big.out")
    # Ten times the flows (~90 MB more output) in about the same memory: one flow at a time.
    assert big - small < 16 * 1024, (small, big)
    if fmt == "har":
        doc = json.loads((tmp_path / "big.out").read_bytes())
        assert len(doc["log"]["entries"]) == BIG
    else:
        assert (tmp_path / "big.out").read_text().count("'method': 'POST'") == BIG


def test_closed_stdout_ends_quietly_with_status_0(sessions: dict[int, Path]) -> None:
    for fmt in ("raw", "har", "curl"):
        proc = subprocess.Popen(
            [*inspector_command(), "export", str(sessions[BIG]), "--format", fmt],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=inspector_env(),
        )  # fmt: skip
        assert proc.stdout is not None
        first = proc.stdout.read(4096)  # what `head` reads, then it goes away
        proc.stdout.close()
        _, err = proc.communicate(timeout=120)
        assert first
        assert proc.returncode == 0, err
        assert err == b"", err


def test_progress_bar_only_on_a_terminal(sessions: dict[int, Path], tmp_path: Path) -> None:
    out = tmp_path / "small.har"
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [*inspector_command(), "export", str(sessions[SMALL]), "--format", "har", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=secondary, env=inspector_env(TERM="xterm"),
    )  # fmt: skip
    os.close(secondary)
    shown = bytearray()
    while True:
        ready, _, _ = select.select([primary], [], [], 60)
        assert ready, "no output from inspector export within 60 s"
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal's other end closed: the process is done
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert proc.wait(timeout=60) == 0
    text = shown.decode(errors="replace")
    assert "exporting" in text and f"/{SMALL}" in text  # the bar, counting to the total
    assert f"exported {SMALL} exchanges to {out}" in text
    # Without a terminal: the summary line alone, no control codes.
    piped = subprocess.run(
        [*inspector_command(), "export", str(sessions[SMALL]), "--format", "raw", "-o", str(out)],
        capture_output=True, text=True, timeout=120, env=inspector_env(),
    )  # fmt: skip
    assert piped.returncode == 0
    assert piped.stderr == f"inspector: exported {SMALL} exchanges to {out}\n"


def test_replay_into_a_closed_stdout_ends_quietly_with_status_0(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    template = make_flow(echo_server.host, echo_server.port, "GET", "/status/200")
    session = tmp_path / "replay.db"
    with Store(session) as store:
        for _ in range(300):
            store.put(dataclasses.replace(template, id=new_flow_id()))
        store.flush()
    proc = subprocess.Popen(
        [*inspector_command(), "replay", str(session)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=inspector_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert first.startswith(f"[replay] GET {echo_server.url}/status/200 -> 200 OK".encode())
    assert proc.returncode == 0, err
    assert b"Traceback" not in err
