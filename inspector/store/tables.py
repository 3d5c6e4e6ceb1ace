"""Writing flows into the tables: insert new ones in capture order, update, mark, delete.

Every function runs inside the caller's transaction (the writer's, or a migration's).
``indexed`` is the search watermark (search.py): a flow at or below it has an index
entry that must follow its changes.
"""

from __future__ import annotations

import sqlite3

from inspector.store.reads import column_pairs
from inspector.store.record import COLUMNS
from inspector.store.rows import FlowRows
from inspector.store.search import index_flow, unindex_flow

_INSERT = f"INSERT INTO flows (seq, {', '.join(COLUMNS)}) VALUES (?{', ?' * len(COLUMNS)})"
_MARKED = COLUMNS.index("marked")
_UPDATED = [i for i, c in enumerate(COLUMNS) if c not in ("id", "marked")]
_UPDATE = (
    "UPDATE flows SET "
    + ", ".join(f"{COLUMNS[i]} = ?" for i in _UPDATED)
    + ", marked = max(marked, ?) WHERE seq = ?"
)


def known_seqs(conn: sqlite3.Connection, ids: list[str]) -> dict[str, int]:
    """The seq of each of ``ids`` already stored."""
    return column_pairs(conn, "id", "seq", ids)


def write_rows(conn: sqlite3.Connection, rows: list[FlowRows], indexed: int) -> int:
    """Insert new flows (in order, one statement per table) and update known ones in place.

    New flows are not indexed for search here (see ``search.index_backlog``); an update of
    a flow at or below the ``indexed`` watermark replaces its index entry. Returns the
    last new seq (0 when every flow was known).
    """
    known = known_seqs(conn, [r.flow_id for r in rows])
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


def _update_rows(conn: sqlite3.Connection, seq: int, rows: FlowRows, indexed: bool) -> None:
    """Replace a stored flow's columns, record, bodies and index entry (a mark stays)."""
    if indexed:
        unindex_flow(conn, seq)
    conn.execute("DELETE FROM bodies WHERE flow_seq = ?", (seq,))
    values = [rows.columns[i] for i in _UPDATED]
    conn.execute(_UPDATE, (*values, rows.columns[_MARKED], seq))
    conn.execute("INSERT OR REPLACE INTO records VALUES (?, ?)", (seq, rows.record))
    conn.executemany(
        "INSERT INTO bodies VALUES (?, ?, ?)", [(seq, part, data) for part, data in rows.bodies]
    )
    if indexed:
        index_flow(conn, seq)


def set_marked(conn: sqlite3.Connection, ids: list[str], marked: bool) -> None:
    conn.executemany("UPDATE flows SET marked = ? WHERE id = ?", [(int(marked), i) for i in ids])


def delete_flows(conn: sqlite3.Connection, ids: list[str], indexed: int) -> int:
    """Delete flows by id with their record, bodies and index entry; returns how many existed."""
    deleted = 0
    for seq in known_seqs(conn, ids).values():
        if seq <= indexed:
            unindex_flow(conn, seq)
        conn.execute("DELETE FROM flows WHERE seq = ?", (seq,))
        conn.execute("DELETE FROM records WHERE seq = ?", (seq,))
        conn.execute("DELETE FROM bodies WHERE flow_seq = ?", (seq,))
        deleted += 1
    return deleted
