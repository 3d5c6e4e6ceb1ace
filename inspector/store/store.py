"""``Store``: one session file, recorded to by a writer thread and read from any thread.

See writer.py for how flows are written, files.py for opening and reading connections,
schema.py for the layout, search.py for ``search()``.
"""

from __future__ import annotations

import atexit
import sqlite3
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from inspector.flow import Flow
from inspector.store import reads
from inspector.store.errors import StoreError, report
from inspector.store.files import Readers, open_for_writing
from inspector.store.record import FlowSummary, decode_flow
from inspector.store.schema import SORT_INDEXES, list_order_by
from inspector.store.search import index_temp, search_ids, watermark
from inspector.store.writer import Writer

T = TypeVar("T")


class Store:
    """A session file: ``put`` flows from any thread, read them back from any thread.

    ``Store(path)`` creates or opens the file for recording (an older layout is migrated
    in place); ``Store(path, readonly=True)`` only reads it, also while another process
    records. StoreError, naming the file and what to do, when it cannot be used.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.readonly = readonly
        self._close_lock = threading.Lock()
        self._closed = False
        self._sorted_by: set[str] = set()  # sort keys whose index is known to exist
        self._writer: Writer | None = None
        if readonly:
            self._readers = Readers(self.path, validate=True)
        else:
            self._writer = Writer(open_for_writing(self.path), self.path)
            self._readers = Readers(self.path)
        atexit.register(self._close_at_exit)

    # --- writing --------------------------------------------------------------------------

    def put(self, flow: Flow) -> None:
        """Record (insert or update) a flow; returns at once, the writer thread commits it."""
        if self._writer is None:
            raise StoreError(f"{self.path}: cannot record to a session opened read-only or closed")
        self._writer.put(flow)

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
        return self._writer.call(kind, *args, timeout=timeout)

    def close(self) -> None:
        """Flush, stop the writer and close every connection (idempotent)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self._close_at_exit)
        # The writer's connection closes last, so SQLite checkpoints the WAL into the file and
        # removes it (a read-only connection closing last cannot): a closed session is one file.
        self._readers.close()
        try:
            if self._writer is not None:
                self._writer.stop()
        finally:
            self._readers.cleanup()

    def _close_at_exit(self) -> None:
        # A program that forgot close() still gets every flow it put onto disk.
        try:
            self.close()
        except StoreError as e:
            report(f"inspector: {e}")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading --------------------------------------------------------------------------

    def count(self, expr: str | None = None) -> int:
        """How many flows (matching the filter expression ``expr``) the session holds."""
        condition, params = reads.where(expr)
        with self._readers.reading() as conn:
            query = f"SELECT count(*) FROM flows WHERE {condition}"
            return conn.execute(query, params).fetchone()[0]

    def get(self, flow_id: str) -> Flow | None:
        with self._readers.reading() as conn:
            return reads.read_flow(conn, flow_id)

    def iter_flows(self, expr: str | None = None) -> Iterator[Flow]:
        """Every flow (matching ``expr``), bodies included, in capture order."""
        condition, params = reads.where(expr)
        last = 0
        while True:
            with self._readers.reading() as conn:
                rows, bodies = reads.page_after(conn, condition, params, last)
            if not rows:
                return
            for seq, record, marked in rows:
                yield decode_flow(record, marked, bodies.get(seq, {}))
            last = rows[-1][0]

    def summaries(
        self, offset: int = 0, limit: int = 100, expr: str | None = None, *,
        sort: str = "seq", descending: bool = False,
    ) -> list[Flow]:  # fmt: skip
        """A page of flows WITHOUT body bytes (``FlowBody.data`` is empty, size kept).

        In capture order, or by ``sort`` (a key of ``SORT_KEYS``); ``expr`` filters.
        Use ``get()`` for a flow's bodies.
        """
        window = slice(offset, offset + limit)
        return self._sorted_page(reads.flows_without_bodies, window, expr, sort, descending)

    def summary_rows(
        self, offset: int = 0, limit: int = 100, expr: str | None = None, *,
        sort: str = "seq", descending: bool = False,
    ) -> list[FlowSummary]:  # fmt: skip
        """Like ``summaries()`` but lightweight ``FlowSummary`` rows: for 100,000-flow lists."""
        window = slice(offset, offset + limit)
        return self._sorted_page(reads.summaries_at, window, expr, sort, descending)

    # --- the flow list's reads (inspector.tui): row ids, and rows by row id ------------------

    def all_seqs(self) -> array:
        """Every flow's row id (``seq``), in capture order."""
        with self._readers.reading() as conn:
            return reads.all_seqs(conn)

    def list_seqs(
        self, expr: str | None = None, *, sort: str = "time", descending: bool = False,
        only_marked: bool = False, marks: dict[int, bool] | None = None,
        upto: int | None = None, cancelled: Callable[[], bool] = lambda: False,
    ) -> array | None:  # fmt: skip
        """Row ids of the flows matching ``expr`` (marked ones only with ``only_marked``),
        up to row id ``upto``, ordered by the flow list's column ``sort``; ``marks`` (row
        id -> marked) override the file's marks. None when ``cancelled()`` turned true."""
        order = list_order_by(sort, descending)
        with self._readers.reading() as conn:
            return reads.ordered_seqs(
                conn, expr, order, only_marked=only_marked, marks=marks, upto=upto,
                cancelled=cancelled,
            )  # fmt: skip

    def summaries_by_seq(self, seqs: list[int]) -> dict[int, FlowSummary]:
        """The ``FlowSummary`` of each of ``seqs`` still stored, by row id."""
        if not seqs:
            return {}
        with self._readers.reading() as conn:
            return reads.summaries_by_seq(conn, seqs)

    def tail(self, after: int) -> list[tuple[int, str]]:
        """``(row id, flow id)`` of every flow stored past row id ``after``."""
        with self._readers.reading() as conn:
            return reads.tail(conn, after)

    def seqs_of(self, ids: list[str]) -> dict[str, int]:
        """The row id of each of ``ids`` that is stored."""
        with self._readers.reading() as conn:
            return reads.column_pairs(conn, "id", "seq", ids)

    def ids_at(self, seqs: list[int]) -> dict[int, str]:
        """The flow id at each of the row ids ``seqs`` still stored."""
        with self._readers.reading() as conn:
            return reads.ids_at(conn, seqs)

    def _sorted_page(
        self, read: Callable[[sqlite3.Connection, list[int]], list[T]], window: slice,
        expr: str | None, sort: str, descending: bool,
    ) -> list[T]:  # fmt: skip
        """``read`` of the flows in ``window`` of the filtered list in ``sort`` order."""
        if sort in SORT_INDEXES and sort not in self._sorted_by and self._writer is not None:
            self._call("sort_index", sort)  # created the first time a sort key is used
            self._sorted_by.add(sort)
        with self._readers.reading() as conn:
            return read(conn, reads.page_seqs(conn, expr, sort, descending, window))

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
        with self._readers.searching() as conn:
            return search_ids(conn, text, limit)

    def prepare_search(self, pause: float = 0.0) -> None:
        """Index for search, ahead of the first one, what a read-only session has left
        unindexed (a writable one's writer indexes when idle), sleeping ``pause`` seconds
        between chunks so that other threads run."""
        if self._writer is not None:
            return
        with self._readers.searching() as conn:
            index_temp(conn, watermark(conn), lambda: time.sleep(pause))


def _id_list(ids: str | Iterable[str]) -> list[str]:
    return [ids] if isinstance(ids, str) else list(ids)
