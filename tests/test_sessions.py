"""Opening a session file: show, export, replay and the UI say the same about the same file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from inspector.config import ConfigError
from inspector.sessions import check_new_session, open_session
from inspector.store import SCHEMA_VERSION, Store
from inspector.tui.app import run_show
from tests.replay_fixtures import run_inspector


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.db"


def _directory(tmp_path: Path) -> Path:
    (tmp_path / "sessions").mkdir()
    return tmp_path / "sessions"


def _not_sqlite(tmp_path: Path) -> Path:
    path = tmp_path / "notes.db"
    path.write_text("shopping list\n")
    return path


def _foreign_sqlite(tmp_path: Path) -> Path:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.commit()
    conn.close()
    return path


def _newer(tmp_path: Path) -> Path:
    path = tmp_path / "future.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(
        "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
    )
    conn.commit()
    conn.close()
    return path


BAD_FILES = {
    "missing": (_missing, "does not exist (record one with `inspector` or `inspector dump`)"),
    "directory": (_directory, "is a directory, not a session file; give a session file path"),
    "not sqlite": (_not_sqlite, "not an http-inspector session (not an SQLite database)"),
    "foreign": (_foreign_sqlite, "not an http-inspector session (no meta table)"),
    "newer": (_newer, f"newer http-inspector (schema {SCHEMA_VERSION + 1}; this one reads up to"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_every_command_says_the_same_about_a_bad_session(tmp_path: Path, case: str) -> None:
    make, says = BAD_FILES[case]
    path = make(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for command in (["show"], ["export", "--format", "curl"], ["replay"]):
        result = run_inspector(command[0], path, *command[1:])
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.startswith("inspector: error: "), (command, result.stderr)
        assert str(path) in result.stderr and says in result.stderr, (command, result.stderr)
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing was created
    if case == "foreign":
        conn = sqlite3.connect(path)  # nor changed: replay opens for writing, and refuses first
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        conn.close()


def test_the_ui_opener_raises_the_same_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _not_sqlite(tmp_path)
    with pytest.raises(ConfigError) as raised:
        open_session(path)
    assert run_show(path) == 2
    assert capsys.readouterr().err == f"inspector: error: {raised.value}\n"


def test_a_new_session_needs_its_directory(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "s.db"
    with pytest.raises(ConfigError, match=r"cannot create .*s\.db: directory .*dir does not exist"):
        check_new_session(target)
    with pytest.raises(ConfigError, match="does not exist"):
        open_session(target, create=True)
    store = open_session(tmp_path / "new.db", create=True)
    try:
        assert not store.readonly and store.count() == 0
    finally:
        store.close()
