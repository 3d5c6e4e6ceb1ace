"""The session file's layout: tables, indexes and the search index, at ``SCHEMA_VERSION``.

Schema (``schema_version`` 4)::

    meta(key TEXT PRIMARY KEY, value TEXT)      -- schema_version, created_by,
                                                -- fts_indexed (see search.py)
    flows(
        seq INTEGER PRIMARY KEY,                -- capture order (first put)
        id TEXT UNIQUE,                         -- Flow.id
        start REAL, method, scheme, host, port, path, url,
        status INTEGER, reason,                 -- NULL without a response
        req_content_type, resp_content_type,
        req_size, resp_size,                    -- body sizes on the wire
        duration REAL, error_class, replay_of, marked INTEGER,
        req_head_text, resp_head_text,          -- "Name: value" lines, for ~h
        modified INTEGER,                       -- changed by a rule or an addon, for ~modified
        http_version TEXT)                      -- the request's ("HTTP/2"...), for ~http2
    records(seq INTEGER PRIMARY KEY,            -- = flows.seq
        record TEXT)                            -- the whole Flow but bodies, as JSON
    bodies(flow_seq, part, data BLOB)           -- recorded body bytes; part 0 request,
                                                -- 1 response, 2 and 3 the originals of
                                                -- a changed flow; no row for an empty body
    flows_fts(url, headers, body)               -- FTS5, rowid = flows.seq, contentless

Every column of ``flows`` but ``marked`` is derived from the record (record.py), for
indexes and SQL filters (``inspector.filters`` compiles to them); the table is kept
narrow so that paging and filtering 100,000 flows reads little. ``marked`` is changed
by ``Store.set_marked`` (a later ``put`` never clears a mark). Bodies live in their own
table so listing flows never reads them.

A file of an older version is brought here by migrations.py.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 4

_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE flows (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    start REAL NOT NULL,
    method TEXT NOT NULL,
    scheme TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    path TEXT NOT NULL,
    url TEXT NOT NULL,
    status INTEGER,
    reason TEXT,
    req_content_type TEXT,
    resp_content_type TEXT,
    req_size INTEGER NOT NULL,
    resp_size INTEGER,
    duration REAL,
    error_class TEXT,
    replay_of TEXT,
    marked INTEGER NOT NULL DEFAULT 0,
    req_head_text TEXT NOT NULL,
    resp_head_text TEXT,
    modified INTEGER NOT NULL DEFAULT 0,
    http_version TEXT NOT NULL DEFAULT 'HTTP/1.1'
);
CREATE TABLE records (seq INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE INDEX flows_order ON flows(seq);  -- small: paging by offset skips through it
CREATE TABLE bodies (
    flow_seq INTEGER NOT NULL,
    part INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (flow_seq, part)
);
CREATE VIRTUAL TABLE flows_fts USING fts5(url, headers, body, content='');
INSERT INTO meta VALUES ('fts_indexed', '0');
"""

# Sort keys summaries() accepts (seq is the capture order). Each other key gets its index
# when a writable store is first asked to sort by it, and every one on close(): an index
# costs every write while recording, and without one a page of 100,000 sorted flows
# takes 20-90 ms instead of under 1 ms.
SORT_KEYS = {"seq": "seq", "start": "start", "method": "method COLLATE NOCASE",
             "host": "host", "status": "status", "size": "resp_size",
             "duration": "duration"}  # fmt: skip

SORT_INDEXES = {"start": "flows_start ON flows(start)",
                "method": "flows_method ON flows(method COLLATE NOCASE)",
                "host": "flows_host ON flows(host)", "status": "flows_status ON flows(status)",
                "size": "flows_resp_size ON flows(resp_size)",
                "duration": "flows_duration ON flows(duration)"}  # fmt: skip

# The flow list's columns (inspector.tui) as ORDER BY terms, each with the order the
# list has always had: a flow without a status or a size sorts as the list showed it.
# Those on an indexed column use its index; the others sort in a temporary b-tree.
LIST_ORDER = {"time": "seq", "method": "method COLLATE NOCASE", "host": "host",
              "version": "http_version", "path": "path",
              "status": "status {0} NULLS {1}", "type": "resp_content_type",
              "size": "resp_size", "duration": "duration"}  # fmt: skip


def list_order_by(key: str, descending: bool) -> str:
    """The ORDER BY clause of the flow list sorted by column ``key`` (ties in capture order)."""
    direction = "DESC" if descending else "ASC"
    term = LIST_ORDER[key].format(direction, "FIRST" if descending else "LAST")
    if "{" not in LIST_ORDER[key]:
        term = f"{term} {direction}"
    return f"ORDER BY {term}, seq {direction}"


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table of the current layout (inside the caller's transaction)."""
    # One statement at a time: executescript() would commit the open transaction.
    for statement in _DDL.split(";"):
        if statement.strip():
            conn.execute(statement)


def stamp_version(conn: sqlite3.Connection) -> None:
    """Record that the file now has the current layout."""
    conn.execute(
        "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?), ('created_by', ?)",
        (str(SCHEMA_VERSION), "http-inspector"),
    )


def order_by(sort: str, descending: bool) -> str:
    """The ORDER BY clause for sort key ``sort`` (ties in capture order); ValueError if unknown."""
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r}: use one of {', '.join(SORT_KEYS)}")
    direction = "DESC" if descending else "ASC"
    return f"ORDER BY {SORT_KEYS[sort]} {direction}, seq {direction}"
