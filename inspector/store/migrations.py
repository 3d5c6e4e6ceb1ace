"""Bringing a session file of an older layout to ``SCHEMA_VERSION``, in place, in one transaction.

Each migration takes the file from the version it is registered for and returns the
version it leaves it at: the next one when it alters tables in place, or
``SCHEMA_VERSION`` when it rebuilds them from the current layout (the later steps then
have nothing to do). To change the layout: change schema.py, raise ``SCHEMA_VERSION``,
and register a migration from the previous version here.

Version 3 had no ``flows.http_version`` (the record has it: HTTP/2 came on schema 3).
Version 2 had no ``flows.modified`` (rules and addons came later: no flow was changed).
Version 1 had no ``fts_indexed`` (every flow was indexed as it was written).
Version 0 (the prototype layout) was ``meta`` plus ``flows(id TEXT PRIMARY KEY,
seq INTEGER, flow TEXT)``, where ``flow`` is the version 1 record with ``marked``
and each body's bytes (latin-1 string ``data``) inline.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from inspector.store.record import REQUEST, RESPONSE, flow_from_record
from inspector.store.rows import flow_rows
from inspector.store.schema import SCHEMA_VERSION, create_schema, stamp_version
from inspector.store.tables import write_rows

Migration = Callable[[sqlite3.Connection], int]
MIGRATIONS: dict[int, Migration] = {}


def migrates_from(version: int) -> Callable[[Migration], Migration]:
    """Register the decorated function as the migration from ``version``."""

    def register(migration: Migration) -> Migration:
        MIGRATIONS[version] = migration
        return migration

    return register


def prepare(conn: sqlite3.Connection, version: int | None) -> None:
    """Create the layout in an empty file (``version`` None) or migrate an older one."""
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if version is None:
            create_schema(conn)
        else:
            while version < SCHEMA_VERSION:
                version = MIGRATIONS[version](conn)
        stamp_version(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@migrates_from(0)
def _from_whole_documents(conn: sqlite3.Connection) -> int:
    """Version 0 kept each whole flow, bodies included, as one JSON document."""
    conn.execute("ALTER TABLE flows RENAME TO flows_v0")
    conn.execute("DROP TABLE meta")
    create_schema(conn)
    # Streamed: writing other tables while this cursor reads flows_v0 is fine in SQLite.
    for (text,) in conn.execute("SELECT flow FROM flows_v0 ORDER BY seq"):
        rec = json.loads(text)
        marked = bool(rec.pop("marked", False))
        bodies = {REQUEST: rec["req"]["body"].pop("data", "").encode("latin-1")}
        if rec["resp"] is not None:
            bodies[RESPONSE] = rec["resp"]["body"].pop("data", "").encode("latin-1")
        write_rows(conn, [flow_rows(flow_from_record(rec, marked, bodies))], indexed=0)
    conn.execute("DROP TABLE flows_v0")
    return SCHEMA_VERSION  # rebuilt from the current layout


@migrates_from(1)
def _index_watermark(conn: sqlite3.Connection) -> int:
    """Version 1 indexed every flow as it was written: all of them are indexed."""
    conn.execute(
        "INSERT OR IGNORE INTO meta SELECT 'fts_indexed', coalesce(max(seq), 0) FROM flows"
    )
    return 2


@migrates_from(2)
def _modified_column(conn: sqlite3.Connection) -> int:
    """Version 2 came before rules and addons: no flow in it was changed by one."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(flows)")}
    if "modified" not in columns:  # a file rebuilt by an earlier step has it already
        conn.execute("ALTER TABLE flows ADD COLUMN modified INTEGER NOT NULL DEFAULT 0")
    return 3


@migrates_from(3)
def _http_version_column(conn: sqlite3.Connection) -> int:
    """Version 3 kept the HTTP version in the record only: copy the request's to a column."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(flows)")}
    if "http_version" not in columns:  # a file rebuilt by an earlier step has it already
        conn.execute("ALTER TABLE flows ADD COLUMN http_version TEXT NOT NULL DEFAULT 'HTTP/1.1'")
        conn.execute(
            "UPDATE flows SET http_version = (SELECT json_extract(record, '$.req.version') "
            "FROM records WHERE records.seq = flows.seq) WHERE seq IN (SELECT seq FROM "
            "records WHERE json_extract(record, '$.req.version') != 'HTTP/1.1')"
        )
    return 4
