"""``inspector import FILE.har -o SESSION``: turn a HAR file into a session.

The whole HAR is read and checked before anything is written; the session is built in
a temporary file next to the target and renamed into place only when complete, so a
bad HAR leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

from inspector.config import ConfigError
from inspector.export.har import HarError, flows_from_har
from inspector.export.progress import counted, progress
from inspector.flow import Flow
from inspector.sessions import check_new_session

_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def main(args: argparse.Namespace) -> int:
    har_path: Path = args.har.expanduser()
    target: Path = args.output.expanduser()
    if target.exists():
        raise ConfigError(f"{target} already exists: choose a new session file name")
    check_new_session(target)
    flows = read_har(har_path)
    write_session(flows, target)
    print(f"inspector: imported {len(flows)} exchanges into {target}", file=sys.stderr)
    return 0


def read_har(path: Path) -> list[Flow]:
    """The flows of the HAR file at ``path``, or ConfigError saying what is wrong."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        doc = json.loads(text)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not a HAR file: not UTF-8 text ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{path} is not a HAR file: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    try:
        return flows_from_har(doc)
    except HarError as e:
        raise ConfigError(f"{path}: {e}") from None


def write_session(flows: list[Flow], target: Path) -> None:
    """Write ``flows`` into a new session at ``target``, atomically."""
    from inspector.store import Store  # only once the HAR has been read and checked

    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".importing", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # the store creates its own file; mkstemp only reserved a unique name
    try:
        store = Store(tmp)
        try:
            with progress(len(flows), "importing") as advance:
                for flow in counted(flows, advance):
                    store.put(flow)
                store.flush()
        finally:
            store.close()
        _checkpoint(tmp)
        if target.exists():
            raise ConfigError(f"{target} appeared while importing: not overwriting it")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_side_files(tmp)
        raise


def _checkpoint(db: Path) -> None:
    """Fold the WAL into the database file so that renaming the file moves everything."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()  # the last connection to close removes the -wal and -shm files
    for suffix in _SQLITE_SIDE_FILES:
        if Path(str(db) + suffix).exists():
            raise ConfigError(f"could not finish writing {db}: {suffix} file left by SQLite")


def _remove_side_files(db: Path) -> None:
    for suffix in _SQLITE_SIDE_FILES:
        Path(str(db) + suffix).unlink(missing_ok=True)
