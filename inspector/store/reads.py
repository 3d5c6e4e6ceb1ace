"""Reading flows back: by id, page by page in capture order, sorted pages of summaries.

Each function reads through one connection inside the caller's snapshot (see
``files.Readers.reading``); ``where``/``params`` are a filter compiled to SQL by
``inspector.filters``.
"""

from __future__ import annotations

import sqlite3

from inspector.filters import parse
from inspector.flow import Flow
from inspector.store.record import SUMMARY_COLUMNS, FlowSummary, decode_flow
from inspector.store.schema import order_by

PAGE = 200  # flows read per query by iter_flows

Page = tuple[list[tuple[int, str, int]], dict[int, dict[int, bytes]]]


def where(expr: str | None) -> tuple[str, list[object]]:
    """The SQL condition and parameters of filter expression ``expr`` (FilterError if bad)."""
    if expr is None or not expr.strip():
        return "1", []
    return parse(expr).sql()


def read_flow(conn: sqlite3.Connection, flow_id: str) -> Flow | None:
    """The flow with id ``flow_id``, bodies included, or None."""
    row = conn.execute(
        "SELECT flows.seq, record, marked FROM flows JOIN records USING (seq) WHERE id = ?",
        (flow_id,),
    ).fetchone()
    if row is None:
        return None
    bodies = dict(conn.execute("SELECT part, data FROM bodies WHERE flow_seq = ?", row[:1]))
    return decode_flow(row[1], row[2], bodies)


def page_after(conn: sqlite3.Connection, condition: str, params: list[object], after: int) -> Page:
    """The next page of matching records after seq ``after``, and their bodies by seq."""
    rows = conn.execute(
        "SELECT flows.seq, record, marked FROM flows JOIN records USING (seq) "
        f"WHERE flows.seq > ? AND {condition} ORDER BY flows.seq LIMIT {PAGE}",
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


def page_seqs(
    conn: sqlite3.Connection, expr: str | None, sort: str, descending: bool, window: slice
) -> list[int]:
    """The row ids of one page (``window``: offset to offset + limit) in ``sort`` order.

    Skipping ``offset`` rows walks an index, not the table.
    """
    condition, params = where(expr)
    rows = conn.execute(
        f"SELECT seq FROM flows WHERE {condition} {order_by(sort, descending)} LIMIT ? OFFSET ?",
        [*params, max(window.stop - window.start, 0), max(window.start, 0)],
    )
    return [r[0] for r in rows]


def flows_without_bodies(conn: sqlite3.Connection, seqs: list[int]) -> list[Flow]:
    """The flows at ``seqs``, in that order, with empty body bytes (sizes kept)."""
    rows = conn.execute(
        "SELECT seq, record, marked FROM flows JOIN records USING (seq) "
        f"WHERE seq IN ({','.join('?' * len(seqs))})",
        seqs,
    ).fetchall()
    flows = {seq: decode_flow(rec, m, {}) for seq, rec, m in rows}
    return [flows[seq] for seq in seqs]


def summaries_after(
    conn: sqlite3.Connection, after: int, limit: int
) -> tuple[list[FlowSummary], int]:
    """Up to ``limit`` summaries in capture order past row id ``after``, and the last row
    id read (``after`` when none): paging by key, where an offset walks every row skipped."""
    rows = conn.execute(
        f"SELECT seq, {SUMMARY_COLUMNS} FROM flows WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, max(limit, 0)),
    ).fetchall()
    if not rows:
        return [], after
    return [_summary(row) for row in rows], rows[-1][0]


def _summary(row: tuple) -> FlowSummary:
    """A ``FlowSummary`` from ``seq, SUMMARY_COLUMNS``: marked and modified come as 0/1
    from SQLite, then the version text."""
    return FlowSummary._make((*row[1:-3], bool(row[-3]), bool(row[-2]), row[-1]))


def summaries_at(conn: sqlite3.Connection, seqs: list[int]) -> list[FlowSummary]:
    """The ``FlowSummary`` rows at ``seqs``, in that order."""
    rows = conn.execute(
        f"SELECT seq, {SUMMARY_COLUMNS} FROM flows WHERE seq IN ({','.join('?' * len(seqs))})",
        seqs,
    ).fetchall()
    by_seq = {row[0]: _summary(row) for row in rows}
    return [by_seq[seq] for seq in seqs]
