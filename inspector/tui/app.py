"""The Textual app: the flow list, detail and helper screens over a live proxy or a saved session.

Threading: the bus calls ``_on_event`` in the proxy's thread, which only appends to a
deque; a timer in the app's thread drains it every ``DRAIN_INTERVAL`` and updates the
index and widgets in one batch. Slow work (loading a session, filtering, replay) runs
in thread workers that post a message back; widgets are only touched in the app thread.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path

from textual import events, on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import get_current_worker

from inspector.bus import EventKind, FlowEvent
from inspector.config import Config
from inspector.filters import FilterError
from inspector.filters import parse as parse_filter
from inspector.flow import Flow
from inspector.replay import ReplayError, ReplayOptions, replay_flow
from inspector.store import StoreError
from inspector.tui.collector import Collector
from inspector.tui.messages import FilterApplied, FlowsChanged, JumpToFlow, ReplayFinished
from inspector.tui.rows import FlowIndex, FlowRow
from inspector.tui.session import Session, SessionError, open_live, open_saved
from inspector.tui.widgets.events_pane import MAX_EVENTS, ErrorEvent
from inspector.tui.widgets.status_bar import Counts

DRAIN_INTERVAL = 0.1  # seconds between batches of bus events
# A flood of flows repaints the list at most every BUSY_REPAINT_INTERVAL: each repaint
# redraws every visible row, and the UI shares the interpreter with the proxy thread.
# Nobody reads rows flying by faster, and while nobody types (Collector.active) once
# a second does as well.
BUSY_BATCH = 40  # bus events in one batch that make a flood (a flow brings about 4)
BUSY_REPAINT_INTERVAL = 0.5
IDLE_REPAINT_INTERVAL = 1.0
LOAD_PAGE = 5000  # summaries read per store query when loading a session
RESORT_INTERVAL = 1.0  # seconds between re-sorts of a sorted view while flows arrive
RECENT_FLOWS = 512  # finished live flows kept whole for the detail view (bodies included)


def filter_error(expr: str) -> str | None:
    """The filter language's complaint about ``expr``, or None when it parses."""
    try:
        parse_filter(expr)
    except FilterError as e:
        return str(e)
    return None


class InspectorApp(App[int]):
    """http-inspector's terminal UI."""

    CSS_PATH = "inspector.tcss"
    TITLE = "http-inspector"
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+c", "request_quit", "Quit", show=False, priority=True),
    ]
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, session: Session, *, drain_interval: float = DRAIN_INTERVAL) -> None:
        super().__init__()
        self.session = session
        self.index = FlowIndex()
        self.drain_interval = drain_interval
        self.errors = 0
        self.held_ids: set[str] = set()
        self.histories: dict[str, list[str]] = {}
        self.filter_expr: str | None = None
        self.filter_off = False
        self._filter = None  # the parsed filter, applied to live flows as they arrive
        self._queue: deque[FlowEvent] = deque()
        self._recent: dict[str, Flow] = {}  # newest last
        self._unsubscribe = None
        self._loaded = threading.Event()
        self.error_events: deque[ErrorEvent] = deque(maxlen=MAX_EVENTS)
        self._error_seq = 0
        self._counted_errors: set[str] = set()
        self._live_matches: set[str] = set()
        self._filter_pending = False
        self._last_resort = 0.0
        self.collector = Collector()
        self._last_paint = 0.0
        self._paint_due = False  # the index changed since the list was last repainted
        self._reorder_due = False

    # --- start and stop -------------------------------------------------------------------

    def on_mount(self) -> None:
        from inspector.tui.screens.flow_list import FlowListScreen

        self.collector.start()
        if self.session.bus is not None:
            self._unsubscribe = self.session.bus.subscribe(self._queue.append)
        self.push_screen(FlowListScreen())
        self.set_interval(self.drain_interval, self.drain)
        self._load_saved()
        if self.session.intercept_expr:
            self.set_intercept(self.session.intercept_expr)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.collector.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown)):
            self.collector.input_seen()
        await super().on_event(event)

    def action_request_quit(self) -> None:
        from inspector.tui.screens.confirm_quit import ConfirmQuitScreen

        if isinstance(self.screen, ConfirmQuitScreen):
            self.exit(0)
            return

        def done(quit_: bool | None) -> None:
            if quit_:
                self.exit(0)

        self.push_screen(ConfirmQuitScreen(self.session.info.address is not None), done)

    def action_help(self) -> None:
        from inspector.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every key binding of the screen is also a command palette entry."""
        yield from super().get_system_commands(screen)
        seen: set[str] = set()
        for binding in (*screen.BINDINGS, *self.BINDINGS):
            if not isinstance(binding, Binding) or not binding.description:
                continue
            if binding.action in seen:
                continue
            seen.add(binding.action)
            action = binding.action
            target = self if action in ("help", "request_quit") else screen
            yield SystemCommand(
                binding.description,
                f"key: {binding.key_display or binding.key}",
                lambda t=target, a=action: t.run_action(a),  # type: ignore[misc]
            )

    # --- loading and live events ----------------------------------------------------------

    @work(thread=True, exclusive=True, group="load")
    def _load_saved(self) -> None:
        """Read the session's existing flows page by page (metadata only)."""
        offset = 0
        try:
            while True:
                page = self.session.summaries(offset, LOAD_PAGE)
                if not page:
                    break
                rows = [FlowRow.from_summary(s) for s in page]
                self.call_from_thread(self._add_loaded, rows, [])
                offset += len(page)
                if len(page) < LOAD_PAGE:
                    break
            if offset:
                self.call_from_thread(self._add_loaded, [], self.session.failed_flows(MAX_EVENTS))
        except StoreError as e:
            self.call_from_thread(
                self.notify, f"could not read the session: {e}", severity="error", timeout=30
            )
        finally:
            self._loaded.set()
        self.call_from_thread(self._freeze_rows)

    @property
    def loaded(self) -> bool:
        """True once the session's saved flows are all in the list."""
        return self._loaded.is_set()

    def _freeze_rows(self) -> None:
        """Collect the loading's garbage, then freeze the loaded rows (see Collector)."""
        self.collector.collect_and_freeze(len(self.index.rows))

    def _add_loaded(self, rows: list[FlowRow], failed: list[Flow]) -> None:
        known = self.index.rows
        for row in rows:
            if row.id not in known:
                self.index.add(row)
                if row.error is not None and row.id not in self._counted_errors:
                    self._counted_errors.add(row.id)
                    self.errors += 1
        # The events pane lists the loaded failures (counted above) once their details come.
        self._add_error_events(failed)
        self.flows_changed(reordered=self.index.sorted)

    def drain(self) -> None:
        """Apply every queued bus event in one batch; repaint, less often in a flood."""
        queue = self._queue
        events = len(queue)
        if events:
            self._apply_events(events)
        now = time.monotonic()
        busy = events >= BUSY_BATCH
        every = BUSY_REPAINT_INTERVAL if self.collector.active else IDLE_REPAINT_INTERVAL
        if self._paint_due and (not busy or now - self._last_paint >= every):
            self._last_paint = now
            self._paint_due = False
            reordered, self._reorder_due = self._reorder_due, False
            self.flows_changed(reordered=reordered)
        self.collector.tick(len(self.index.rows))

    def _apply_events(self, count: int) -> None:
        """Update the index from ``count`` queued events, each flow once per batch."""
        queue, index = self._queue, self.index
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
        unfiltered = self._filter is None or self.filter_off
        for flow in latest.values():
            index.upsert(flow, None if unfiltered else self._matches(flow))
        self._remember(latest)  # in flight or just finished: not in the store yet
        self._sync_held()
        self._reorder_due |= index.sorted and self._resort_due()
        if errors:
            self.errors += len(errors)
            self._add_error_events(list(errors.values()))
        self._paint_due = True

    def _resort_due(self) -> bool:
        """Re-sort a sorted view at most every RESORT_INTERVAL (a sort of 100,000 rows is
        tens of milliseconds); new rows wait at the end until then."""
        now = time.monotonic()
        if now - self._last_resort < RESORT_INTERVAL:
            return False
        self._last_resort = now
        self.index.resort()
        return True

    def _sync_held(self) -> None:
        """Take the held set from the interceptor, the one authority on it."""
        held = self.session.held_ids()
        for flow_id in held ^ self.held_ids:
            row = self.index.rows.get(flow_id)
            if row is not None:
                row.held = flow_id in held
        self.held_ids = held

    def _matches(self, flow: Flow) -> bool | None:
        if self._filter is None or self.filter_off:
            return None
        try:
            verdict = bool(self._filter(flow))
        except Exception:  # a filter on a half-built flow must not break the drain
            verdict = False
        if self._filter_pending:  # remember verdicts the store query may not have seen
            if verdict:
                self._live_matches.add(flow.id)
            else:
                self._live_matches.discard(flow.id)
        return verdict

    def _remember(self, flows: dict[str, Flow]) -> None:
        """Keep the newest RECENT_FLOWS flows whole (a batch's, by id), oldest out first."""
        recent = self._recent
        for flow_id, flow in flows.items():
            recent.pop(flow_id, None)  # a later event moves the flow to the newest end
            recent[flow_id] = flow
        excess = len(recent) - RECENT_FLOWS
        if excess > 0:
            for flow_id in list(islice(recent, excess)):
                del recent[flow_id]

    def _add_error_events(self, flows: list[Flow]) -> None:
        for flow in flows:
            self._counted_errors.add(flow.id)
            self.error_events.append(ErrorEvent.from_flow(flow, self._error_seq))
            self._error_seq += 1

    def flows_changed(self, *, reordered: bool = False) -> None:
        for screen in self.screen_stack:
            screen.post_message(FlowsChanged(reordered=reordered))

    @property
    def counts(self) -> Counts:
        return Counts(
            exchanges=len(self.index.rows),
            errors=self.errors,
            held=len(self.held_ids),
            shown=len(self.index),
        )

    # --- flows ----------------------------------------------------------------------------

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

    def set_marked(self, ids: list[str], marked: bool) -> None:
        for flow_id in ids:
            row = self.index.rows.get(flow_id)
            if row is not None:
                row.marked = marked
        self._write_store("mark", self.session.set_marked, ids, marked)
        self.flows_changed()

    def delete_flows(self, ids: list[str]) -> None:
        self.index.remove(ids)
        self.held_ids.difference_update(ids)
        for flow_id in ids:
            self._recent.pop(flow_id, None)
        self._write_store("delete", self.session.delete, ids)
        self.flows_changed(reordered=True)

    @work(thread=True, group="store")
    def _write_store(self, what: str, write: Callable[..., object], *args: object) -> None:
        """Store writes wait for the writer thread: never on the UI thread."""
        try:
            write(*args)
        except StoreError as e:
            self.call_from_thread(
                self.notify, f"could not {what}: {e}", title="Session", severity="error"
            )

    # --- filter ---------------------------------------------------------------------------

    def apply_filter(self, expr: str | None) -> None:
        """Filter the list by ``expr`` (None or blank: show everything)."""
        expr = expr.strip() if expr else None
        if (expr or None) == self.filter_expr and not self.filter_off and not self._filter_pending:
            return  # applied already (live, while it was typed): the list is up to date
        if expr:
            self._filter = parse_filter(expr)  # validated by the filter bar already
        else:
            self._filter = None
        self.filter_expr = expr or None
        self.filter_off = False
        self._start_filter(self.filter_expr)

    def toggle_filter(self) -> bool:
        """Turn the current filter off or back on; False when there is no filter."""
        if self.filter_expr is None:
            return False
        self.filter_off = not self.filter_off
        self._start_filter(None if self.filter_off else self.filter_expr)
        return True

    def _start_filter(self, expr: str | None) -> None:
        """Filter the list rows right here when they can say, else query the store."""
        self.workers.cancel_group(self, "filter")
        self._live_matches = set()
        test = self._filter.row_test() if expr is not None and self._filter else None
        if expr is None or (test is not None and self.loaded):
            # Every flow has its row once loaded; 100,000 rows take tens of milliseconds.
            self._filter_pending = False
            if test is None:
                self.index.set_matching(None)
            else:
                self.index.filter_rows(test)
            self.flows_changed(reordered=True)
            return
        self._filter_pending = True
        self._run_filter(expr)

    @work(thread=True, exclusive=True, group="filter")
    def _run_filter(self, expr: str | None) -> None:
        self._loaded.wait()
        worker = get_current_worker()
        try:
            ids = None
            if expr is not None:
                ids = self.session.matching_ids(expr, lambda: worker.is_cancelled)
                if ids is None:
                    return  # superseded by a newer filter
        except (StoreError, FilterError) as e:
            self.call_from_thread(
                self.notify, f"filter failed: {e}", title="Filter", severity="error"
            )
            return
        self.post_message(FilterApplied(expr, ids))

    @on(FilterApplied)
    def _filter_applied(self, message: FilterApplied) -> None:
        current = None if self.filter_off else self.filter_expr
        if message.expr != current:
            return  # a newer filter was asked for meanwhile
        if message.ids is not None:
            # Flows that arrived while the store was queried were judged as they came in.
            message.ids |= self._live_matches & self.index.rows.keys()
        self._filter_pending = False
        self._live_matches = set()
        self.index.set_matching(message.ids)
        self.flows_changed(reordered=True)

    # --- intercept ------------------------------------------------------------------------

    def set_intercept(self, expr: str | None) -> None:
        self.session.set_intercept(expr)
        for screen in self.screen_stack:
            screen.post_message(FlowsChanged())

    def resume(self, ids: list[str]) -> None:
        for flow_id in ids:
            if flow_id in self.held_ids:
                self.session.resume(flow_id)
                self._release(flow_id)
        self.flows_changed()

    def kill(self, ids: list[str]) -> None:
        for flow_id in ids:
            if flow_id in self.held_ids:
                self.session.kill(flow_id)
                self._release(flow_id)
        self.flows_changed()

    def _release(self, flow_id: str) -> None:
        self.held_ids.discard(flow_id)
        row = self.index.rows.get(flow_id)
        if row is not None:
            row.held = False

    # --- replay ---------------------------------------------------------------------------

    @work(thread=True, group="replay")
    def replay(self, ids: list[str]) -> None:
        """Replay each flow through the protocol client; results come back as ReplayFinished."""
        options = ReplayOptions(
            insecure=self.session.insecure,
            upstream_ca=self.session.upstream_ca,
            body_limit=self.session.body_limit,
        )
        done: list[Flow] = []
        failures: list[str] = []
        for flow_id in ids:
            original: Flow | None = None
            try:
                original = self.load_flow(flow_id)
                if original is None:
                    failures.append(f"{flow_id}: no longer in the session")
                    continue
                done.append(replay_flow(original, options))
            except (ReplayError, StoreError, OSError, ValueError) as e:
                what = f"{original.request.method} {original.request.url}" if original else flow_id
                failures.append(f"{what}: {e}")
        for flow in done:
            try:
                self.session.record(flow)
            except StoreError as e:
                failures.append(f"replay of {flow.request.url} not recorded: {e}")
        self.post_message(ReplayFinished(done, failures))

    @on(ReplayFinished)
    def _replay_finished(self, message: ReplayFinished) -> None:
        failed = []
        for flow in message.flows:
            self._remember({flow.id: flow})
            self.index.upsert(flow, self._matches(flow))
            if flow.error is not None and flow.id not in self._counted_errors:
                failed.append(flow)
        self.errors += len(failed)
        self._add_error_events(failed)
        if self.index.sorted:
            self.index.resort()
        self.flows_changed(reordered=self.index.sorted)
        n = len(message.flows)
        if n:
            self.notify(f"replayed {n} flow{'s' if n != 1 else ''}", title="Replay")
        for failure in message.failures:
            self.notify(failure, title="Cannot replay", severity="error", timeout=8)

    @on(JumpToFlow)
    def _jump(self, message: JumpToFlow) -> None:
        from inspector.tui.screens.flow_detail import FlowDetailScreen
        from inspector.tui.screens.flow_list import FlowListScreen

        while len(self.screen_stack) > 2 and not isinstance(self.screen, FlowListScreen):
            self.pop_screen()
        screen = self.screen
        if isinstance(screen, FlowListScreen):
            screen.select_flow(message.flow_id)
        if message.open_detail:
            self.push_screen(FlowDetailScreen(message.flow_id))


def run_live(config: Config) -> int:
    """``inspector``: the proxy in a background thread and the UI in this one."""
    return _run_app(lambda: open_live(config))


def run_show(path: Path) -> int:
    """``inspector show SESSION``: the same UI over a saved session file."""
    return _run_app(lambda: open_saved(path))


def _run_app(open_session: Callable[[], Session]) -> int:
    try:
        session = open_session()
    except SessionError as e:
        print(f"inspector: error: {e}", file=sys.stderr)
        return 2
    try:
        result = InspectorApp(session).run()
    finally:
        session.close()
    return result or 0
