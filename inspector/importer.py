"""``inspector import FILE.har -o SESSION``: turn a HAR file into a session.

The HAR is read one entry at a time (har_stream) and each flow written as it comes, so a
HAR of any size imports in the memory of one entry. The session is built in a temporary
file next to the target and renamed into place only when the whole HAR has been read and
checked: a bad entry, even the last, leaves nothing behind (the error names it).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from inspector.config import ConfigError
from inspector.export.har import HarError, flows_from_entries
from inspector.export.progress import progress
from inspector.flow import Flow, new_flow_id
from inspector.har_stream import JsonSyntaxError, har_entries
from inspector.sessions import check_new_session

if TYPE_CHECKING:
    from inspector.store import Store

_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
FLUSH_EVERY = 500  # flows queued for the store's writer at most: it writes slower than we read


def main(args: argparse.Namespace) -> int:
    har_path: Path = args.har.expanduser()
    target: Path = args.output.expanduser()
    if target.exists():
        raise ConfigError(f"{target} already exists: choose a new session file name")
    check_new_session(target)
    count = import_har(har_path, target)
    print(f"inspector: imported {count} exchanges into {target}", file=sys.stderr)
    return 0


def import_har(path: Path, target: Path) -> int:
    """Import the HAR file at ``path`` into a new session at ``target``; the flow count.

    ConfigError naming the file (and the entry) when it cannot be read or is not a HAR.
    """
    try:
        raw = path.open("rb")
        size = os.fstat(raw.fileno()).st_size
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    with raw, progress(size or None, "importing", unit="bytes") as advance:
        try:
            return write_session(flows_from_entries(har_entries(raw, advance)), target)
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path} is not a HAR file: not UTF-8 text ({e.reason})") from None
        except JsonSyntaxError as e:
            raise ConfigError(
                f"{path} is not a HAR file: invalid JSON at line {e.lineno} "
                f"column {e.colno}: {e.msg}"
            ) from None
        except HarError as e:
            raise ConfigError(f"{path}: {e}") from None
        except OSError as e:  # reading the HAR (the store reports its own errors)
            raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None


def write_session(flows: Iterable[Flow], target: Path) -> int:
    """Write ``flows`` into a new session at ``target``, atomically; how many there were."""
    from inspector.store import Store  # only once the HAR has been opened

    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".importing", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # the store creates its own file; mkstemp only reserved a unique name
    try:
        store = Store(tmp)
        try:
            count = _put_all(store, flows)
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
    return count


def _put_all(store: Store, flows: Iterable[Flow]) -> int:
    """Put every flow, a new id for one whose id is taken; a few hundred queued at most."""
    count = 0
    queued: set[str] = set()  # ids put since the last flush, not yet readable from the store
    for flow in flows:
        if flow.id in queued or store.get(flow.id) is not None:
            flow.id = new_flow_id()  # a HAR that repeats an entry, or two HARs joined
        store.put(flow)
        queued.add(flow.id)
        count += 1
        if len(queued) >= FLUSH_EVERY:
            store.flush()
            queued.clear()
    store.flush()
    return count


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
