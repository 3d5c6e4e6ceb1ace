"""Opening a session file: checks with clear errors, the write connection, a pool of readers.

Reading calls borrow a read-only connection from a small pool (SQLite connections must
not be used by two threads at once) and read one consistent snapshot. WAL lets readers
run while the writer writes, also from other processes. Durability: WAL with
``synchronous=NORMAL``, so a committed flow survives the process being killed (an OS
crash may lose the last commits, never the file). A read-only open of an older file
reads a migrated temporary copy and leaves the file as it is.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from inspector.filters import register_sql_functions
from inspector.store.errors import StoreError
from inspector.store.migrations import prepare
from inspector.store.schema import SCHEMA_VERSION

BUSY_TIMEOUT = 5.0  # seconds a write waits for another process's lock before failing
IDLE_READERS = 4  # read connections kept open for reuse
SQLITE_MAGIC = b"SQLite format 3\x00"
_NOT_A_SESSION = "pick a session file recorded by inspector, or a new path to record to"


class _OldSchema(Exception):
    """A read-only open found a file of an older schema (it is read via a migrated copy)."""


def fail(path: Path, problem: str, advice: str) -> StoreError:
    """The StoreError for ``path``: what is wrong, then what to do."""
    return StoreError(f"{path}: {problem}; {advice}")


def check_readable(path: Path) -> None:
    """StoreError unless ``path`` is a readable SQLite file."""
    if path.is_dir():
        raise fail(path, "is a directory, not a session file", "give a session file path")
    if not path.exists():
        raise fail(
            path,
            "no such session file",
            "check the path (sessions are recorded under ~/.inspector/sessions by default)",
        )
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as e:
        raise fail(path, f"cannot read it ({e.strerror})", "check its permissions") from None
    if head != SQLITE_MAGIC:
        raise fail(path, "not an http-inspector session (not an SQLite database)", _NOT_A_SESSION)


def schema_version(conn: sqlite3.Connection, path: Path) -> int | None:
    """The file's schema version, or None for an empty database; StoreError if foreign."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return None
    if "meta" not in tables:
        raise fail(
            path,
            "is an SQLite database but not an http-inspector session (no meta table)",
            _NOT_A_SESSION,
        )
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None or not str(row[0]).isdigit():
        raise fail(
            path,
            "is an SQLite database but not an http-inspector session (no schema version)",
            "pick a session file recorded by inspector",
        )
    version = int(row[0])
    if version > SCHEMA_VERSION:
        raise fail(
            path,
            f"was written by a newer http-inspector (schema {version}; this one reads up "
            f"to {SCHEMA_VERSION})",
            "upgrade http-inspector to open it",
        )
    return version


def open_for_writing(path: Path, shown: Path | None = None) -> sqlite3.Connection:
    """The write connection to ``path`` (created if missing), its schema current.

    ``shown`` is the path errors name (the user's file when ``path`` is a copy of it).
    """
    shown = shown or path
    if path.exists() and path.stat().st_size > 0:
        check_readable(path)
    elif path.is_dir():
        raise fail(shown, "is a directory, not a session file", "give a session file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as e:
        raise fail(shown, f"cannot create or open it ({e})", "check the directory") from None
    try:
        version = schema_version(conn, shown)  # before any change to a file that is not ours
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        prepare(conn, version)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise fail(shown, f"not a usable http-inspector session ({e})", _NOT_A_SESSION) from None
    except StoreError:
        conn.close()
        raise
    return conn


class Readers:
    """A pool of read-only connections to one session file, for any thread."""

    def __init__(self, path: Path, *, validate: bool = False) -> None:
        self.path = path  # the file errors name
        self._db_path = path  # the file read: a migrated copy for an old file
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._search_lock = threading.Lock()
        self._search_conn: sqlite3.Connection | None = None
        self._closed = False
        if validate:  # open one now: errors surface here, not at the first read
            check_readable(path)
            try:
                self._idle.append(self._open())
            except _OldSchema:
                self._read_migrated_copy()

    def _read_migrated_copy(self) -> None:
        """Read an old file through a migrated temporary copy, leaving the file untouched."""
        self._tmpdir = tempfile.TemporaryDirectory(prefix="inspector-migrated-")
        copy = Path(self._tmpdir.name) / self.path.name
        source = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        open_for_writing(copy, shown=self.path).close()  # migrates the copy
        self._db_path = copy
        self._idle.append(self._open())

    def _open(self) -> sqlite3.Connection:
        uri = f"{self._db_path.resolve().as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            version = schema_version(conn, self.path)
        except sqlite3.DatabaseError as e:
            raise fail(
                self.path,
                f"not a usable http-inspector session ({e})",
                "pick a session file recorded by inspector",
            ) from None
        if version != SCHEMA_VERSION:
            conn.close()
            if version is None:
                raise fail(self.path, "is empty", "pick a session file recorded by inspector")
            raise _OldSchema(version)
        register_sql_functions(conn)
        return conn

    @contextmanager
    def searching(self) -> Iterator[sqlite3.Connection]:
        """The one connection searches read through, one search at a time: its temporary
        index of the flows not yet indexed (search.py) is built once, not per connection."""
        with self._search_lock:
            with self._lock:
                if self._closed:
                    raise StoreError(f"{self.path}: the session store is closed")
            if self._search_conn is None:
                self._search_conn = self._open()
            conn = self._search_conn
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
                if self._closed:  # closed meanwhile: the last user closes it
                    self._search_conn = None
                    conn.close()

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection for this thread's exclusive use while the block runs."""
        with self._lock:
            if self._closed:
                raise StoreError(f"{self.path}: the session store is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
        try:
            conn.execute("BEGIN")  # one snapshot for the whole block
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        finally:
            with self._lock:
                keep = not self._closed and len(self._idle) < IDLE_READERS
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    @property
    def idle(self) -> int:
        """How many connections wait in the pool."""
        return len(self._idle)

    def close(self) -> None:
        """Close the idle connections; borrowed ones close when given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        if self._search_lock.acquire(blocking=False):  # else the search under way closes it
            try:
                if self._search_conn is not None:
                    self._search_conn.close()
                    self._search_conn = None
            finally:
                self._search_lock.release()

    def cleanup(self) -> None:
        """Remove the migrated copy, if one was read."""
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
