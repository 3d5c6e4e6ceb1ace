"""What the UI knows, without Textual: the flow index, the queue of bus events, held
flows, error events, recent flows kept whole, and the filter's state.

``InspectorApp`` owns one ``FlowState`` and drives it from its timers and workers;
screens read it and call its methods, then tell the app to repaint. Nothing here
touches a widget, so the whole model is testable without an app.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

from inspector.bus import EventKind, FlowEvent
from inspector.filters import FilterError
from inspector.filters import parse as parse_filter
from inspector.flow import Flow, new_flow_id
from inspector.tui.edits import PARTS, EditLog
from inspector.tui.rows import FlowIndex, FlowRow

if TYPE_CHECKING:
    from inspector.tui.session import Session

MAX_EVENTS = 5000  # the events pane keeps the newest; the status bar counts them all
RESORT_INTERVAL = 1.0  # seconds between re-sorts of a sorted view while flows arrive
RECENT_FLOWS = 512  # finished live flows kept whole for the detail view (bodies included)


def filter_error(expr: str) -> str | None:
    """The filter language's complaint about ``expr``, or None when it parses."""
    try:
        parse_filter(expr)
    except FilterError as e:
        return str(e)
    return None


@dataclass(frozen=True, slots=True)
class Counts:
    """The header bar's figures."""

    exchanges: int = 0
    errors: int = 0
    held: int = 0
    shown: int = 0  # rows in the (filtered) view
    modified: int = 0  # changed by a rule or an addon


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """What the events pane keeps of one failed flow (no bodies)."""

    seq: int
    flow_id: str
    timestamp: float
    phase: str
    exc_class: str
    message: str
    method: str
    url: str

    @classmethod
    def from_flow(cls, flow: Flow, seq: int) -> ErrorEvent:
        err = flow.error
        assert err is not None
        return cls(
            seq,
            flow.id,
            err.timestamp or flow.timings.start,
            str(err.phase),
            err.exc_class,
            " ".join(err.message.split()),
            flow.request.method,
            flow.request.url,
        )


class FlowState:
    """The UI's live model of a session (one per app)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.index = FlowIndex()
        self.queue: deque[FlowEvent] = deque()  # appended by the bus's thread, drained by the UI
        self.errors = 0
        self.held_ids: set[str] = set()
        self.histories: dict[str, list[str]] = {}  # prompt purpose -> past entries
        self.error_events: deque[ErrorEvent] = deque(maxlen=MAX_EVENTS)
        self.filter_expr: str | None = None
        self.filter_off = False
        self.filter_pending = False  # a store query for the filter is under way
        self._filter: Callable[[Flow], object] | None = None  # applied to live flows
        self._live_matches: set[str] = set()
        self._recent: dict[str, Flow] = {}  # newest last
        self.edit_log = EditLog(session.body_limit)  # messages before the user's edits
        self.edits = 0  # bumped by every edit and revert: detail views reload on a change
        self._error_seq = 0
        self._counted_errors: set[str] = set()
        self._last_resort = 0.0

    # --- reading --------------------------------------------------------------------------

    @property
    def counts(self) -> Counts:
        return Counts(
            exchanges=len(self.index.rows),
            errors=self.errors,
            held=len(self.held_ids),
            shown=len(self.index),
            modified=len(self.index.modified),
        )

    @property
    def filtering(self) -> bool:
        """True when a filter is set and on."""
        return self.filter_expr is not None and not self.filter_off

    def load_flow(self, flow_id: str) -> Flow | None:
        """The whole flow (bodies included): held or recent in memory, else from the store."""
        flow = self.session.held_flow(flow_id) or self._recent.get(flow_id)
        if flow is not None:
            return flow
        return self.session.get(flow_id)

    def selected_ids(self, current: str | None) -> list[str]:
        """The marked flows in view order, or the current one when none is marked."""
        marked = [i for i in self.index.view if self.index.rows[i].marked]
        if marked:
            return marked
        return [current] if current is not None else []

    def is_held(self, flow_id: str | None) -> bool:
        return flow_id is not None and flow_id in self.held_ids

    # --- loading and live events ----------------------------------------------------------

    def add_loaded(self, rows: list[FlowRow], failed: list[Flow]) -> None:
        """Rows read from the store, and the newest failed flows for the events pane."""
        known = self.index.rows
        for row in rows:
            if row.id not in known:
                self.index.add(row)
                if row.error is not None and row.id not in self._counted_errors:
                    self._counted_errors.add(row.id)
                    self.errors += 1
        # The events pane lists the loaded failures (counted above) once their details come.
        self.add_error_events(failed)

    def apply_events(self, count: int) -> bool:
        """Update the index from ``count`` queued events, each flow once per batch.

        True when a sorted view was re-sorted (the list must keep its cursor's flow).
        """
        queue, index = self.queue, self.index
        latest: dict[str, Flow] = {}  # a flow's last event says all: it is the same flow
        errors: dict[str, Flow] = {}
        removed, error, counted = EventKind.REMOVED, EventKind.ERROR, self._counted_errors
        for _ in range(count):
            event = queue.popleft()
            flow = event.flow
            kind = event.kind
            if kind is removed:
                latest.pop(flow.id, None)
                errors.pop(flow.id, None)
                index.remove([flow.id])
                self.held_ids.discard(flow.id)
                continue
            latest[flow.id] = flow
            if kind is error and flow.id not in counted:
                errors[flow.id] = flow
        unfiltered = not self.filtering
        for flow in latest.values():
            index.upsert(flow, None if unfiltered else self.matches(flow))
        self.remember(latest)  # in flight or just finished: not in the store yet
        self.sync_held()
        if errors:
            self.errors += len(errors)
            self.add_error_events(list(errors.values()))
        return index.sorted and self._resort_due()

    def _resort_due(self) -> bool:
        """Re-sort a sorted view at most every RESORT_INTERVAL (a sort of 100,000 rows is
        tens of milliseconds); new rows wait at the end until then."""
        now = time.monotonic()
        if now - self._last_resort < RESORT_INTERVAL:
            return False
        self._last_resort = now
        self.index.resort()
        return True

    def sync_held(self) -> None:
        """Take the held set from the interceptor, the one authority on it."""
        held = self.session.held_ids()
        for flow_id in held ^ self.held_ids:
            row = self.index.rows.get(flow_id)
            if row is not None:
                row.held = flow_id in held
        self.held_ids = held

    def matches(self, flow: Flow) -> bool | None:
        """The filter's verdict on a live flow (None: no filter)."""
        if self._filter is None or self.filter_off:
            return None
        try:
            verdict = bool(self._filter(flow))
        except Exception:  # a filter on a half-built flow must not break the drain
            verdict = False
        if self.filter_pending:  # remember verdicts the store query may not have seen
            if verdict:
                self._live_matches.add(flow.id)
            else:
                self._live_matches.discard(flow.id)
        return verdict

    def remember(self, flows: dict[str, Flow]) -> None:
        """Keep the newest RECENT_FLOWS flows whole (a batch's, by id), oldest out first."""
        recent = self._recent
        for flow_id, flow in flows.items():
            recent.pop(flow_id, None)  # a later event moves the flow to the newest end
            recent[flow_id] = flow
        excess = len(recent) - RECENT_FLOWS
        if excess > 0:
            for flow_id in list(islice(recent, excess)):
                del recent[flow_id]

    def add_error_events(self, flows: list[Flow]) -> None:
        for flow in flows:
            self._counted_errors.add(flow.id)
            self.error_events.append(ErrorEvent.from_flow(flow, self._error_seq))
            self._error_seq += 1

    def add_flows(self, flows: list[Flow]) -> None:
        """Flows the UI made (replays, duplicates, edits; recorded already) join or update
        the list; failed ones count as errors."""
        failed = []
        for flow in flows:
            self.remember({flow.id: flow})
            self.index.rebuild_row(flow)
            self.index.upsert(flow, self.matches(flow))
            if flow.error is not None and flow.id not in self._counted_errors:
                failed.append(flow)
        self.errors += len(failed)
        self.add_error_events(failed)
        if self.index.sorted:
            self.index.resort()

    # --- changing flows -------------------------------------------------------------------

    def mark(self, ids: list[str], marked: bool) -> None:
        """Mark or unmark rows (the app writes it to the store)."""
        for flow_id in ids:
            row = self.index.rows.get(flow_id)
            if row is not None:
                row.marked = marked
        if self.index.only_marked and not marked:
            self.index.resort()

    def hidden_ids(self) -> list[str]:
        """Flows the filter (or M) hides, held ones left out: what Z drops."""
        shown = set(self.index.view)
        return [i for i in self.index.rows if i not in shown and i not in self.held_ids]

    def duplicate(self, flow: Flow) -> Flow:
        """A copy of ``flow`` under a new id (to edit and replay), unmarked."""
        twin = copy.deepcopy(flow)
        twin.id = new_flow_id()
        twin.marked = False
        return twin

    def apply_edit(self, flow: Flow, text: str, stage: str) -> bool:
        """Apply the user's edited ``text`` to ``flow`` and record it as a change (EditError
        if bad); False when it changed nothing."""
        changed = self.edit_log.apply(flow, text, stage)
        self.edits += changed
        return changed

    def edited(self, flow_id: str) -> bool:
        return self.edit_log.edited(flow_id)

    def revert(self, flow: Flow, parts: tuple[str, ...] = PARTS) -> list[str]:
        """Put back ``parts`` of ``flow`` as they were before the user's edits, in place;
        the parts reverted (none when unedited)."""
        done = self.edit_log.revert(flow, parts)
        self.edits += bool(done)
        return done

    def forget(self, ids: list[str]) -> None:
        """Drop flows from the list (the app deletes them from the store)."""
        self.index.remove(ids)
        self.held_ids.difference_update(ids)
        for flow_id in ids:
            self._recent.pop(flow_id, None)

    def release(self, ids: list[str], *, kill: bool) -> None:
        """Resume (or kill) the held flows among ``ids``."""
        for flow_id in ids:
            if flow_id not in self.held_ids:
                continue
            if kill:
                self.session.kill(flow_id)
            else:
                self.session.resume(flow_id)
            self.held_ids.discard(flow_id)
            row = self.index.rows.get(flow_id)
            if row is not None:
                row.held = False

    # --- filter ---------------------------------------------------------------------------

    def set_filter(self, expr: str | None) -> bool:
        """Take ``expr`` (None or blank: none) as the filter; False when nothing changed."""
        expr = (expr.strip() if expr else None) or None
        if expr == self.filter_expr and not self.filter_off and not self.filter_pending:
            return False  # applied already (live, while it was typed): the list is up to date
        self._filter = parse_filter(expr) if expr else None  # validated by the filter bar
        self.filter_expr = expr
        self.filter_off = False
        return True

    def toggle_filter(self) -> bool:
        """Turn the current filter off or back on; False when there is no filter."""
        if self.filter_expr is None:
            return False
        self.filter_off = not self.filter_off
        return True

    def filter_here(self, loaded: bool) -> bool:
        """Filter the rows right here when they can say; False when the store must be asked
        (then ``filter_pending`` is set until ``filter_result``)."""
        self._live_matches = set()
        expr = self.filter_expr if self.filtering else None
        test = self._filter.row_test() if expr is not None and self._filter else None  # type: ignore[attr-defined]
        if expr is None or (test is not None and loaded):
            # Every flow has its row once loaded; 100,000 rows take tens of milliseconds.
            self.filter_pending = False
            if test is None:
                self.index.set_matching(None)
            else:
                self.index.filter_rows(test)
            return True
        self.filter_pending = True
        return False

    def filter_result(self, expr: str | None, ids: set[str] | None) -> bool:
        """Apply a store query's matches for ``expr``; False when a newer filter replaced it."""
        current = self.filter_expr if self.filtering else None
        if expr != current:
            return False
        if ids is not None:
            # Flows that arrived while the store was queried were judged as they came in.
            ids |= self._live_matches & self.index.rows.keys()
        self.filter_pending = False
        self._live_matches = set()
        self.index.set_matching(ids)
        return True
