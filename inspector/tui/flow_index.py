"""The flow list's model at any size: row ids in the list's order, rows read from the store
a page at a time.

Per stored flow the list holds one 8-byte row id (the store's ``seq``) in capture order,
and one more in the shown order while a filter, the marks-only view or a sort is on. The
rows drawn are read from the store by row id, a page at a time, into a small cache.
Flows the store does not have yet (in flight, just finished, or made by the UI in a
read-only session) are live rows kept whole in memory, after the stored ones;
``absorb`` moves each into the stored part once the store has it. The store writes
flows as they finish, so a flow still in flight when a later one is stored is pinned
to its place in arrival order: a negative key among the row ids, until the store has it.

Filters, marks-only and sorts over the stored flows run in SQL (``Query``, answered by
``Store.list_seqs``); ``FlowState`` judges the live rows with the same filter in Python.
Rows the UI changed (marks, edits, a flow stored while still held) are kept in
``changed`` and win over the store, which may not have them yet (or ever: marks in a
read-only session).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from inspector.flow import Flow
from inspector.tui.rows import SORT_KEYS, FlowRow

PAGE = 64  # rows read from the store at a time
CACHE_ROWS = 4096  # rows kept from the store; the oldest quarter goes when full
SYNC_ROWS = 20_000  # a query over at most this many stored flows runs right away
LIVE_SEQ = 1 << 60  # live rows count from here: after every stored row in capture order


class RowSource(Protocol):
    """What the index reads from the session (``Session`` implements it)."""

    def rows_at(self, seqs: list[int]) -> dict[int, FlowRow]: ...
    def seqs_of(self, ids: list[str]) -> dict[str, int]: ...
    def ids_at(self, seqs: list[int]) -> dict[int, str]: ...
    def list_seqs(self, query: Query, cancelled: Callable[[], bool]) -> array | None: ...


@dataclass(frozen=True, eq=False)
class Query:
    """What the stored part of the list shows: run by ``Store.list_seqs``."""

    expr: str | None
    only_marked: bool
    sort: str  # a column of the list ("time": capture order)
    descending: bool
    upto: int  # the last stored row the list knows
    marks: dict[int, bool] = field(default_factory=dict)  # the UI's marks win

    @property
    def identity(self) -> bool:
        """True when the answer is every stored flow in capture order (no query needed)."""
        return (
            self.expr is None
            and not self.only_marked
            and self.sort == "time"
            and not (self.descending)
        )


class FlowIndex:
    """Every flow of the session in capture order, and the shown (filtered, sorted) list."""

    def __init__(self, source: RowSource | None = None) -> None:
        self.source = source
        self.stored = array("q")  # every stored flow's row id, capture order
        self.last_seq = 0  # the last row id the list took from the store
        self._shown: array | None = None  # the stored part shown; None: all of ``stored``
        self.live: dict[str, FlowRow] = {}  # flows the store has not given yet, arrival order
        self.live_shown: list[str] = []
        self._verdicts: dict[str, bool] = {}  # the filter's verdict on live rows (none: True)
        self.changed: dict[int, FlowRow] = {}
        self.marks: dict[int, bool] = {}  # marks set in the UI, by row id
        self._cache: dict[int, FlowRow] = {}
        self._cached_ids: dict[str, int] = {}
        self.expr: str | None = None  # the filter of the shown list (None: every flow)
        self.sort_key: str | None = None
        self.sort_reverse = False
        self.only_marked = False
        self.modified_stored = 0
        self.pending: Query | None = None  # the query under way
        self._since: list[tuple[int, bool]] = []  # absorbed meanwhile, with their verdicts
        self.appended = False  # stored rows added after a sorted list's order was made
        self._next_live = LIVE_SEQ
        self.pinned: dict[str, int] = {}  # live rows with a place among the stored ones
        self._pinned_keys: dict[int, str] = {}
        self._next_pin = -1
        self.rows = Rows(self)

    # --- reading --------------------------------------------------------------------------

    @property
    def shown_stored(self) -> array:
        return self.stored if self._shown is None else self._shown

    def __len__(self) -> int:
        return len(self.shown_stored) + len(self.live_shown)

    @property
    def total(self) -> int:
        """How many flows the session has (shown or not)."""
        return len(self.stored) + len(self.live) - len(self.pinned)

    @property
    def modified_count(self) -> int:
        return self.modified_stored + sum(1 for r in self.live.values() if r.modified)

    @property
    def sorted(self) -> bool:
        """True when the list is in an order other than capture order."""
        return self.sort_key not in (None, "time") or self.sort_reverse

    def row_at(self, index: int) -> FlowRow | None:
        stored = self.shown_stored
        if 0 <= index < len(stored):
            seq = stored[index]
            if seq < 0:
                return self.live.get(self._pinned_keys.get(seq, ""))
            row = self.changed.get(seq) or self._cache.get(seq)
            if row is None:
                start = index - index % PAGE
                self._fetch(stored[start : start + PAGE])
                row = self._cache.get(seq)
            return row
        index -= len(stored)
        if 0 <= index < len(self.live_shown):
            return self.live.get(self.live_shown[index])
        return None

    def _fetch(self, seqs: Iterable[int]) -> None:
        """Read the rows at ``seqs`` not at hand into the cache."""
        missing = [s for s in seqs if s > 0 and s not in self._cache and s not in self.changed]
        if not missing or self.source is None:
            return
        excess = len(self._cache) + len(missing) - CACHE_ROWS
        if excess > 0:  # the oldest go (a quarter at least: not a few at every page)
            for seq in list(self._cache)[: max(excess, CACHE_ROWS // 4)]:
                self._cached_ids.pop(self._cache.pop(seq).id, None)
        marks = self.marks
        for seq, row in self.source.rows_at(missing).items():
            if seq in marks:
                row.marked = marks[seq]
            self._cache[seq] = row
            self._cached_ids[row.id] = seq

    def seq_of(self, flow_id: str) -> int | None:
        """The row id of a stored flow the list has taken (None: live or unknown)."""
        seq = self._cached_ids.get(flow_id)
        if seq is None and self.source is not None and self.stored:
            seq = self.source.seqs_of([flow_id]).get(flow_id)
        return seq if seq is not None and seq <= self.last_seq else None

    def row(self, flow_id: str) -> FlowRow | None:
        """The row of ``flow_id``, shown or not."""
        row = self.live.get(flow_id)
        if row is not None:
            return row
        seq = self.seq_of(flow_id)
        if seq is None:
            return None
        if seq not in self.changed:
            self._fetch([seq])
        return self.changed.get(seq) or self._cache.get(seq)

    def rows_by_id(self, ids: list[str]) -> dict[str, FlowRow]:
        """The rows of those of ``ids`` the list has (a few hundred at most)."""
        found = {i: self.live[i] for i in ids if i in self.live}
        rest = [i for i in ids if i not in found]
        seqs = self.source.seqs_of(rest) if self.source is not None and rest else {}
        self._fetch(s for s in seqs.values() if s <= self.last_seq)
        for flow_id, seq in seqs.items():
            row = self.changed.get(seq) or self._cache.get(seq)
            if row is not None:
                found[flow_id] = row
        return found

    def position(self, flow_id: str) -> int | None:
        """Index of ``flow_id`` in the shown list (a scan: on user actions, not per frame)."""
        seq = self.pinned.get(flow_id)
        if flow_id in self.live and seq is None:
            try:
                return len(self.shown_stored) + self.live_shown.index(flow_id)
            except ValueError:
                return None
        if seq is None:
            seq = self.seq_of(flow_id)
        try:
            return None if seq is None else self.shown_stored.index(seq)
        except ValueError:
            return None

    def ids_of(self, seqs: list[int]) -> list[str]:
        """Flow ids of stored (and pinned) rows, in the order of ``seqs``."""
        positive = [s for s in seqs if s > 0]
        found = self.source.ids_at(positive) if positive and self.source is not None else {}
        found.update((k, self._pinned_keys[k]) for k in seqs if k < 0 and k in self._pinned_keys)
        return [found[s] for s in seqs if s in found]

    def shown_ids(self) -> list[str]:
        """Every shown flow's id, in the list's order (reads the store: on user actions)."""
        return self.ids_of(list(self.shown_stored)) + list(self.live_shown)

    def hidden_ids(self) -> list[str]:
        """The flows the filter or the marks-only view hides."""
        shown = set(self.shown_stored) if self._shown is not None else None
        hidden = [s for s in self.stored if s not in shown] if shown is not None else []
        visible = set(self.live_shown)
        unpinned = [i for i in self.live if i not in visible and i not in self.pinned]
        return self.ids_of(hidden) + unpinned

    def marked_ids(self, *, shown_only: bool) -> list[str]:
        """The marked flows (those shown only, in the list's order, with ``shown_only``)."""
        marked = array("q")
        if self.source is not None and self.stored:
            query = replace(self.query_for(None), only_marked=True, sort="time", descending=False)
            marked = self.source.list_seqs(query, lambda: False) or marked
        pins = [k for i, k in self.pinned.items() if self.live[i].marked]
        if shown_only and (marked or pins):
            wanted = set(marked).union(pins)
            marked = array("q", [s for s in self.shown_stored if s in wanted])
        else:
            marked.extend(pins)
        live = self.live_shown if shown_only else [i for i in self.live if i not in self.pinned]
        return self.ids_of(list(marked)) + [i for i in live if self.live[i].marked]

    # --- the shown list -------------------------------------------------------------------

    def query_for(self, expr: str | None) -> Query:
        """The query that gives the stored part shown for filter ``expr`` and the settings."""
        return Query(
            expr,
            self.only_marked,
            self.sort_key or "time",
            self.sort_reverse,
            self.last_seq,
            dict(self.marks),
        )

    def start(self, expr: str | None) -> Query | None:
        """Show filter ``expr`` (None: every flow) with the current sort and marks-only
        view. The query when the store must be asked in the background; None when done."""
        self.expr = expr
        query = self.pending = self.query_for(expr)
        self._since = []
        self.relist_live()
        if query.identity:
            self.finish(query, None)
        elif self.source is None or not self.stored:
            self.finish(query, array("q"))
        elif len(self.stored) <= SYNC_ROWS:
            self.finish(query, self.source.list_seqs(query, lambda: False))
        else:
            return query
        return None

    def finish(self, query: Query, seqs: array | None) -> bool:
        """Take a query's answer; False when a newer query replaced it."""
        if query is not self.pending:
            return False
        self.pending = None
        if query.identity:
            self._shown = None
        else:
            shown = seqs if seqs is not None else array("q")
            shown.extend(seq for seq, ok in self._since if ok)
            verdict = self._verdicts.get
            pins = self.pinned.items()
            shown.extend(k for i, k in pins if self._shows(self.live[i], verdict(i, True)))
            self._shown = shown
        self._since = []
        self.appended = False
        return True

    def set_sort(self, key: str | None, reverse: bool = False) -> None:
        """Sort by list column ``key`` (None: capture order); ``start`` shows it."""
        if key is not None and key not in SORT_KEYS:
            raise KeyError(key)
        self.sort_key, self.sort_reverse = key, reverse

    def set_verdicts(self, verdicts: dict[str, bool]) -> None:
        """The filter's verdicts on live rows (a row without one is shown)."""
        self._verdicts = verdicts

    def _shows(self, row: FlowRow, verdict: bool) -> bool:
        return verdict and (row.marked or not self.only_marked)

    def relist_live(self) -> None:
        """Rebuild the shown live rows from the verdicts, the marks and the sort."""
        get = self._verdicts.get
        rows = [
            r for i, r in self.live.items() if i not in self.pinned and self._shows(r, get(i, True))
        ]
        if self.sorted:
            rows.sort(key=SORT_KEYS[self.sort_key or "time"], reverse=self.sort_reverse)
        self.live_shown = [r.id for r in rows]

    # --- changes --------------------------------------------------------------------------

    def load(self, seqs: array) -> None:
        """The stored flows, read when the session opens (their row ids, capture order)."""
        self.stored = seqs
        self.last_seq = max(self.last_seq, seqs[-1] if seqs else 0)

    def absorb_known(self, stored: dict[str, int]) -> None:
        """Live rows the loaded row ids include already (``stored``: flow id -> row id)."""
        for flow_id, seq in stored.items():
            row = self.live.pop(flow_id, None)
            if row is not None:
                self._verdicts.pop(flow_id, None)
                row.seq = seq
                self.changed[seq] = row
                self._cached_ids[flow_id] = seq
        self.live_shown = [i for i in self.live_shown if i in self.live]

    def add(self, row: FlowRow) -> None:
        """Add a live row as it is (tests and the UI's own flows)."""
        row.seq = self._next_live
        self._next_live += 1
        self.live[row.id] = row
        if self._shows(row, self._verdicts.get(row.id, True)):
            self.live_shown.append(row.id)

    def upsert(self, flow: Flow, matches: bool | None, seq: int | None = None) -> bool:
        """Record a flow event (``seq``: its stored row, if the list has it; ``matches``: the
        filter's verdict, None without a filter). True when the flow is new to the list."""
        if seq is not None and flow.id not in self.live:
            self._update_stored(flow, seq, matches)
            return False
        row = self.live.get(flow.id)
        if row is None:
            if matches is not None:
                self._verdicts[flow.id] = matches
            self.add(FlowRow.from_flow(flow, 0))
            return True
        row.update(flow)
        self._reshow_live(row, matches)
        return False

    def _reshow_live(self, row: FlowRow, matches: bool | None) -> None:
        if matches is not None:
            self._verdicts[row.id] = matches
        show = self._shows(row, self._verdicts.get(row.id, True))
        key = self.pinned.get(row.id)
        if key is not None:
            if self._shown is not None:
                self._reshow_stored(key, show)
        elif show != (row.id in self.live_shown):
            if show:
                self.live_shown.append(row.id)
            else:
                self.live_shown.remove(row.id)

    def _update_stored(self, flow: Flow, seq: int, matches: bool | None) -> None:
        """A stored flow changed (edited, or an event after it was stored)."""
        if seq not in self.changed:
            self._fetch([seq])
        old = self.changed.get(seq) or self._cache.get(seq)
        row = FlowRow.from_flow(flow, seq)
        row.held = old.held if old is not None else False
        row.marked = self.marks.get(seq, row.marked)
        if old is not None:  # an edit marks a flow modified, a revert may unmark it
            self.modified_stored += row.modified - old.modified
        self.changed[seq] = row
        self._cached_ids[row.id] = seq
        if matches is not None and self._shown is not None:
            self._reshow_stored(seq, self._shows(row, matches))

    def _reshow_stored(self, seq: int, show: bool) -> None:
        """Put a stored row in or out of a filtered list (at the end: its place comes back
        with the next query)."""
        shown = self.shown_stored
        if show and seq not in shown:
            shown.append(seq)
        elif not show and seq in shown:
            shown.remove(seq)

    def rebuild_row(self, flow: Flow) -> None:
        """Take every field from ``flow`` again (the user edited it)."""
        old = self.live.get(flow.id)
        if old is not None:
            row = FlowRow.from_flow(flow, old.seq)
            row.held = old.held
            self.live[flow.id] = row
        else:
            seq = self.seq_of(flow.id)
            if seq is not None:
                self._update_stored(flow, seq, None)

    def absorb(self, stored: list[tuple[int, str]], verdicts: dict[str, bool]) -> None:
        """Take the flows the store has newly written, ``(row id, flow id)`` in capture
        order: a live row becomes a stored one; ``verdicts`` judge the others."""
        for seq, flow_id in stored:
            row = self.live.get(flow_id)
            if row is None:
                self._take(seq, None, verdicts.get(flow_id, True))
                continue
            self._pin_before(flow_id)
            del self.live[flow_id]
            verdict = self._verdicts.pop(flow_id, True)
            row.seq = seq
            keep = self.changed if row.held or not row.finished else self._cache
            keep[seq] = row
            self._cached_ids[flow_id] = seq
            self.modified_stored += row.modified
            key = self.pinned.pop(flow_id, None)
            if key is None:
                if flow_id in self.live_shown:
                    self.live_shown.remove(flow_id)
                self._take(seq, row, verdict)
            else:
                self._unpin(key, seq, self._shows(row, verdict))

    def _pin_before(self, flow_id: str) -> None:
        """Give the live rows that arrived before ``flow_id`` their place among the stored."""
        for other in self.live:
            if other == flow_id:
                return
            if other not in self.pinned:
                key = self.pinned[other] = self._next_pin
                self._pinned_keys[key] = other
                self._next_pin -= 1
                if other in self.live_shown:
                    self.live_shown.remove(other)
                self.stored.append(key)
                if self._shown is not None and self._shows(
                    self.live[other], self._verdicts.get(other, True)
                ):
                    self._shown.append(key)

    def _unpin(self, key: int, seq: int, shows: bool) -> None:
        """A pinned row's flow is stored now, as row ``seq``: it keeps its place."""
        del self._pinned_keys[key]
        for keys in (self.stored, self._shown):
            if keys is not None and key in keys:
                keys[keys.index(key)] = seq
        self.last_seq = max(self.last_seq, seq)
        if self.pending is not None:
            self._since.append((seq, shows))

    def _take(self, seq: int, row: FlowRow | None, verdict: bool) -> None:
        self.stored.append(seq)
        self.last_seq = max(self.last_seq, seq)
        marked_ok = not self.only_marked or (row is not None and row.marked)
        if self.pending is not None:
            self._since.append((seq, verdict and marked_ok))
        if self._shown is not None and verdict and marked_ok:
            self._shown.append(seq)
            self.appended |= self.sorted

    def set_held(self, flow_id: str, held: bool) -> None:
        row = self.live.get(flow_id)
        if row is None:
            seq = self.seq_of(flow_id)
            found = self.row(flow_id) if seq is not None else None
            if found is None or found.held == held:
                return
            row = self.changed[seq] = replace(found)
        row.held = held

    def mark(self, ids: list[str], marked: bool) -> None:
        """Mark or unmark flows in the list (the app writes it to the store)."""
        rest = []
        for flow_id in ids:
            row = self.live.get(flow_id)
            if row is None:
                rest.append(flow_id)
            else:
                row.marked = marked
                self._reshow_live(row, None)
        if not rest or self.source is None or not self.stored:
            return
        seqs = [s for s in self.source.seqs_of(rest).values() if s <= self.last_seq]
        for seq in seqs:
            self.marks[seq] = marked
            row = self.changed.get(seq) or self._cache.get(seq)
            if row is not None:
                row.marked = marked
        if self.only_marked and not marked and self._shown is not None:
            gone = set(seqs)
            self._shown = array("q", [s for s in self._shown if s not in gone])

    def remove(self, ids: Iterable[str]) -> None:
        """Drop flows from the list (deleted)."""
        rest, gone = [], set()
        for flow_id in ids:
            if self.live.pop(flow_id, None) is None:
                rest.append(flow_id)
            self._verdicts.pop(flow_id, None)
            key = self.pinned.pop(flow_id, None)
            if key is not None:
                gone.add(key)
                del self._pinned_keys[key]
        self.live_shown = [i for i in self.live_shown if i in self.live]
        if rest and self.source is not None and self.stored:
            gone.update(s for s in self.source.seqs_of(rest).values() if s <= self.last_seq)
        for seq in gone:
            row = self.changed.pop(seq, None) or self._cache.pop(seq, None)
            self.marks.pop(seq, None)
            if row is not None:
                self._cached_ids.pop(row.id, None)
                self.modified_stored -= row.modified
        if gone:
            self.stored = array("q", [s for s in self.stored if s not in gone])
            if self._shown is not None:
                self._shown = array("q", [s for s in self._shown if s not in gone])


class Rows(Mapping[str, FlowRow]):
    """The index's rows by flow id (each lookup may read the store: for tests and single
    flows; iterating reads every flow's id)."""

    def __init__(self, index: FlowIndex) -> None:
        self._index = index

    def __getitem__(self, flow_id: str) -> FlowRow:
        row = self._index.row(flow_id)
        if row is None:
            raise KeyError(flow_id)
        return row

    def __len__(self) -> int:
        return self._index.total

    def __iter__(self) -> Iterator[str]:
        index = self._index
        yield from index.ids_of(list(index.stored))
        yield from [i for i in index.live if i not in index.pinned]
