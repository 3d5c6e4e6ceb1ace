"""The top-level `inspector` command: finding the subcommands, and a mistyped one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from inspector.cli import SUBCOMMANDS

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "inspector", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


def test_help_lists_every_command_with_what_it_does():
    out = run("--help")
    assert out.returncode == 0
    listed = out.stdout.split("commands:", 1)[1]
    for name in SUBCOMMANDS:
        assert f"\n  {name} " in listed
    assert "Browse a saved session" in listed
    assert "inspector COMMAND --help" in listed


def test_mistyped_command_suggests_the_close_one_and_starts_nothing():
    out = run("shwo", "session.db")
    assert out.returncode == 2
    assert "unknown command 'shwo' (did you mean 'show'?)" in out.stderr
    assert "commands: dump, run, env, show, replay, export, import, ca" in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


def test_unrelated_word_lists_the_commands_without_a_guess():
    out = run("frobnicate")
    assert out.returncode == 2
    assert "unknown command 'frobnicate';" in out.stderr
    assert "did you mean" not in out.stderr


def test_a_session_file_given_alone_points_to_show(tmp_path: Path):
    session = tmp_path / "capture.db"
    session.write_bytes(b"")
    out = run(str(session))
    assert out.returncode == 2
    assert f"to browse a saved session: inspector show {session}" in out.stderr


def test_options_alone_still_reach_the_proxy_parser():
    out = run("--listen-port", "notaport")
    assert out.returncode == 2
    assert "expected a port 0-65535, got 'notaport'" in out.stderr


def test_show_without_a_file_lists_the_latest_recordings(tmp_path: Path):
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    for stamp in ("20261124-090000", "20261125-120000", "20261126-080000", "20261126-093000"):
        (sessions / f"{stamp}.db").write_bytes(b"")
    out = run("show", "--confdir", str(tmp_path))
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "inspector: error: inspector show needs a session file; the latest recordings:",
        f"  inspector show {sessions / '20261126-093000.db'}",
        f"  inspector show {sessions / '20261126-080000.db'}",
        f"  inspector show {sessions / '20261125-120000.db'}",
    ]


def test_show_lists_a_second_recording_of_the_same_second_as_the_later(tmp_path: Path):
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    for name in ("20261126-093000-2", "20261126-093000", "20261126-092959", "20261126-093000-10"):
        (sessions / f"{name}.db").write_bytes(b"")
    out = run("show", "--confdir", str(tmp_path))
    assert out.stderr.splitlines()[1:] == [
        f"  inspector show {sessions / name}.db"
        for name in ("20261126-093000-10", "20261126-093000-2", "20261126-093000")
    ]


def test_show_without_a_file_or_recordings_says_how_to_record(tmp_path: Path):
    out = run("show", "--confdir", str(tmp_path))
    assert out.returncode == 2
    assert "needs a session file (record one with `inspector dump`)" in out.stderr
