"""The session store: every flow recorded to one SQLite file as it happens.

Writing. One writer thread owns the only write connection: ``put(flow)`` only
appends to a queue (it never waits for the disk and never drops a flow). The writer
wakes on the first queued flow, gathers more for up to ``COMMIT_DELAY`` (50 ms; at
once when a batch is full or a caller waits), and writes up to ``BATCH_SIZE`` flows in
one transaction, new ones with one statement per table: a finished flow is committed
within about ``COMMIT_DELAY`` plus the time to write one batch. A put of a flow
already stored updates it in place (it keeps its place in capture order). ``flush()``
returns once everything put before it is committed. A batch that cannot be committed
(disk full, a lock held elsewhere) is reported on stderr and kept in memory for the
next batch; ``flush()`` then raises ``StoreError``. ``close()`` (also run at
interpreter exit) writes what is left, then indexes the session (see Search and
``SORT_KEYS``).

Reading. Calls borrow a read-only connection from a small pool (SQLite connections
must not be used by two threads at once) and read one consistent snapshot. WAL lets
readers run while the writer writes, also from other processes
(``Store(path, readonly=True)``). Durability: WAL with ``synchronous=NORMAL``, so a
committed flow survives the process being killed (an OS crash may lose the last
commits, never the file).

Schema (``schema_version`` 2)::

    meta(key TEXT PRIMARY KEY, value TEXT)      -- schema_version, created_by,
                                                -- fts_indexed (see Search)
    flows(
        seq INTEGER PRIMARY KEY,                -- capture order (first put)
        id TEXT UNIQUE,                         -- Flow.id
        start REAL, method, scheme, host, port, path, url,
        status INTEGER, reason,                 -- NULL without a response
        req_content_type, resp_content_type,
        req_size, resp_size,                    -- body sizes on the wire
        duration REAL, error_class, replay_of, marked INTEGER,
        req_head_text, resp_head_text)          -- "Name: value" lines, for ~h
    records(seq INTEGER PRIMARY KEY,            -- = flows.seq
        record TEXT)                            -- the whole Flow but bodies, as JSON
    bodies(flow_seq, part, data BLOB)           -- recorded body bytes; part 0 request,
                                                -- 1 response; no row for an empty body
    flows_fts(url, headers, body)               -- FTS5, rowid = flows.seq, contentless

Every column of ``flows`` but ``marked`` is derived from the record, for indexes
and SQL filters (``inspector.filters`` compiles to them); the table is kept narrow
so that paging and filtering 100,000 flows reads little. ``marked`` is changed by
``set_marked`` (a later ``put`` never clears a mark).
The record holds header pairs as ``[name, value]`` lists of latin-1 strings and
WebSocket message heads as latin-1 strings, so every byte survives JSON; unset and
empty parts (trailers, error, WebSocket messages, timings not reached, a body's
``truncated``/``sha256``) are left out, and a reader takes them as unset. Bodies live
in their own table so listing flows never reads them. Text bodies (``text/*``, JSON,
XML, JavaScript, forms, or unlabelled bytes that look like UTF-8; not
Content-Encoded) are indexed for ``search()`` up to ``FTS_BODY_LIMIT`` bytes.

Search. Writing a flow does not index it for ``search()`` (indexing costs about half
as much as the rest of the write): flows are indexed in capture order, in chunks,
from their columns and bodies, when no flow has come for ``INDEX_IDLE`` seconds, a
chunk per batch once more than ``MAX_BACKLOG`` wait, and for up to
``CLOSE_INDEX_SECONDS`` on ``close()``. ``meta.fts_indexed`` is the seq up to which
every flow is indexed. ``search()`` has the writer index everything first; a
read-only store (or a search racing new flows) matches flows past the watermark
through a temporary in-memory index per reader connection, so results are complete.

Versions: ``SCHEMA_VERSION`` is the file layout; the record carries the Flow's
``format_version``. Opening an older file migrates it in place, in one transaction
(read-only: a migrated temporary copy is read, the file is left as it is).
Version 1 had no ``fts_indexed`` (every flow was indexed as it was written).
Version 0 (the prototype layout) was ``meta`` plus ``flows(id TEXT PRIMARY KEY,
seq INTEGER, flow TEXT)``, where ``flow`` is the version 1 record with ``marked``
and each body's bytes (latin-1 string ``data``) inline.
"""

from __future__ import annotations

import atexit
import json
import math
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, NamedTuple

from inspector.content import media_type
from inspector.filters import header_text, parse, register_sql_functions
from inspector.flow import (
    Flow,
    FlowBody,
    FlowError,
    FlowRequest,
    FlowResponse,
    Phase,
    Timings,
    TLSInfo,
    WebSocketMessage,
)

SCHEMA_VERSION = 2
BATCH_SIZE = 200  # flows per transaction at most
COMMIT_DELAY = 0.05  # seconds the writer gathers a trickle of flows before writing them
INDEX_IDLE = 1.0  # seconds without new flows before the writer indexes flows for search
INDEX_CHUNK = 500  # flows indexed per transaction
MAX_BACKLOG = 50_000  # flows left unindexed at most: beyond, a chunk is indexed per batch
CLOSE_INDEX_SECONDS = 0.5  # close() indexes what is left for about this long at most
FTS_BODY_LIMIT = 1024 * 1024  # bytes of each text body indexed for search
_PAGE = 200  # flows read per query by iter_flows
_IDLE_READERS = 4  # read connections kept open for reuse
BUSY_TIMEOUT = 5.0  # seconds a write waits for another process's lock before failing
_SNIFF = 4096  # bytes of an unlabelled body looked at to decide whether it is text
_SQLITE_MAGIC = b"SQLite format 3\x00"
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript",
               "application/x-www-form-urlencoded", "application/graphql",
               "application/x-ndjson", "application/ecmascript")  # fmt: skip


class StoreError(Exception):
    """The session file cannot be used; the message names the file and what to do."""


class _OldSchema(Exception):
    """A read-only open found a file of an older schema (it is read via a migrated copy)."""


# --- Flow <-> record ----------------------------------------------------------------------


def _pairs_out(pairs: list[tuple[bytes, bytes]]) -> list[list[str]]:
    return [[n.decode("latin-1"), v.decode("latin-1")] for n, v in pairs]


def _pairs_in(items: list[list[str]]) -> list[tuple[bytes, bytes]]:
    return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in items]


def _body_out(body: FlowBody) -> dict[str, Any]:
    out: dict[str, Any] = {"size": body.size}
    if body.truncated:
        out["truncated"] = True
    if body.sha256 is not None:
        out["sha256"] = body.sha256
    return out


def _body_in(d: dict[str, Any], data: bytes) -> FlowBody:
    return FlowBody(data, d["size"], d.get("truncated", False), d.get("sha256"))


def _request_out(r: FlowRequest) -> dict[str, Any]:
    out = {
        "method": r.method, "scheme": r.scheme, "host": r.host, "port": r.port,
        "path": r.path, "version": r.http_version, "headers": _pairs_out(r.headers),
        "body": _body_out(r.body), "ts": r.timestamp,
    }  # fmt: skip
    if r.trailers:
        out["trailers"] = _pairs_out(r.trailers)
    return out


def _response_out(r: FlowResponse) -> dict[str, Any]:
    out = {
        "status": r.status_code, "reason": r.reason, "version": r.http_version,
        "headers": _pairs_out(r.headers), "body": _body_out(r.body), "ts": r.timestamp,
    }  # fmt: skip
    if r.trailers:
        out["trailers"] = _pairs_out(r.trailers)
    return out


_TIMING_FIELDS = ("start", "connect_start", "connect_end", "tls_end", "request_sent",
                  "response_start", "end")  # fmt: skip
_TLS_FIELDS = ("sni", "client_alpn", "client_version", "upstream_version", "upstream_cipher",
               "upstream_alpn", "upstream_cert_subject", "upstream_cert_issuer")  # fmt: skip


def _set_fields(obj: object, names: tuple[str, ...]) -> dict[str, Any]:
    """The attributes of ``obj`` among ``names`` that are not None."""
    values = {}
    for name in names:
        value = getattr(obj, name)
        if value is not None:
            values[name] = value
    return values


def flow_to_record(flow: Flow) -> dict[str, Any]:
    """Everything of a flow but body bytes and ``marked``, as JSON-ready values.

    Empty and unset parts (no trailers, no error, timings not reached, ...) are left
    out: the record is written for every flow, and smaller is faster to encode and store.
    """
    rec: dict[str, Any] = {
        "v": flow.format_version,
        "id": flow.id,
        "client": list(flow.client_addr),
        "mode": flow.mode,
        "req": _request_out(flow.request),
        "resp": None if flow.response is None else _response_out(flow.response),
        "timings": _set_fields(flow.timings, _TIMING_FIELDS),
        "tls": None if flow.tls is None else _set_fields(flow.tls, _TLS_FIELDS),
    }
    if flow.websocket:
        rec["ws"] = [
            [m.timestamp, m.from_client, m.opcode, m.size, m.head.decode("latin-1")]
            for m in list(flow.websocket)  # a copy: the proxy may be appending
        ]
    err = flow.error
    if err is not None:
        rec["error"] = {
            "cls": err.exc_class,
            "msg": err.message,
            "phase": str(err.phase),
            "ts": err.timestamp,
        }
    if flow.replay_of is not None:
        rec["replay_of"] = flow.replay_of
    if flow.intercepted:
        rec["intercepted"] = True
    return rec


def flow_from_record(rec: dict[str, Any], marked: bool, bodies: dict[int, bytes]) -> Flow:
    """The inverse of ``flow_to_record``; ``bodies`` maps part (0 request, 1 response) to bytes."""
    q = rec["req"]
    request = FlowRequest(
        q["method"], q["scheme"], q["host"], q["port"], q["path"], q["version"],
        _pairs_in(q["headers"]), _body_in(q["body"], bodies.get(0, b"")),
        _pairs_in(q.get("trailers", ())), q["ts"],
    )  # fmt: skip
    s = rec["resp"]
    response = None
    if s is not None:
        response = FlowResponse(
            s["status"], s["reason"], s["version"], _pairs_in(s["headers"]),
            _body_in(s["body"], bodies.get(1, b"")), _pairs_in(s.get("trailers", ())), s["ts"],
        )  # fmt: skip
    e = rec.get("error")
    return Flow(
        request,
        id=rec["id"],
        client_addr=(rec["client"][0], rec["client"][1]),
        mode=rec["mode"],
        response=response,
        timings=Timings(**rec["timings"]),
        tls=None if rec["tls"] is None else TLSInfo(**rec["tls"]),
        websocket=[
            WebSocketMessage(ts, from_client, opcode, size, head.encode("latin-1"))
            for ts, from_client, opcode, size, head in rec.get("ws", ())
        ],
        error=None if e is None else FlowError(e["cls"], e["msg"], Phase(e["phase"]), e["ts"]),
        replay_of=rec.get("replay_of"),
        marked=marked,
        intercepted=rec.get("intercepted", False),
        format_version=rec["v"],
    )


def _is_text(content_type: str | None, content_encoding: str | None, data: bytes) -> bool:
    if content_encoding and content_encoding.strip().lower() != "identity":
        return False  # compressed bytes are not searchable text
    mt = media_type(content_type)
    if mt:
        return mt.startswith("text/") or mt in _TEXT_TYPES or mt.endswith(("+json", "+xml"))
    return _sniff_utf8(data[:_SNIFF])


def _sniff_utf8(sample: bytes) -> bool:
    """Unlabelled bytes count as text when they are UTF-8 without NUL bytes."""
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(sample) - 3 and e.reason == "unexpected end of data"
    return True


_ENCODE = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def _content_type(pairs: list[tuple[bytes, bytes]]) -> str | None:
    """The first Content-Type value (latin-1), without building a Headers object."""
    for name, value in pairs:
        if name.lower() == b"content-type":
            return value.decode("latin-1")
    return None


def _head_value(head_text: str, name: str) -> str | None:
    """The first value of header ``name`` (lowercase) in ``header_text()`` lines."""
    if name not in head_text.lower():
        return None
    for line in head_text.split("\n"):
        field, sep, value = line.partition(": ")
        if sep and field.lower() == name:
            return value
    return None


def _body_text(content_type: str | None, head_text: str, data: bytes) -> str:
    """The text of a body that search() should find words in ("" for binary content)."""
    encoding = _head_value(head_text, "content-encoding")
    if not data or not _is_text(content_type, encoding, data):
        return ""
    return data[:FTS_BODY_LIMIT].decode("utf-8", errors="replace")


def _clean(text: str | None) -> str | None:
    # Columns must be valid UTF-8; the record keeps the exact text.
    if text is None or text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


# --- schema -------------------------------------------------------------------------------

_SCHEMA = """
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
    resp_head_text TEXT
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

_COLUMNS = ("id", "start", "method", "scheme", "host", "port", "path", "url", "status",
            "reason", "req_content_type", "resp_content_type", "req_size", "resp_size",
            "duration", "error_class", "replay_of", "marked", "req_head_text",
            "resp_head_text")  # fmt: skip
_INSERT = f"INSERT INTO flows (seq, {', '.join(_COLUMNS)}) VALUES (?{', ?' * len(_COLUMNS)})"
_MARKED = _COLUMNS.index("marked")
_UPDATE = (
    "UPDATE flows SET "
    + ", ".join(f"{c} = ?" for c in _COLUMNS if c not in ("id", "marked"))
    + ", marked = max(marked, ?) WHERE seq = ?"
)

# Sort keys summaries() accepts (seq is the capture order). Each other key gets its index
# when a writable store is first asked to sort by it, and every one on close(): an index
# costs every write while recording, and without one a page of 100,000 sorted flows
# takes 20-90 ms instead of under 1 ms.
SORT_KEYS = {"seq": "seq", "start": "start", "method": "method COLLATE NOCASE",
             "host": "host", "status": "status", "size": "resp_size",
             "duration": "duration"}  # fmt: skip


_SORT_INDEXES = {"start": "flows_start ON flows(start)",
                 "method": "flows_method ON flows(method COLLATE NOCASE)",
                 "host": "flows_host ON flows(host)", "status": "flows_status ON flows(status)",
                 "size": "flows_resp_size ON flows(resp_size)",
                 "duration": "flows_duration ON flows(duration)"}  # fmt: skip


class FlowSummary(NamedTuple):
    """One row of a flow list, read from indexed columns only (no JSON, no bodies)."""

    id: str
    start: float
    method: str
    scheme: str
    host: str
    port: int
    path: str
    url: str
    status: int | None  # None without a response
    reason: str | None
    content_type: str | None  # the response's Content-Type header
    response_size: int | None  # response body size on the wire
    duration: float | None  # None while unfinished
    error_class: str | None  # the exception class when the exchange failed
    replay_of: str | None
    marked: bool


_SUMMARY_COLUMNS = ", ".join(
    ("id", "start", "method", "scheme", "host", "port", "path", "url", "status", "reason",
     "resp_content_type", "resp_size", "duration", "error_class", "replay_of", "marked != 0")
)  # fmt: skip


class _Texts(NamedTuple):
    """The header-derived column texts of a flow, each computed once per write."""

    req_type: str | None  # Content-Type values as sent
    req_heads: str  # header_text() of the request
    resp_type: str | None
    resp_heads: str | None  # None without a response


def _texts(flow: Flow) -> _Texts:
    req, resp = flow.request, flow.response
    req_type = _content_type(req.headers)
    if resp is None:
        return _Texts(req_type, header_text(req.headers), None, None)
    return _Texts(
        req_type, header_text(req.headers), _content_type(resp.headers), header_text(resp.headers)
    )


# The search index is computed from these columns and the bodies, never from the record:
# indexing then needs no JSON, and unindexing recomputes exactly what was indexed.
_FTS_SOURCE = "SELECT seq, url, req_head_text, resp_head_text, req_content_type, resp_content_type"

FtsEntry = tuple[int, str, str, str]  # rowid, url, headers, body


def _fts_entries(
    rows: list[tuple[Any, ...]], bodies: dict[int, dict[int, bytes]]
) -> list[FtsEntry]:
    """The index entries of ``_FTS_SOURCE`` rows, given their bodies by seq and part."""
    entries = []
    for seq, url, req_heads, resp_heads, req_type, resp_type in rows:
        parts = bodies.get(seq, {})
        texts = [_body_text(req_type, req_heads, parts.get(0, b""))]
        heads = req_heads
        if resp_heads is not None:
            heads += "\n" + resp_heads
            texts.append(_body_text(resp_type, resp_heads, parts.get(1, b"")))
        entries.append((seq, url, heads, _clean("\n".join(t for t in texts if t))))
    return entries  # type: ignore[return-value]


def _bodies_between(conn: sqlite3.Connection, first: int, last: int) -> dict[int, dict[int, bytes]]:
    bodies: dict[int, dict[int, bytes]] = {}
    for seq, part, data in conn.execute(
        "SELECT flow_seq, part, data FROM bodies WHERE flow_seq BETWEEN ? AND ?", (first, last)
    ):
        bodies.setdefault(seq, {})[part] = data
    return bodies


def _entries_of(conn: sqlite3.Connection, seq: int) -> list[FtsEntry]:
    rows = conn.execute(f"{_FTS_SOURCE} FROM flows WHERE seq = ?", (seq,)).fetchall()
    return _fts_entries(rows, _bodies_between(conn, seq, seq))


def _backlog(conn: sqlite3.Connection, after: int, limit: int) -> list[FtsEntry]:
    """The index entries of up to ``limit`` flows past seq ``after``, in capture order."""
    rows = conn.execute(
        f"{_FTS_SOURCE} FROM flows WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
    ).fetchall()
    if not rows:
        return []
    # Every flow between the first and last seq is in ``rows``: one range read.
    return _fts_entries(rows, _bodies_between(conn, rows[0][0], rows[-1][0]))


def _index(conn: sqlite3.Connection, entries: list[FtsEntry], table: str) -> None:
    conn.executemany(
        f"INSERT INTO {table} (rowid, url, headers, body) VALUES (?, ?, ?, ?)", entries
    )


def _read_flow(conn: sqlite3.Connection, flow_id: str) -> tuple[int, Flow] | None:
    row = conn.execute(
        "SELECT flows.seq, record, marked FROM flows JOIN records USING (seq) WHERE id = ?",
        (flow_id,),
    ).fetchone()
    if row is None:
        return None
    bodies = dict(conn.execute("SELECT part, data FROM bodies WHERE flow_seq = ?", row[:1]))
    return row[0], flow_from_record(json.loads(row[1]), bool(row[2]), bodies)


def _unindex(conn: sqlite3.Connection, seq: int) -> None:
    # The index keeps no copy of the text (content=''), so removing a row means handing
    # FTS5 the very values it was indexed under: recomputed from the same columns.
    conn.executemany(
        "INSERT INTO flows_fts (flows_fts, rowid, url, headers, body) "
        "VALUES ('delete', ?, ?, ?, ?)",
        _entries_of(conn, seq),
    )


class _Rows(NamedTuple):
    """Everything written for one flow, computed before the first write."""

    flow_id: str
    columns: tuple[Any, ...]  # the values of _COLUMNS
    record: str
    bodies: list[tuple[int, bytes]]  # (part, data) of each non-empty body


def _flow_rows(flow: Flow) -> _Rows:
    req, resp = flow.request, flow.response
    texts = _texts(flow)
    status = reason = resp_size = None
    if resp is not None:
        status, reason, resp_size = resp.status_code, _clean(resp.reason), resp.body.size
    columns = (
        flow.id, flow.timings.start, _clean(req.method), _clean(req.scheme), _clean(req.host),
        req.port, _clean(req.path), _clean(req.url), status, reason, _clean(texts.req_type),
        _clean(texts.resp_type), req.body.size, resp_size, flow.timings.duration,
        None if flow.error is None else _clean(flow.error.exc_class), flow.replay_of,
        int(flow.marked), _clean(texts.req_heads), _clean(texts.resp_heads),
    )  # fmt: skip
    record = _ENCODE(flow_to_record(flow))
    bodies = [(part, body.data) for part, body in _bodies(flow) if body.data]
    return _Rows(flow.id, columns, record, bodies)


def _write_flow(conn: sqlite3.Connection, flow: Flow, indexed: int) -> None:
    _write_rows(conn, [_flow_rows(flow)], indexed)


def _known_seqs(conn: sqlite3.Connection, ids: list[str]) -> dict[str, int]:
    """The seq of each of ``ids`` already stored (one indexed query per 500 ids)."""
    known: dict[str, int] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        known.update(conn.execute(f"SELECT id, seq FROM flows WHERE id IN ({marks})", chunk))
    return known


def _write_rows(conn: sqlite3.Connection, rows: list[_Rows], indexed: int) -> int:
    """Insert new flows (in order, one statement per table) and update known ones in place.

    New flows are not indexed for search here (see ``_index_backlog``); an update of a
    flow at or below the ``indexed`` watermark replaces its index entry. Returns the
    last new seq (0 when every flow was known).
    """
    known = _known_seqs(conn, [r.flow_id for r in rows])
    fresh = [r for r in rows if r.flow_id not in known]
    for r in rows:
        if r.flow_id in known:
            _update_rows(conn, known[r.flow_id], r, known[r.flow_id] <= indexed)
    if not fresh:
        return 0
    # The writer holds the write lock (BEGIN IMMEDIATE), so max(seq) cannot move under it.
    first = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM flows").fetchone()[0]
    numbered = list(enumerate(fresh, start=first))
    conn.executemany(_INSERT, [(seq, *r.columns) for seq, r in numbered])
    conn.executemany(
        "INSERT OR REPLACE INTO records VALUES (?, ?)",
        [(seq, r.record) for seq, r in numbered],
    )
    conn.executemany(
        "INSERT INTO bodies VALUES (?, ?, ?)",
        [(seq, part, data) for seq, r in numbered for part, data in r.bodies],
    )
    return numbered[-1][0]


def _update_rows(conn: sqlite3.Connection, seq: int, rows: _Rows, indexed: bool) -> None:
    """Replace a stored flow's columns, record, bodies and index entry (a mark stays)."""
    if indexed:
        _unindex(conn, seq)
    conn.execute("DELETE FROM bodies WHERE flow_seq = ?", (seq,))
    values = [v for c, v in zip(_COLUMNS, rows.columns, strict=True) if c not in ("id", "marked")]
    conn.execute(_UPDATE, (*values, rows.columns[_MARKED], seq))
    conn.execute("INSERT OR REPLACE INTO records VALUES (?, ?)", (seq, rows.record))
    conn.executemany(
        "INSERT INTO bodies VALUES (?, ?, ?)", [(seq, part, data) for part, data in rows.bodies]
    )
    if indexed:
        _index(conn, _entries_of(conn, seq), "flows_fts")


def _bodies(flow: Flow) -> list[tuple[int, FlowBody]]:
    """The flow's bodies by part: 0 the request's, 1 the response's."""
    if flow.response is None:
        return [(0, flow.request.body)]
    return [(0, flow.request.body), (1, flow.response.body)]


def _delete_flows(conn: sqlite3.Connection, ids: list[str], indexed: int) -> int:
    deleted = 0
    for seq in _known_seqs(conn, ids).values():
        if seq <= indexed:
            _unindex(conn, seq)
        conn.execute("DELETE FROM flows WHERE seq = ?", (seq,))
        conn.execute("DELETE FROM records WHERE seq = ?", (seq,))
        conn.execute("DELETE FROM bodies WHERE flow_seq = ?", (seq,))
        deleted += 1
    return deleted


def _create_schema(conn: sqlite3.Connection) -> None:
    # One statement at a time: executescript() would commit the open transaction.
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    """Version 0 kept each whole flow, bodies included, as one JSON document."""
    conn.execute("ALTER TABLE flows RENAME TO flows_v0")
    conn.execute("DROP TABLE meta")
    _create_schema(conn)
    # Streamed: writing other tables while this cursor reads flows_v0 is fine in SQLite.
    for (text,) in conn.execute("SELECT flow FROM flows_v0 ORDER BY seq"):
        rec = json.loads(text)
        marked = bool(rec.pop("marked", False))
        bodies = {0: rec["req"]["body"].pop("data", "").encode("latin-1")}
        if rec["resp"] is not None:
            bodies[1] = rec["resp"]["body"].pop("data", "").encode("latin-1")
        _write_flow(conn, flow_from_record(rec, marked, bodies), indexed=0)
    conn.execute("DROP TABLE flows_v0")


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Version 1 indexed every flow as it was written: all of them are indexed."""
    conn.execute(
        "INSERT OR IGNORE INTO meta SELECT 'fts_indexed', coalesce(max(seq), 0) FROM flows"
    )


_MIGRATIONS = {0: _migrate_0_to_1, 1: _migrate_1_to_2}


def _watermark(conn: sqlite3.Connection) -> int:
    """The seq up to which every flow is in the search index."""
    return int(conn.execute("SELECT value FROM meta WHERE key = 'fts_indexed'").fetchone()[0])


def _index_backlog(conn: sqlite3.Connection, indexed: int, limit: int) -> int:
    """Index up to ``limit`` flows past the watermark ``indexed``; returns the new watermark."""
    entries = _backlog(conn, indexed, limit)
    if not entries:
        return indexed
    _index(conn, entries, "flows_fts")
    indexed = entries[-1][0]
    conn.execute("UPDATE meta SET value = ? WHERE key = 'fts_indexed'", (str(indexed),))
    return indexed


# --- the writer ---------------------------------------------------------------------------


@dataclass(eq=False)
class _Op:
    """A request to the writer thread; the caller waits on ``done``."""

    kind: str  # "flush", "delete", "mark", "index", "sort_index", "stop"
    args: tuple[Any, ...] = ()
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: str | None = None


class Store:
    """A session file: ``put`` flows from any thread, read them back from any thread."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.readonly = readonly
        self._closed = False
        self._closing = False  # set under _put_lock: no put may follow the writer's stop
        self._put_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []  # read connections free for any thread
        self._pool_lock = threading.Lock()
        self._queue: SimpleQueue[Flow | _Op] = SimpleQueue()
        self._urgent = threading.Event()  # a caller waits on the writer: skip the delay
        self._sorted_by: set[str] = set()  # sort keys whose index is known to exist
        self._unsaved: dict[str, Flow] = {}  # flows a failed commit must retry
        self._writer: threading.Thread | None = None
        self._db_path = self.path  # the file actually read: a migrated copy for an old file
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if readonly:
            self._check_readable()
            try:
                self._idle.append(self._open_reader())  # validates now: errors surface here
            except _OldSchema:
                self._read_migrated_copy()
        else:
            conn = self._open_for_writing(self.path)
            self._indexed = _watermark(conn)  # writer state: flows up to here are indexed
            self._last_seq = conn.execute("SELECT coalesce(max(seq), 0) FROM flows").fetchone()[0]
            self._writer = threading.Thread(
                target=self._write_loop, args=(conn,), name=f"store-writer {self.path.name}",
                daemon=True,
            )  # fmt: skip
            self._writer.start()
        atexit.register(self._close_at_exit)

    # --- opening --------------------------------------------------------------------------

    def _fail(self, problem: str, advice: str) -> StoreError:
        return StoreError(f"{self.path}: {problem}; {advice}")

    def _check_readable(self) -> None:
        if self.path.is_dir():
            raise self._fail("is a directory, not a session file", "give a session file path")
        if not self.path.exists():
            raise self._fail(
                "no such session file",
                "check the path (sessions are recorded under ~/.inspector/sessions by default)",
            )
        try:
            with self.path.open("rb") as f:
                head = f.read(len(_SQLITE_MAGIC))
        except OSError as e:
            raise self._fail(f"cannot read it ({e.strerror})", "check its permissions") from None
        if head != _SQLITE_MAGIC:
            raise self._fail(
                "not an http-inspector session (not an SQLite database)",
                "pick a session file recorded by inspector, or a new path to record to",
            )

    def _open_for_writing(self, path: Path) -> sqlite3.Connection:
        if path.exists() and path.stat().st_size > 0:
            self._check_readable()
        elif path.is_dir():
            raise self._fail("is a directory, not a session file", "give a session file path")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as e:
            raise self._fail(f"cannot create or open it ({e})", "check the directory") from None
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._prepare_schema(conn)
        except sqlite3.DatabaseError as e:
            conn.close()
            raise self._fail(
                f"not a usable http-inspector session ({e})",
                "pick a session file recorded by inspector, or a new path to record to",
            ) from None
        except StoreError:
            conn.close()
            raise
        return conn

    def _schema_version(self, conn: sqlite3.Connection) -> int | None:
        """The file's schema version, or None for an empty database; StoreError if foreign."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        if "meta" not in tables:
            raise self._fail(
                "is an SQLite database but not an http-inspector session (no meta table)",
                "pick a session file recorded by inspector, or a new path to record to",
            )
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or not str(row[0]).isdigit():
            raise self._fail(
                "is an SQLite database but not an http-inspector session (no schema version)",
                "pick a session file recorded by inspector",
            )
        version = int(row[0])
        if version > SCHEMA_VERSION:
            raise self._fail(
                f"was written by a newer http-inspector (schema {version}; this one reads up "
                f"to {SCHEMA_VERSION})",
                "upgrade http-inspector to open it",
            )
        return version

    def _prepare_schema(self, conn: sqlite3.Connection) -> None:
        version = self._schema_version(conn)
        if version == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version is None:
                _create_schema(conn)
            else:
                for old in range(version, SCHEMA_VERSION):
                    _MIGRATIONS[old](conn)
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?), ('created_by', ?)",
                (str(SCHEMA_VERSION), "http-inspector"),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

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
        self._open_for_writing(copy).close()  # migrates the copy
        self._db_path = copy
        self._idle.append(self._open_reader())

    def _open_reader(self) -> sqlite3.Connection:
        uri = f"{self._db_path.resolve().as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            version = self._schema_version(conn)
        except sqlite3.DatabaseError as e:
            raise self._fail(
                f"not a usable http-inspector session ({e})",
                "pick a session file recorded by inspector",
            ) from None
        if version != SCHEMA_VERSION:
            conn.close()
            if version is None:
                raise self._fail("is empty", "pick a session file recorded by inspector")
            raise _OldSchema(version)
        register_sql_functions(conn)
        return conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection for this thread's exclusive use while the block runs.

        SQLite connections must not be used by two threads at once, so readers borrow
        one from a small pool (one per concurrent reader) and give it back.
        """
        with self._pool_lock:
            if self._closed:
                raise StoreError(f"{self.path}: the session store is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open_reader()
        try:
            conn.execute("BEGIN")  # one snapshot for the whole block
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        finally:
            with self._pool_lock:
                keep = not self._closed and len(self._idle) < _IDLE_READERS
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    # --- writing --------------------------------------------------------------------------

    def put(self, flow: Flow) -> None:
        """Record (insert or update) a flow; returns at once, the writer thread commits it."""
        with self._put_lock:
            if self._writer is None or self._closing:
                raise StoreError(
                    f"{self.path}: cannot record to a session opened read-only or closed"
                )
            self._queue.put(flow)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every flow put so far is committed (StoreError if it cannot be)."""
        self._call("flush", timeout=timeout)

    def delete(self, ids: str | Iterable[str]) -> int:
        """Delete flows by id; returns how many existed."""
        return self._call("delete", _id_list(ids))

    def set_marked(self, ids: str | Iterable[str], marked: bool = True) -> None:
        self._call("mark", _id_list(ids), bool(marked))

    def _call(self, kind: str, *args: Any, timeout: float | None = None) -> Any:
        if self._writer is None:
            raise StoreError(f"{self.path}: the session is open read-only; cannot {kind}")
        op = _Op(kind, args)
        with self._put_lock:
            if self._closing:
                raise StoreError(f"{self.path}: the session store is closed")
            self._queue.put(op)
            self._urgent.set()
        if not op.done.wait(timeout):
            raise StoreError(f"{self.path}: the writer did not finish {kind} within {timeout} s")
        if op.error is not None:
            raise StoreError(f"{self.path}: {op.error}")
        return op.result

    def close(self) -> None:
        """Flush, stop the writer and close every connection (idempotent)."""
        with self._put_lock:
            if self._closing:
                return
            self._closing = True  # no put after this one: the stop below is the last item
        atexit.unregister(self._close_at_exit)
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        # The writer's connection closes last, so SQLite checkpoints the WAL into the file and
        # removes it (a read-only connection closing last cannot): a closed session is one
        # file. So the writer hears of the stop only once the readers are closed.
        op = _Op("stop")
        if self._writer is not None:
            self._queue.put(op)
            self._urgent.set()
            self._writer.join()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
        if op.error is not None:
            raise StoreError(f"{self.path}: {op.error}")

    def _close_at_exit(self) -> None:
        # A program that forgot close() still gets every flow it put onto disk.
        try:
            self.close()
        except StoreError as e:
            _report(f"inspector: {e}")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                batch = self._next_batch(conn)
                try:
                    if self._write_batch(conn, batch):
                        self._index_on_close(conn)
                        return
                except Exception as e:  # a bug: report it, and never leave a caller waiting
                    self._rollback(conn)
                    _report(f"inspector: {self.path}: session writer error: {e!r}")
                    for op in batch:
                        if isinstance(op, _Op):
                            op.error = f"session writer error: {e!r}"
                            op.done.set()
        finally:
            conn.close()

    def _index_on_close(self, conn: sqlite3.Connection) -> None:
        """Leave the session indexed for search and sorting, after its last flows are safe.

        A session is mostly searched and sorted after recording, read-only, and a
        read-only store cannot create indexes.
        """
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._indexed = self._index_all(
                conn, self._indexed, time.monotonic() + CLOSE_INDEX_SECONDS
            )
            for ddl in _SORT_INDEXES.values():  # ~3.5 us of CPU per flow each
                conn.execute(f"CREATE INDEX IF NOT EXISTS {ddl}")
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback(conn)
            _report(f"inspector: {self.path}: could not index the session on close: {e}")

    def _next_batch(self, conn: sqlite3.Connection) -> list[Flow | _Op]:
        """Wait for work, then gather for up to COMMIT_DELAY (group commit).

        One commit per flow costs more than the flow itself, and every wake of this
        thread takes the GIL from the proxy's event loop, so a trickle of flows is
        collected for a short while and written together. A waiting caller (flush,
        delete, mark, close) sets ``_urgent`` to cut the wait short; a full batch or a
        backlog is written at once.
        """
        batch: list[Flow | _Op] = [self._wait_for_work(conn)]
        if isinstance(batch[0], Flow) and self._queue.qsize() < BATCH_SIZE:
            self._urgent.wait(COMMIT_DELAY)
        self._urgent.clear()  # before draining: an op queued after this sets it again
        while len(batch) < BATCH_SIZE:
            try:
                batch.append(self._queue.get_nowait())
            except Empty:
                break
        return batch

    def _wait_for_work(self, conn: sqlite3.Connection) -> Flow | _Op:
        """The next queued item; while none comes for INDEX_IDLE, index the search backlog."""
        while self._indexed < self._last_seq:
            try:
                return self._queue.get(timeout=INDEX_IDLE)
            except Empty:
                self._index_idle(conn)
        return self._queue.get()

    def _index_idle(self, conn: sqlite3.Connection) -> None:
        """Index one chunk of unindexed flows in its own transaction."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            indexed = _index_backlog(conn, self._indexed, INDEX_CHUNK)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback(conn)
            _report(f"inspector: {self.path}: could not index flows for search: {e}")
            self._last_seq = self._indexed  # retried after the next write
            return
        if indexed == self._indexed:  # nothing left (the backlog was deleted)
            self._last_seq = indexed
        self._indexed = indexed

    def _write_batch(self, conn: sqlite3.Connection, batch: list[Flow | _Op]) -> bool:
        """Apply one batch in one transaction; True when a stop was asked for."""
        retry, self._unsaved = self._unsaved, {}
        pending = dict(retry)  # flows put but not yet written, in capture order
        stop = False
        indexed, last_seq = self._indexed, self._last_seq  # kept only if this commits
        try:
            conn.execute("BEGIN IMMEDIATE")  # _write_rows numbers new flows from max(seq)
            for item in batch:
                if isinstance(item, Flow):
                    pending[item.id] = item  # a repeated put keeps its first place
                    continue
                last_seq = max(last_seq, self._write_pending(conn, pending, indexed))
                if item.kind == "delete":
                    item.result = _delete_flows(conn, item.args[0], indexed)
                elif item.kind == "index":
                    indexed = self._index_all(conn, indexed)
                elif item.kind == "sort_index":
                    conn.execute(f"CREATE INDEX IF NOT EXISTS {_SORT_INDEXES[item.args[0]]}")
                elif item.kind == "mark":
                    ids, value = item.args
                    conn.executemany(
                        "UPDATE flows SET marked = ? WHERE id = ?", [(int(value), i) for i in ids]
                    )
                elif item.kind == "stop":
                    stop = True
            last_seq = max(last_seq, self._write_pending(conn, pending, indexed))
            if last_seq - indexed > MAX_BACKLOG:  # never idle for long: index as we go
                indexed = _index_backlog(conn, indexed, INDEX_CHUNK)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback(conn)
            # Everything of this batch is undone: keep every flow for the next batch.
            unsaved = retry
            for item in batch:
                if isinstance(item, Flow):
                    unsaved[item.id] = item
            self._unsaved = unsaved
            message = f"could not write {len(unsaved)} flow(s) to the session: {e}"
            _report(f"inspector: {self.path}: {message}")
            for op in (i for i in batch if isinstance(i, _Op)):
                op.error = message
                op.done.set()
                stop = stop or op.kind == "stop"
            return stop
        self._indexed, self._last_seq = indexed, last_seq
        for item in batch:
            if isinstance(item, _Op):
                item.done.set()
        return stop

    @staticmethod
    def _index_all(conn: sqlite3.Connection, indexed: int, deadline: float = math.inf) -> int:
        """Index every unindexed flow (or as many as fit before ``deadline``, monotonic)."""
        while (caught_up := _index_backlog(conn, indexed, INDEX_CHUNK)) != indexed:
            indexed = caught_up
            if time.monotonic() > deadline:
                break
        return indexed

    @staticmethod
    def _write_pending(conn: sqlite3.Connection, pending: dict[str, Flow], indexed: int) -> int:
        """Write the pending flows; returns the last new seq (0 if none was new)."""
        rows = []
        for flow in pending.values():
            try:
                rows.append(_flow_rows(flow))
            except Exception as e:  # a malformed flow (a bug upstream) can never be stored
                _report(f"inspector: cannot record flow {flow.id}: {e!r} (please report this bug)")
        pending.clear()
        # An sqlite3.Error retries the whole batch.
        return _write_rows(conn, rows, indexed) if rows else 0

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # no transaction was open

    # --- reading --------------------------------------------------------------------------

    def _where(self, expr: str | None) -> tuple[str, list[object]]:
        if expr is None or not expr.strip():
            return "1", []
        return parse(expr).sql()  # FilterError for a bad expression

    def count(self, expr: str | None = None) -> int:
        """How many flows (matching the filter expression ``expr``) the session holds."""
        where, params = self._where(expr)
        with self._reading() as conn:
            return conn.execute(f"SELECT count(*) FROM flows WHERE {where}", params).fetchone()[0]

    def get(self, flow_id: str) -> Flow | None:
        with self._reading() as conn:
            known = _read_flow(conn, flow_id)
        return None if known is None else known[1]

    def iter_flows(self, expr: str | None = None) -> Iterator[Flow]:
        """Every flow (matching ``expr``), bodies included, in capture order."""
        where, params = self._where(expr)
        last = 0
        while True:
            with self._reading() as conn:
                rows, bodies = self._page(conn, where, params, last)
            if not rows:
                return
            for seq, record, marked in rows:
                yield flow_from_record(json.loads(record), bool(marked), bodies.get(seq, {}))
            last = rows[-1][0]

    @staticmethod
    def _page(
        conn: sqlite3.Connection, where: str, params: list[object], after: int
    ) -> tuple[list[tuple[int, str, int]], dict[int, dict[int, bytes]]]:
        """The next page of matching records after seq ``after``, and their bodies."""
        rows = conn.execute(
            "SELECT flows.seq, record, marked FROM flows JOIN records USING (seq) "
            f"WHERE flows.seq > ? AND {where} ORDER BY flows.seq LIMIT {_PAGE}",
            [after, *params],
        ).fetchall()
        bodies: dict[int, dict[int, bytes]] = {}
        if rows:
            seqs = [r[0] for r in rows]
            marks = ",".join("?" * len(seqs))
            for seq, part, data in conn.execute(
                f"SELECT flow_seq, part, data FROM bodies WHERE flow_seq IN ({marks})", seqs
            ):
                bodies.setdefault(seq, {})[part] = data
        return rows, bodies

    def summaries(
        self,
        offset: int = 0,
        limit: int = 100,
        expr: str | None = None,
        *,
        sort: str = "seq",
        descending: bool = False,
    ) -> list[Flow]:
        """A page of flows WITHOUT body bytes (``FlowBody.data`` is empty, size kept).

        In capture order, or by ``sort`` (a key of ``SORT_KEYS``); ``expr`` filters.
        Use ``get()`` for a flow's bodies.
        """
        with self._reading() as conn:
            seqs = self._page_seqs(conn, offset, limit, expr, sort, descending)
            rows = conn.execute(
                "SELECT seq, record, marked FROM flows JOIN records USING (seq) "
                f"WHERE seq IN ({','.join('?' * len(seqs))})",
                seqs,
            ).fetchall()
        flows = {seq: flow_from_record(json.loads(rec), bool(m), {}) for seq, rec, m in rows}
        return [flows[seq] for seq in seqs]

    def summary_rows(
        self,
        offset: int = 0,
        limit: int = 100,
        expr: str | None = None,
        *,
        sort: str = "seq",
        descending: bool = False,
    ) -> list[FlowSummary]:
        """Like ``summaries()`` but lightweight ``FlowSummary`` rows: for 100,000-flow lists."""
        with self._reading() as conn:
            seqs = self._page_seqs(conn, offset, limit, expr, sort, descending)
            rows = conn.execute(
                f"SELECT seq, {_SUMMARY_COLUMNS} FROM flows "
                f"WHERE seq IN ({','.join('?' * len(seqs))})",
                seqs,
            ).fetchall()
        make = FlowSummary._make
        by_seq = {row[0]: make((*row[1:-1], bool(row[-1]))) for row in rows}
        return [by_seq[seq] for seq in seqs]

    def _sort_index(self, sort: str) -> None:
        """Have the writer create the index for sort key ``sort`` the first time it is used."""
        if sort in _SORT_INDEXES and sort not in self._sorted_by and self._writer is not None:
            self._call("sort_index", sort)
            self._sorted_by.add(sort)

    def _page_seqs(
        self,
        conn: sqlite3.Connection,
        offset: int,
        limit: int,
        expr: str | None,
        sort: str,
        descending: bool,
    ) -> list[int]:
        """The row ids of one page; skipping ``offset`` rows walks an index, not the table."""
        where, params = self._where(expr)
        order = self._order(sort, descending)
        self._sort_index(sort)
        rows = conn.execute(
            f"SELECT seq FROM flows WHERE {where} {order} LIMIT ? OFFSET ?",
            [*params, max(limit, 0), max(offset, 0)],
        )
        return [r[0] for r in rows]

    @staticmethod
    def _order(sort: str, descending: bool) -> str:
        if sort not in SORT_KEYS:
            raise ValueError(f"unknown sort key {sort!r}: use one of {', '.join(SORT_KEYS)}")
        direction = "DESC" if descending else "ASC"
        return f"ORDER BY {SORT_KEYS[sort]} {direction}, seq {direction}"

    def search(self, text: str, limit: int = 1000) -> list[str]:
        """Ids of flows whose URL, headers or text bodies contain ``text``, in capture order.

        Words match whole, the last one also as a prefix ("exam" finds "example");
        case and punctuation are ignored. Flows are indexed for search when the writer
        is idle; a search first has the writer catch up, and flows still unindexed
        (another process is recording) are matched through a temporary index.
        """
        if not text.strip():
            return []
        if self._writer is not None:
            self._call("index")
        query = '"' + text.replace('"', '""') + '" *'
        with self._reading() as conn:
            indexed = _watermark(conn)
            try:
                ids = self._match(conn, "flows_fts", query, limit)
                if len(ids) < limit:
                    ids += self._match_backlog(conn, indexed, query, limit - len(ids))
            except sqlite3.OperationalError:
                return []  # nothing searchable in the text (only punctuation)
        return ids

    @staticmethod
    def _match(conn: sqlite3.Connection, table: str, query: str, limit: int) -> list[str]:
        rows = conn.execute(
            f"SELECT flows.id FROM {table} JOIN flows ON flows.seq = {table}.rowid "
            f"WHERE {table} MATCH ? ORDER BY {table}.rowid LIMIT ?",
            (query, limit),
        )
        return [r[0] for r in rows]

    @staticmethod
    def _match_backlog(conn: sqlite3.Connection, indexed: int, query: str, limit: int) -> list[str]:
        """Search the flows past the watermark through this connection's temporary index.

        The temporary index lives as long as the reader connection and grows with the
        session, so repeated searches index each unindexed flow once. It assumes flows
        past the watermark are not changed by another process meanwhile (a writer's
        own ``search()`` moves the watermark first, which starts it afresh).
        """
        if conn.execute("SELECT 1 FROM flows WHERE seq > ? LIMIT 1", (indexed,)).fetchone() is None:
            return []
        top = _temp_index_top(conn, indexed)
        try:
            while entries := _backlog(conn, top, INDEX_CHUNK):
                _index(conn, entries, "temp.backlog_fts")
                top = entries[-1][0]
                conn.execute("UPDATE temp.backlog_state SET top = ?", (top,))
        except BaseException:
            conn.execute("DELETE FROM temp.backlog_state")  # rebuilt by the next search
            raise
        return Store._match(conn, "backlog_fts", query, limit)


def _temp_index_top(conn: sqlite3.Connection, indexed: int) -> int:
    """The last seq in the connection's temporary index of flows past ``indexed``."""
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.backlog_fts "
        "USING fts5(url, headers, body, content='')"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS temp.backlog_state (base INTEGER, top INTEGER)")
    row = conn.execute("SELECT base, top FROM temp.backlog_state").fetchone()
    if row is not None and row[0] == indexed:
        return row[1]
    # The watermark moved (or first use): what the temporary index holds is now indexed.
    conn.execute("INSERT INTO temp.backlog_fts (backlog_fts) VALUES ('delete-all')")
    conn.execute("DELETE FROM temp.backlog_state")
    conn.execute("INSERT INTO temp.backlog_state VALUES (?, ?)", (indexed, indexed))
    return indexed


def _id_list(ids: str | Iterable[str]) -> list[str]:
    return [ids] if isinstance(ids, str) else list(ids)


def _report(message: str) -> None:
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
