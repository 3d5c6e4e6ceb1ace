"""What the UI knows, without Textual: the flow index, the queue of bus events, held
flows, error events, recent flows kept whole, and the filter's state.

``InspectorApp`` owns one ``FlowState`` and drives it from its timers and workers;
screens read it and call its methods, then tell the app to repaint. Nothing here
touches a widget, so the whole model is testable without an app.
"""

from __future__ import annotations

import copy
import time
from array import array
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
from inspector.tui.flow_index import FlowIndex, Query

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
        self.index = FlowIndex(session)
        self.loaded = False  # the stored flows are in the index: new ones come by absorb()
        self.queue: deque[FlowEvent] = deque()  # appended by the bus's thread, drained by the UI
        self.errors = 0
        self.held_ids: set[str] = set()
        self.histories: dict[str, list[str]] = {}  # prompt purpose -> past entries
        self.error_events: deque[ErrorEvent] = deque(maxlen=MAX_EVENTS)
        self.filter_expr: str | None = None
        self.filter_off = False
        self._filter: Callable[[Flow], object] | None = None  # applied to live flows
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
            exchanges=self.index.total,
            errors=self.errors,
            held=len(self.held_ids),
            shown=len(self.index),
            modified=self.index.modified_count,
        )

    @property
    def filter_pending(self) -> bool:
        """True while a store query for the list is under way."""
        return self.index.pending is not None

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
        marked = self.index.marked_ids(shown_only=True)
        if marked:
            return marked
        return [current] if current is not None else []

    def is_held(self, flow_id: str | None) -> bool:
        return flow_id is not None and flow_id in self.held_ids

    # --- loading and live events ----------------------------------------------------------

    def load(self, seqs: array) -> None:
        """The stored flows' row ids, in capture order (live rows among them leave the
        live part)."""
        index = self.index
        index.load(seqs)
        self.loaded = True
        if index.live and seqs:
            index.absorb_known(self._stored_seqs(list(index.live)))

    def add_figures(self, errors: int, modified: int, failed: list[Flow]) -> None:
        """How many stored flows failed or were changed, and the newest failures (for the
        events pane)."""
        self.index.modified_stored += modified
        counted = len(self._stored_seqs(list(self._counted_errors)))  # counted live already
        self.errors += errors - counted
        self.add_error_events([f for f in failed if f.id not in self._counted_errors])

    def absorb(self) -> bool:
        """Take the flows the store wrote since the last call; True when there were some."""
        index = self.index
        if not self.loaded:
            return False
        stored = self.session.tail(index.last_seq)
        if not stored:
            return False
        verdicts: dict[str, bool] = {}
        if self.filtering:  # flows the UI never saw live (another process records)
            for _, flow_id in stored:
                if flow_id not in index.live:
                    flow = self.session.get(flow_id)
                    verdicts[flow_id] = flow is not None and bool(self.matches(flow))
        index.absorb(stored, verdicts)
        return True

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
        seqs = self._stored_seqs([i for i in latest if i not in index.live])
        for flow in latest.values():
            index.upsert(flow, None if unfiltered else self.matches(flow), seqs.get(flow.id))
        self.remember(latest)  # in flight or just finished: not in the store yet
        self.sync_held()
        if errors:
            self.errors += len(errors)
            self.add_error_events(list(errors.values()))
        return self.resort_due()

    def _stored_seqs(self, ids: list[str]) -> dict[str, int]:
        """The row ids of those of ``ids`` the list has taken from the store."""
        index = self.index
        if not ids or not self.loaded or not index.stored:
            return {}
        return {i: s for i, s in self.session.seqs_of(ids).items() if s <= index.last_seq}

    def resort_due(self) -> bool:
        """True when a sorted list should be sorted again for the rows added at its end:
        at most every RESORT_INTERVAL, and not while a query is under way."""
        index = self.index
        if not (index.sorted and index.appended) or index.pending is not None:
            return False
        now = time.monotonic()
        if now - self._last_resort < RESORT_INTERVAL:
            return False
        self._last_resort = now
        return True

    def sync_held(self) -> None:
        """Take the held set from the interceptor, the one authority on it."""
        held = self.session.held_ids()
        for flow_id in held ^ self.held_ids:
            self.index.set_held(flow_id, flow_id in held)
        self.held_ids = held

    def matches(self, flow: Flow) -> bool | None:
        """The filter's verdict on a live flow (None: no filter)."""
        if self._filter is None or self.filter_off:
            return None
        try:
            return bool(self._filter(flow))
        except Exception:  # a filter on a half-built flow must not break the drain
            return False

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
        seqs = self._stored_seqs([f.id for f in flows if f.id not in self.index.live])
        for flow in flows:
            self.remember({flow.id: flow})
            self.index.rebuild_row(flow)
            self.index.upsert(flow, self.matches(flow), seqs.get(flow.id))
            if flow.error is not None and flow.id not in self._counted_errors:
                failed.append(flow)
        self.errors += len(failed)
        self.add_error_events(failed)

    # --- changing flows -------------------------------------------------------------------

    def mark(self, ids: list[str], marked: bool) -> None:
        """Mark or unmark rows (the app writes it to the store)."""
        self.index.mark(ids, marked)

    def hidden_ids(self) -> list[str]:
        """Flows the filter (or M) hides, held ones left out: what Z drops."""
        return [i for i in self.index.hidden_ids() if i not in self.held_ids]

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
            self.index.set_held(flow_id, False)

    # --- filter ---------------------------------------------------------------------------

    def set_filter(self, expr: str | None) -> bool:
        """Take ``expr`` (None or blank: none) as the filter; False when nothing changed."""
        expr = (expr.strip() if expr else None) or None
        if expr == self.filter_expr and not self.filter_off:
            return False  # applied (or being applied) already, live while it was typed
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

    def start_query(self) -> Query | None:
        """Show the current filter, sort and marks-only view: the store query to run in the
        background, or None when the list is already shown."""
        self.index.set_verdicts(self._live_verdicts())
        return self.index.start(self.filter_expr if self.filtering else None)

    def _live_verdicts(self) -> dict[str, bool]:
        """The filter's verdict on each live row (empty without a filter)."""
        if not self.filtering:
            return {}
        verdicts = {}
        for flow_id, row in self.index.live.items():
            flow = self.load_flow(flow_id)
            if flow is not None:
                verdicts[flow_id] = bool(self.matches(flow))
            else:  # in flight and no longer kept whole: what its row can say
                test = self._filter.row_test() if self._filter is not None else None  # type: ignore[attr-defined]
                verdicts[flow_id] = bool(test(row)) if test is not None else False
        return verdicts

    def query_done(self, query: Query, seqs: array | None) -> bool:
        """Take a store query's answer (None: it failed, the list stays as it was); False
        when a newer query replaced it."""
        if seqs is None:
            if self.index.pending is query:
                self.index.pending = None
            return False
        return self.index.finish(query, seqs)
