"""The full-text index behind ``Store.search()`` (FTS5 over URL, headers and text bodies).

Writing a flow does not index it (indexing costs about half as much as the rest of the
write): the writer indexes flows in capture order, in chunks, when it is idle (see
writer.py). ``meta.fts_indexed`` is the seq up to which every flow is indexed. A search
matches flows past that watermark through a temporary in-memory index per reader
connection, so results are complete even while another process records.

The index is computed from the ``flows`` columns and the bodies, never from the record:
indexing then needs no JSON, and unindexing recomputes exactly what was indexed. Text
bodies (``inspector.content.is_text_body``) are indexed up to ``FTS_BODY_LIMIT`` bytes.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from inspector.content import is_text_body
from inspector.store.record import REQUEST, RESPONSE
from inspector.store.rows import clean

FTS_BODY_LIMIT = 1024 * 1024  # bytes of each text body indexed for search
INDEX_CHUNK = 500  # flows indexed per transaction

_FTS_SOURCE = "SELECT seq, url, req_head_text, resp_head_text, req_content_type, resp_content_type"

FtsEntry = tuple[int, str, str, str]  # rowid, url, headers, body


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
    if not data or not is_text_body(data, content_type, _head_value(head_text, "content-encoding")):
        return ""
    return data[:FTS_BODY_LIMIT].decode("utf-8", errors="replace")


def _fts_entries(
    rows: list[tuple[Any, ...]], bodies: dict[int, dict[int, bytes]]
) -> list[FtsEntry]:
    """The index entries of ``_FTS_SOURCE`` rows, given their bodies by seq and part."""
    entries = []
    for seq, url, req_heads, resp_heads, req_type, resp_type in rows:
        parts = bodies.get(seq, {})
        texts = [_body_text(req_type, req_heads, parts.get(REQUEST, b""))]
        heads = req_heads
        if resp_heads is not None:
            heads += "\n" + resp_heads
            texts.append(_body_text(resp_type, resp_heads, parts.get(RESPONSE, b"")))
        entries.append((seq, url, heads, clean("\n".join(t for t in texts if t))))
    return entries  # type: ignore[return-value]


def bodies_between(conn: sqlite3.Connection, first: int, last: int) -> dict[int, dict[int, bytes]]:
    """The bodies of the flows with seq ``first`` to ``last``, by seq and part."""
    bodies: dict[int, dict[int, bytes]] = {}
    for seq, part, data in conn.execute(
        "SELECT flow_seq, part, data FROM bodies WHERE flow_seq BETWEEN ? AND ?", (first, last)
    ):
        bodies.setdefault(seq, {})[part] = data
    return bodies


def _entries_of(conn: sqlite3.Connection, seq: int) -> list[FtsEntry]:
    rows = conn.execute(f"{_FTS_SOURCE} FROM flows WHERE seq = ?", (seq,)).fetchall()
    return _fts_entries(rows, bodies_between(conn, seq, seq))


def _backlog(conn: sqlite3.Connection, after: int, limit: int) -> list[FtsEntry]:
    """The index entries of up to ``limit`` flows past seq ``after``, in capture order."""
    rows = conn.execute(
        f"{_FTS_SOURCE} FROM flows WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
    ).fetchall()
    if not rows:
        return []
    # Every flow between the first and last seq is in ``rows``: one range read.
    return _fts_entries(rows, bodies_between(conn, rows[0][0], rows[-1][0]))


def _index(conn: sqlite3.Connection, entries: list[FtsEntry], table: str) -> None:
    conn.executemany(
        f"INSERT INTO {table} (rowid, url, headers, body) VALUES (?, ?, ?, ?)", entries
    )


def index_flow(conn: sqlite3.Connection, seq: int) -> None:
    """Index one stored flow (one at or below the watermark that was just rewritten)."""
    _index(conn, _entries_of(conn, seq), "flows_fts")


def unindex_flow(conn: sqlite3.Connection, seq: int) -> None:
    """Remove one flow's index entry (before its columns or bodies change or go)."""
    # The index keeps no copy of the text (content=''), so removing a row means handing
    # FTS5 the very values it was indexed under: recomputed from the same columns.
    conn.executemany(
        "INSERT INTO flows_fts (flows_fts, rowid, url, headers, body) "
        "VALUES ('delete', ?, ?, ?, ?)",
        _entries_of(conn, seq),
    )


def watermark(conn: sqlite3.Connection) -> int:
    """The seq up to which every flow is in the search index."""
    return int(conn.execute("SELECT value FROM meta WHERE key = 'fts_indexed'").fetchone()[0])


def index_backlog(conn: sqlite3.Connection, indexed: int) -> int:
    """Index one chunk of flows past the watermark ``indexed``; returns the new watermark."""
    entries = _backlog(conn, indexed, INDEX_CHUNK)
    if not entries:
        return indexed
    _index(conn, entries, "flows_fts")
    indexed = entries[-1][0]
    conn.execute("UPDATE meta SET value = ? WHERE key = 'fts_indexed'", (str(indexed),))
    return indexed


def index_all(conn: sqlite3.Connection, indexed: int, deadline: float = math.inf) -> int:
    """Index every unindexed flow (or as many as fit before ``deadline``, monotonic)."""
    while (caught_up := index_backlog(conn, indexed)) != indexed:
        indexed = caught_up
        if time.monotonic() > deadline:
            break
    return indexed


def search_ids(conn: sqlite3.Connection, text: str, limit: int) -> list[str]:
    """Ids of flows whose URL, headers or text bodies contain ``text``, in capture order.

    Words match whole, the last one also as a prefix ("exam" finds "example"); case and
    punctuation are ignored.
    """
    query = '"' + text.replace('"', '""') + '" *'
    indexed = watermark(conn)
    try:
        ids = _match(conn, "flows_fts", query, limit)
        if len(ids) < limit:
            ids += _match_backlog(conn, indexed, query, limit - len(ids))
    except sqlite3.OperationalError:
        return []  # nothing searchable in the text (only punctuation)
    return ids


def _match(conn: sqlite3.Connection, table: str, query: str, limit: int) -> list[str]:
    rows = conn.execute(
        f"SELECT flows.id FROM {table} JOIN flows ON flows.seq = {table}.rowid "
        f"WHERE {table} MATCH ? ORDER BY {table}.rowid LIMIT ?",
        (query, limit),
    )
    return [r[0] for r in rows]


def _match_backlog(conn: sqlite3.Connection, indexed: int, query: str, limit: int) -> list[str]:
    """Search the flows past the watermark through this connection's temporary index.

    The temporary index lives as long as the reader connection and grows with the
    session, so repeated searches index each unindexed flow once. It assumes flows
    past the watermark are not changed by another process meanwhile (a writer's
    own ``search()`` moves the watermark first, which starts it afresh).
    """
    if not index_temp(conn, indexed):
        return []
    return _match(conn, "backlog_fts", query, limit)


def index_temp(
    conn: sqlite3.Connection, indexed: int, between: Callable[[], object] = lambda: None
) -> bool:
    """Bring the connection's temporary index up to the last flow (``between()`` runs after
    each chunk); False when no flow is past the watermark ``indexed``."""
    if conn.execute("SELECT 1 FROM flows WHERE seq > ? LIMIT 1", (indexed,)).fetchone() is None:
        return False
    top = _temp_index_top(conn, indexed)
    try:
        while entries := _backlog(conn, top, INDEX_CHUNK):
            _index(conn, entries, "temp.backlog_fts")
            top = entries[-1][0]
            conn.execute("UPDATE temp.backlog_state SET top = ?", (top,))
            between()
    except BaseException:
        conn.execute("DELETE FROM temp.backlog_state")  # rebuilt by the next search
        raise
    return True


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
