"""The writer thread: the only write connection, group commit, and search indexing when idle.

``put(flow)`` only appends to a queue (it never waits for the disk and never drops a
flow). The writer wakes on the first queued flow, gathers more for up to
``COMMIT_DELAY`` (50 ms; at once when a batch is full or a caller waits), and writes up
to ``BATCH_SIZE`` flows in one transaction, new ones with one statement per table: a
finished flow is committed within about ``COMMIT_DELAY`` plus the time to write one
batch. A put of a flow already stored updates it in place (it keeps its place in
capture order). Operations (``OPERATIONS``: flush, delete, mark, ...) ride the same
queue, so each sees every flow put before it. A batch that cannot be committed (disk
full, a lock held elsewhere) is reported on stderr and kept in memory for the next
batch; the operations in it fail with ``StoreError``. Stopping writes what is left,
then indexes the session for search and sorting.

Flows are indexed for search when no flow has come for ``INDEX_IDLE`` seconds, a chunk
per batch once more than ``MAX_BACKLOG`` wait, and for up to ``CLOSE_INDEX_SECONDS``
on stop.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any

from inspector.flow import Flow
from inspector.store.errors import StoreError, report
from inspector.store.rows import flow_rows
from inspector.store.schema import SORT_INDEXES
from inspector.store.search import index_all, index_backlog, watermark
from inspector.store.tables import delete_flows, set_marked, write_rows

BATCH_SIZE = 200  # flows per transaction at most
COMMIT_DELAY = 0.05  # seconds the writer gathers a trickle of flows before writing them
INDEX_IDLE = 1.0  # seconds without new flows before the writer indexes flows for search
MAX_BACKLOG = 50_000  # flows left unindexed at most: beyond, a chunk is indexed per batch
CLOSE_INDEX_SECONDS = 0.5  # stopping indexes what is left for about this long at most


@dataclass(eq=False)
class _Op:
    """A request to the writer thread; the caller waits on ``done``."""

    kind: str  # a key of OPERATIONS
    args: tuple[Any, ...] = ()
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: str | None = None


@dataclass(slots=True)
class _Txn:
    """One batch's transaction: the writer's state as it will be if the batch commits."""

    conn: sqlite3.Connection
    indexed: int  # the search watermark
    last_seq: int  # the last flow written
    stop: bool = False


def _flush(txn: _Txn) -> None:
    """Nothing more: the flows put before an operation are written before it runs."""


def _delete(txn: _Txn, ids: list[str]) -> int:
    return delete_flows(txn.conn, ids, txn.indexed)


def _mark(txn: _Txn, ids: list[str], marked: bool) -> None:
    set_marked(txn.conn, ids, marked)


def _index(txn: _Txn) -> None:
    txn.indexed = index_all(txn.conn, txn.indexed)


def _sort_index(txn: _Txn, key: str) -> None:
    txn.conn.execute(f"CREATE INDEX IF NOT EXISTS {SORT_INDEXES[key]}")


def _stop(txn: _Txn) -> None:
    txn.stop = True


OPERATIONS: dict[str, Callable[..., Any]] = {
    "flush": _flush,
    "delete": _delete,
    "mark": _mark,
    "index": _index,
    "sort_index": _sort_index,
    "stop": _stop,
}
"""What the writer does for each operation, inside the batch's transaction; the handler's
return value is the caller's result."""


class Writer:
    """The writer thread of one session file; it owns ``conn`` until it stops."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.path = path
        self._queue: SimpleQueue[Flow | _Op] = SimpleQueue()
        self._urgent = threading.Event()  # a caller waits on the writer: skip the delay
        self._lock = threading.Lock()
        self._stopping = False  # set under _lock: nothing may be queued after the stop
        self._unsaved: dict[str, Flow] = {}  # flows a failed commit must retry
        self._indexed = watermark(conn)  # flows up to here are indexed for search
        self._last_seq = conn.execute("SELECT coalesce(max(seq), 0) FROM flows").fetchone()[0]
        self._thread = threading.Thread(
            target=self._loop, args=(conn,), name=f"store-writer {path.name}", daemon=True
        )
        self._thread.start()

    def put(self, flow: Flow) -> None:
        """Queue a flow to insert or update; returns at once."""
        with self._lock:
            if self._stopping:
                raise StoreError(
                    f"{self.path}: cannot record to a session opened read-only or closed"
                )
            self._queue.put(flow)

    def call(self, kind: str, *args: Any, timeout: float | None = None) -> Any:
        """Run operation ``kind`` after every flow queued so far; its result or StoreError."""
        op = _Op(kind, args)
        with self._lock:
            if self._stopping:
                raise StoreError(f"{self.path}: the session store is closed")
            self._queue.put(op)
            self._urgent.set()
        if not op.done.wait(timeout):
            raise StoreError(f"{self.path}: the writer did not finish {kind} within {timeout} s")
        if op.error is not None:
            raise StoreError(f"{self.path}: {op.error}")
        return op.result

    def stop(self) -> None:
        """Write what is queued, index, close the connection; StoreError if writing failed."""
        op = _Op("stop")
        with self._lock:
            self._stopping = True
            self._queue.put(op)
            self._urgent.set()
        self._thread.join()
        if op.error is not None:
            raise StoreError(f"{self.path}: {op.error}")

    def _loop(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                batch = self._next_batch(conn)
                try:
                    if self._write_batch(conn, batch):
                        self._index_on_stop(conn)
                        return
                except Exception as e:  # a bug: report it, and never leave a caller waiting
                    _rollback(conn)
                    report(f"inspector: {self.path}: session writer error: {e!r}")
                    for op in batch:
                        if isinstance(op, _Op):
                            op.error = f"session writer error: {e!r}"
                            op.done.set()
        finally:
            conn.close()

    def _next_batch(self, conn: sqlite3.Connection) -> list[Flow | _Op]:
        """Wait for work, then gather for up to COMMIT_DELAY (group commit).

        One commit per flow costs more than the flow itself, and every wake of this
        thread takes the GIL from the proxy's event loop, so a trickle of flows is
        collected for a short while and written together. A waiting caller (flush,
        delete, mark, stop) sets ``_urgent`` to cut the wait short; a full batch or a
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
            indexed = index_backlog(conn, self._indexed)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            _rollback(conn)
            report(f"inspector: {self.path}: could not index flows for search: {e}")
            self._last_seq = self._indexed  # retried after the next write
            return
        if indexed == self._indexed:  # nothing left (the backlog was deleted)
            self._last_seq = indexed
        self._indexed = indexed

    def _index_on_stop(self, conn: sqlite3.Connection) -> None:
        """Leave the session indexed for search and sorting, after its last flows are safe.

        A session is mostly searched and sorted after recording, read-only, and a
        read-only store cannot create indexes.
        """
        try:
            conn.execute("BEGIN IMMEDIATE")
            deadline = time.monotonic() + CLOSE_INDEX_SECONDS
            self._indexed = index_all(conn, self._indexed, deadline)
            for ddl in SORT_INDEXES.values():  # ~3.5 us of CPU per flow each
                conn.execute(f"CREATE INDEX IF NOT EXISTS {ddl}")
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            _rollback(conn)
            report(f"inspector: {self.path}: could not index the session on close: {e}")

    def _write_batch(self, conn: sqlite3.Connection, batch: list[Flow | _Op]) -> bool:
        """Apply one batch in one transaction; True when a stop was asked for."""
        retry, self._unsaved = self._unsaved, {}
        pending = dict(retry)  # flows put but not yet written, in capture order
        txn = _Txn(conn, self._indexed, self._last_seq)  # kept only if this commits
        try:
            conn.execute("BEGIN IMMEDIATE")  # write_rows numbers new flows from max(seq)
            for item in batch:
                if isinstance(item, Flow):
                    pending[item.id] = item  # a repeated put keeps its first place
                    continue
                txn.last_seq = max(txn.last_seq, _write_pending(txn, pending))
                item.result = OPERATIONS[item.kind](txn, *item.args)
            txn.last_seq = max(txn.last_seq, _write_pending(txn, pending))
            if txn.last_seq - txn.indexed > MAX_BACKLOG:  # never idle for long: index as we go
                txn.indexed = index_backlog(conn, txn.indexed)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            return self._batch_failed(conn, batch, retry, e)
        self._indexed, self._last_seq = txn.indexed, txn.last_seq
        for item in batch:
            if isinstance(item, _Op):
                item.done.set()
        return txn.stop

    def _batch_failed(
        self,
        conn: sqlite3.Connection,
        batch: list[Flow | _Op],
        retry: dict[str, Flow],
        error: sqlite3.Error,
    ) -> bool:
        """Undo the batch, keep every flow of it for the next one, fail its operations."""
        _rollback(conn)
        unsaved = retry
        for item in batch:
            if isinstance(item, Flow):
                unsaved[item.id] = item
        self._unsaved = unsaved
        message = f"could not write {len(unsaved)} flow(s) to the session: {error}"
        report(f"inspector: {self.path}: {message}")
        stop = False
        for op in (i for i in batch if isinstance(i, _Op)):
            op.error = message
            op.done.set()
            stop = stop or op.kind == "stop"
        return stop


def _write_pending(txn: _Txn, pending: dict[str, Flow]) -> int:
    """Write the pending flows; returns the last new seq (0 if none was new)."""
    rows = []
    for flow in pending.values():
        try:
            rows.append(flow_rows(flow))
        except Exception as e:  # a malformed flow (a bug upstream) can never be stored
            report(f"inspector: cannot record flow {flow.id}: {e!r} (please report this bug)")
    pending.clear()
    # An sqlite3.Error retries the whole batch.
    return write_rows(txn.conn, rows, txn.indexed) if rows else 0


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # no transaction was open
