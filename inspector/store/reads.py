"""Reading flows back: by id, page by page in capture order, sorted pages of summaries.

Each function reads through one connection inside the caller's snapshot (see
``files.Readers.reading``); ``where``/``params`` are a filter compiled to SQL by
``inspector.filters``.
"""

from __future__ import annotations

import sqlite3
from array import array
from collections.abc import Callable

from inspector.filters import parse
from inspector.flow import Flow
from inspector.store.record import COLUMNS, SUMMARY_COLUMNS, FlowSummary, decode_flow
from inspector.store.schema import order_by

PAGE = 200  # flows read per query by iter_flows
SEQ_TEXT_SLICE = 65_536  # characters of row ids parsed at a time by ordered_seqs
PROGRESS_STEPS = 2_000_000  # SQLite steps between two looks at whether a query was given up

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


def _summary(row: tuple) -> FlowSummary:
    """A ``FlowSummary`` from ``seq, SUMMARY_COLUMNS``: marked and modified come as 0/1
    from SQLite, then the version text."""
    return FlowSummary._make((*row[1:-3], bool(row[-3]), bool(row[-2]), row[-1]))


def summaries_at(conn: sqlite3.Connection, seqs: list[int]) -> list[FlowSummary]:
    """The ``FlowSummary`` rows at ``seqs``, in that order."""
    by_seq = summaries_by_seq(conn, seqs)
    return [by_seq[seq] for seq in seqs]


def summaries_by_seq(conn: sqlite3.Connection, seqs: list[int]) -> dict[int, FlowSummary]:
    """The ``FlowSummary`` of each of ``seqs`` still stored, by row id."""
    rows = conn.execute(
        f"SELECT seq, {SUMMARY_COLUMNS} FROM flows WHERE seq IN ({','.join('?' * len(seqs))})",
        seqs,
    ).fetchall()
    return {row[0]: _summary(row) for row in rows}


def all_seqs(conn: sqlite3.Connection) -> array:
    """Every row id in capture order: a range without a query per row when none was deleted."""
    # Apart, min and max are read at the ends of the b-tree and count(*) counts its pages;
    # asked together, SQLite visits every row (40x slower).
    count = conn.execute("SELECT count(*) FROM flows").fetchone()[0]
    if not count:
        return array("q")
    low = conn.execute("SELECT min(seq) FROM flows").fetchone()[0]
    high = conn.execute("SELECT max(seq) FROM flows").fetchone()[0]
    if high - low + 1 == count:  # no gaps: the usual session, where nothing was deleted
        return array("q", range(low, high + 1))
    return array("q", [seq for (seq,) in conn.execute("SELECT seq FROM flows ORDER BY seq")])


def _marked_source(marks: dict[int, bool]) -> str:
    """``flows`` with ``marked`` as the caller sees it: ``marks`` (row id -> marked) win
    over the column (marks of a read-only session live in memory only)."""
    on = ",".join(str(int(seq)) for seq, m in marks.items() if m) or "NULL"
    off = ",".join(str(int(seq)) for seq, m in marks.items() if not m) or "NULL"
    case = f"CASE WHEN seq IN ({on}) THEN 1 WHEN seq IN ({off}) THEN 0 ELSE marked END"
    columns = ", ".join(case + " AS marked" if c == "marked" else c for c in COLUMNS)
    return f"(SELECT seq, {columns} FROM flows) AS flows"


def ordered_seqs(
    conn: sqlite3.Connection, expr: str | None, order: str, *,
    only_marked: bool = False, marks: dict[int, bool] | None = None, upto: int | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> array | None:  # fmt: skip
    """Row ids of the flows matching ``expr`` (and marked, with ``only_marked``) up to
    row id ``upto``, in ``order`` (an ORDER BY clause); None once ``cancelled()``."""
    condition, params = where(expr)
    if only_marked:
        condition += " AND flows.marked = 1"
    if upto is not None:
        condition += f" AND flows.seq <= {int(upto)}"
    source = _marked_source(marks) if marks else "flows"
    query = f"SELECT flows.seq FROM {source} WHERE {condition} {order}"
    # A query given up (a newer filter was typed) stops inside SQLite, not after it.
    conn.set_progress_handler(lambda: 1 if cancelled() else 0, PROGRESS_STEPS)
    try:
        # One row of text rather than a row per flow: SQLite runs the whole query without
        # the interpreter (a row each would take and give back the GIL, fighting the UI
        # thread for it). The subquery is not flattened into an aggregate, so its rows
        # come in its ORDER BY (tests check every list order).
        text = conn.execute(f"SELECT group_concat(seq) FROM ({query})", params).fetchone()[0]
    except sqlite3.OperationalError:
        if cancelled():  # "interrupted"
            return None
        raise
    finally:
        conn.set_progress_handler(None, 0)
    return None if cancelled() else _parse_seqs(text or "")


def _parse_seqs(text: str) -> array:
    """Row ids from ``group_concat``'s text, a slice at a time (not a million strings)."""
    seqs = array("q")
    start, end = 0, len(text)
    while start < end:
        stop = text.find(",", start + SEQ_TEXT_SLICE)
        if stop < 0:
            stop = end
        seqs.extend(map(int, text[start:stop].split(",")))
        start = stop + 1
    return seqs


def tail(conn: sqlite3.Connection, after: int) -> list[tuple[int, str]]:
    """``(row id, flow id)`` of the flows stored past row id ``after``, in capture order."""
    return conn.execute("SELECT seq, id FROM flows WHERE seq > ? ORDER BY seq", (after,)).fetchall()


def ids_at(conn: sqlite3.Connection, seqs: list[int]) -> dict[int, str]:
    """The flow id of each of ``seqs`` still stored, by row id."""
    return column_pairs(conn, "seq", "id", seqs)


def column_pairs(conn: sqlite3.Connection, key: str, value: str, keys: list) -> dict:
    """``{key: value}`` of the flows whose column ``key`` is one of ``keys`` (an indexed
    column: one query per 500 keys)."""
    found: dict = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT {key}, {value} FROM flows WHERE {key} IN ({marks})"
        found.update(conn.execute(query, chunk))
    return found
