"""A start that fails leaves nothing behind and says why in one line.

Each case runs the real ``inspector`` executable (``dump`` and the UI's ``inspector``)
in a subprocess with its own confdir and no ``--session``, so a session file would
be the dated default under ``confdir/sessions``, the one ``inspector show`` lists.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

INSPECTOR = shutil.which("inspector")


def _inspector(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [INSPECTOR] if INSPECTOR else [sys.executable, "-m", "inspector"]
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "INSPECTOR_CONFDIR": str(cwd / "default-confdir")},
    )


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        yield busy.getsockname()[1]


@dataclass(frozen=True)
class Start:
    name: str
    args: Callable[[Path, int], list[str]]  # (tmp dir, a busy port) -> arguments
    says: str  # in the one line printed
    prepare: Callable[[Path], None] = lambda tmp: None


def _sessions_is_a_file(tmp: Path) -> None:
    (tmp / "conf").mkdir()
    (tmp / "conf" / "sessions").write_text("not a directory\n")


def _confdir_under_a_file(tmp: Path) -> None:
    (tmp / "a-file").write_text("x\n")


def _not_a_ca_bundle(tmp: Path) -> None:
    (tmp / "notes.txt").write_text("not a certificate\n")


def _readonly_confdir(tmp: Path) -> None:
    (tmp / "conf").mkdir(mode=0o500)


STARTS = [
    Start(
        "dump-port-in-use",
        lambda tmp, port: ["dump", "--listen-port", str(port), "--confdir", str(tmp / "conf")],
        "Address already in use (another program holds it: pick another --listen-port",
    ),
    Start(
        "ui-port-in-use",
        lambda tmp, port: ["--listen-port", str(port), "--confdir", str(tmp / "conf")],
        "Address already in use",
    ),
    Start(
        "unknown-listen-host",
        lambda tmp, port: [
            "dump",
            "--listen-host",
            "no-such-host.invalid",
            "--confdir",
            str(tmp / "conf"),
        ],
        "(check --listen-host)",
    ),
    Start(
        "sessions-dir-is-a-file",
        lambda tmp, port: ["dump", "--listen-port", "0", "--confdir", str(tmp / "conf")],
        "cannot record to session",
        _sessions_is_a_file,
    ),
    Start(
        "confdir-under-a-file",
        lambda tmp, port: ["dump", "--listen-port", "0", "--confdir", str(tmp / "a-file" / "conf")],
        "is not a directory",
        _confdir_under_a_file,
    ),
    Start(
        "unknown-option",
        lambda tmp, port: ["dump", "--confdir", str(tmp / "conf"), "--no-such-option"],
        "unrecognized arguments: --no-such-option (`inspector dump --help` lists the options)",
    ),
    Start(
        "bad-port-value",
        lambda tmp, port: ["dump", "--confdir", str(tmp / "conf"), "--listen-port", "http"],
        "expected a port 0-65535, got 'http'",
    ),
    Start(
        "missing-option-value",
        lambda tmp, port: ["--confdir", str(tmp / "conf"), "--listen-port"],
        "--listen-port: expected one argument",
    ),
    Start(
        "empty-listen-host",
        lambda tmp, port: ["dump", "--confdir", str(tmp / "conf"), "--listen-host", ""],
        "--listen-host: empty address: give one, e.g. 127.0.0.1",
    ),
    Start(
        "upstream-ca-not-a-bundle",
        lambda tmp, port: ["dump", "--confdir", str(tmp / "conf"), "--upstream-ca", "notes.txt"],
        "--upstream-ca: notes.txt: not a CA bundle (PEM certificates)",
        _not_a_ca_bundle,
    ),
    Start(
        "read-timeout-nan",
        lambda tmp, port: ["dump", "--confdir", str(tmp / "conf"), "--read-timeout", "nan"],
        "--read-timeout: must be greater than 0, got 'nan'",
    ),
    Start(
        "script-is-a-directory",
        lambda tmp, port: ["dump", "--confdir", str(tmp / "conf"), "-s", str(tmp)],
        "is a directory, not a file",
    ),
    Start(
        "bad-mode",
        lambda tmp, port: ["dump", "--confdir", str(tmp / "conf"), "--mode", "sideways"],
        "sideways",
    ),
    Start(  # the path would be dropped without a word: /x went to /x, not /api/x
        "reverse-mode-with-a-path",
        lambda tmp, port: ["dump", "--mode", "reverse:http://127.0.0.1:9/api"],
        "bad reverse mode URL 'http://127.0.0.1:9/api': give only scheme://host[:port] "
        "(each request keeps its own path; --map-remote rewrites paths)",
    ),
]


@pytest.mark.parametrize("start", STARTS, ids=lambda s: s.name)
def test_a_failed_start_leaves_no_session_and_prints_one_line(
    start: Start, tmp_path: Path, busy_port: int
) -> None:
    start.prepare(tmp_path)
    done = _inspector(*start.args(tmp_path, busy_port), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("inspector") and ": error: " in lines[0]
    assert start.says in lines[0]
    assert "listening" not in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
    leftovers = [p for p in tmp_path.rglob("*") if p.suffix in (".db", ".db-wal", ".db-shm")]
    assert leftovers == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a read-only directory anyway")
def test_a_readonly_confdir_is_one_line_and_no_session(tmp_path: Path) -> None:
    _readonly_confdir(tmp_path)
    try:
        done = _inspector(
            "dump", "--listen-port", "0", "--confdir", str(tmp_path / "conf"), cwd=tmp_path
        )
    finally:
        (tmp_path / "conf").chmod(0o700)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert not list(tmp_path.rglob("*.db"))


def test_after_a_failed_start_show_lists_no_recording(tmp_path: Path, busy_port: int) -> None:
    conf = str(tmp_path / "conf")
    failed = _inspector("dump", "--listen-port", str(busy_port), "--confdir", conf, cwd=tmp_path)
    assert failed.returncode == 2
    assert not (tmp_path / "conf" / "sessions").exists() or not any(
        (tmp_path / "conf" / "sessions").iterdir()
    )
    listed = _inspector("show", "--confdir", conf, cwd=tmp_path)
    assert ".db" not in listed.stdout + listed.stderr
