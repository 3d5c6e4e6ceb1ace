"""The Textual app: the flow list, detail and helper screens over a live proxy or a saved session.

Threading: the bus calls ``_on_event`` in the proxy's thread, which only appends to a
deque; a timer in the app's thread drains it every ``DRAIN_INTERVAL`` and updates the
index and widgets in one batch. Slow work (loading a session, filtering, replay) runs
in thread workers that post a message back; widgets are only touched in the app thread.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import events, on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import get_current_worker

from inspector.bus import FlowEvent
from inspector.config import Config, ConfigError
from inspector.filters import FilterError
from inspector.flow import Flow
from inspector.replay.engine import ReplayError, ReplayOptions, replay_flow
from inspector.store import StoreError
from inspector.tui import keys
from inspector.tui.collector import Collector
from inspector.tui.edits import PARTS
from inspector.tui.flow_index import Query
from inspector.tui.messages import (
    EditFlow,
    FilterApplied,
    FlowsAdded,
    FlowsChanged,
    JumpToFlow,
    OpenExport,
    OpenFlow,
    OpenSearch,
)
from inspector.tui.saving import SaveError, save_body, save_flows
from inspector.tui.screens.confirm_quit import ConfirmQuitScreen
from inspector.tui.screens.export import ExportScreen
from inspector.tui.screens.flow_detail import FlowDetailScreen
from inspector.tui.screens.flow_list import FlowListScreen
from inspector.tui.screens.help import HelpScreen
from inspector.tui.screens.intercept_editor import open_editor
from inspector.tui.screens.search_results import SearchResultsScreen
from inspector.tui.session import Session, open_live, open_saved
from inspector.tui.state import MAX_EVENTS, FlowState

DRAIN_INTERVAL = 0.1  # seconds between batches of bus events
# A flood of flows repaints the list at most every BUSY_REPAINT_INTERVAL: each repaint
# redraws every visible row, and the UI shares the interpreter with the proxy thread.
# Nobody reads rows flying by faster, and while nobody types (Collector.active) once
# a second does as well.
BUSY_BATCH = 40  # bus events in one batch that make a flood (a flow brings about 4)
BUSY_REPAINT_INTERVAL = 0.5
SEARCH_INDEX_PAUSE = 0.01  # seconds between chunks of indexing a saved session for search
ANSWER_PAINT = 0.3  # seconds a list query's answer takes to be painted, at most
IDLE_REPAINT_INTERVAL = 1.0


class InspectorApp(App[int]):
    """http-inspector's terminal UI: drives a FlowState from timers and workers, and
    opens the screens its messages ask for."""

    CSS_PATH = "inspector.tcss"
    TITLE = "http-inspector"
    BINDINGS = keys.GLOBAL_KEYS
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, session: Session, *, drain_interval: float = DRAIN_INTERVAL) -> None:
        super().__init__()
        self.session = session
        self.state = FlowState(session)
        self.drain_interval = drain_interval
        self.collector = Collector()
        self._unsubscribe: Callable[[], None] | None = None
        self._loaded = threading.Event()
        self._last_paint = 0.0
        self._paint_due = False  # the index changed since the list was last repainted
        self._reorder_due = False
        self._answered = float("-inf")  # when a list query's answer came (see drain)

    # --- start and stop -------------------------------------------------------------------

    def on_mount(self) -> None:
        self.collector.start()
        if self.session.bus is not None:
            self._unsubscribe = self.session.bus.subscribe(self._queue_event)
        self.push_screen(FlowListScreen())
        self.set_interval(self.drain_interval, self.drain)
        self._load_saved()
        if self.session.intercept_expr:
            self.set_intercept(self.session.intercept_expr)
        self._show_addon_reports()

    def _show_addon_reports(self) -> None:
        """Addon scripts' reports (failed loads and reloads, slow hooks) as notifications;
        those made before the UI started went to stderr, under the alternate screen."""
        thread = self.session.runtime
        changes = thread.runtime.changes if thread is not None and thread.runtime else None
        if changes is None or not changes.addons:
            return
        for message in changes.addons.history:
            self.notify(message, title="Addon", severity="warning", timeout=10)

        def from_proxy(message: str) -> None:  # called on the proxy's thread
            self.call_from_thread(
                self.notify, message, title="Addon", severity="warning", timeout=10
            )

        changes.addons.report = from_proxy

    def _queue_event(self, event: FlowEvent) -> None:
        """Called in the proxy's thread: only queue (the drain timer applies it)."""
        self.state.queue.append(event)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.collector.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown)):
            self.collector.input_seen()
        await super().on_event(event)

    def action_request_quit(self) -> None:
        if isinstance(self.screen, ConfirmQuitScreen):
            self.exit(0)
            return

        def done(quit_: bool | None) -> None:
            if quit_:
                self.exit(0)

        self.push_screen(ConfirmQuitScreen(self.session.info.address is not None), done)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

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
        """Read the session's stored flows' row ids (the list reads the rows it shows)."""
        try:
            seqs = self.session.all_seqs()
        except StoreError as e:
            self._load_failed(e)
            return
        self.call_from_thread(self._add_loaded, seqs)

    @work(thread=True, group="figures")
    def _load_figures(self) -> None:
        """The header's figures and the events pane's failures, once the first screen is
        painted (decoding them would hold the interpreter meanwhile)."""
        try:
            store = self.session.store
            errors, modified = store.count("~e"), store.count("~modified")
            failed = self.session.failed_flows(MAX_EVENTS)
        except StoreError as e:
            self._load_failed(e)
            return
        self.call_from_thread(self._add_figures, errors, modified, failed)
        self._loaded.set()
        self.call_from_thread(self._freeze_rows)
        if self.session.readonly:
            self._prepare_search()

    @work(thread=True, group="search-index")
    def _prepare_search(self) -> None:
        """Index what the saved session left unindexed, so that the first search is as
        quick as the next (chunk by chunk, yielding to the UI between them)."""
        try:
            self.session.store.prepare_search(pause=SEARCH_INDEX_PAUSE)
        except (StoreError, sqlite3.Error):
            pass  # a search indexes the same flows itself, and reports what fails

    def _load_failed(self, error: StoreError) -> None:
        self._loaded.set()
        self.call_from_thread(
            self.notify, f"could not read the session: {error}", severity="error", timeout=30
        )

    @property
    def loaded(self) -> bool:
        """True once the session's saved flows are all in the list."""
        return self._loaded.is_set()

    def _freeze_rows(self) -> None:
        """Collect the loading's garbage, then freeze what survived (see Collector)."""
        self.collector.collect_and_freeze(self.state.index.total)

    def _add_loaded(self, seqs: array) -> None:
        self.state.load(seqs)
        if self.state.filtering or self.state.index.sorted or self.state.index.only_marked:
            self.requery()  # set while the session was loading
        else:
            self.flows_changed(reordered=True)  # the first screen, at once
        if seqs:
            self.call_after_refresh(self._load_figures)
        else:
            self._loaded.set()

    def _add_figures(self, errors: int, modified: int, failed: list[Flow]) -> None:
        self.state.add_figures(errors, modified, failed)
        self.flows_changed()

    def drain(self) -> None:
        """Apply every queued bus event in one batch; repaint, less often in a flood."""
        count = len(self.state.queue)
        if count:
            self.state.apply_events(count)
            self._paint_due = True
        if self.state.absorb():  # rows the store now has: the list reads them from it
            self._paint_due = self._reorder_due = True
        if self.state.resort_due():
            self.requery()
        now = time.monotonic()
        busy = count >= BUSY_BATCH
        every = BUSY_REPAINT_INTERVAL if self.collector.active else IDLE_REPAINT_INTERVAL
        if self._paint_due and (not busy or now - self._last_paint >= every):
            self._last_paint = now
            self._paint_due = False
            reordered, self._reorder_due = self._reorder_due, False
            self.flows_changed(reordered=reordered)
        # A full collection waits while a list query runs and until its answer is painted.
        waiting = self.state.filter_pending or now - self._answered < ANSWER_PAINT
        self.collector.tick(self.state.index.total, busy=waiting)

    def flows_changed(self, *, reordered: bool = False) -> None:
        """Tell every screen to repaint from the state."""
        for screen in self.screen_stack:
            screen.post_message(FlowsChanged(reordered=reordered))

    # --- flows ----------------------------------------------------------------------------

    def set_marked(self, ids: list[str], marked: bool) -> None:
        self.state.mark(ids, marked)
        self._write_store("mark", self.session.set_marked, ids, marked)
        self.flows_changed()

    def delete_flows(self, ids: list[str]) -> None:
        self.state.forget(ids)
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
        if self.state.set_filter(expr):
            self._start_filter()

    def toggle_filter(self) -> bool:
        """Turn the current filter off or back on; False when there is no filter."""
        if not self.state.toggle_filter():
            return False
        self._start_filter()
        return True

    def _start_filter(self) -> None:
        self.requery()

    def requery(self) -> None:
        """Show the state's filter, sort and marks-only view: at once for a small session,
        else by a store query in the background (a newer one cancels it)."""
        self.workers.cancel_group(self, "filter")
        query = self.state.start_query()
        if query is None:
            self.flows_changed(reordered=True)
        else:
            self._run_query(query)

    @work(thread=True, exclusive=True, group="filter")
    def _run_query(self, query: Query) -> None:
        worker = get_current_worker()
        try:
            seqs = self.session.list_seqs(query, lambda: worker.is_cancelled)
        except (StoreError, FilterError, sqlite3.Error) as e:
            self.call_from_thread(self._query_failed, query, str(e))
            return
        if seqs is not None:  # else superseded by a newer query
            self.post_message(FilterApplied(query, seqs))

    def _query_failed(self, query: Query, error: str) -> None:
        self.state.query_done(query, None)
        self.notify(f"filter failed: {error}", title="Filter", severity="error")

    @on(FilterApplied)
    def _filter_applied(self, message: FilterApplied) -> None:
        if self.state.query_done(message.query, message.seqs):
            self._answered = time.monotonic()
            self.flows_changed(reordered=True)

    # --- intercept ------------------------------------------------------------------------

    def set_intercept(self, expr: str | None) -> None:
        self.session.set_intercept(expr)
        self.flows_changed()

    def resume(self, ids: list[str]) -> None:
        self.state.release(ids, kill=False)
        self.flows_changed()

    def kill(self, ids: list[str]) -> None:
        self.state.release(ids, kill=True)
        self.flows_changed()

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
                original = self.state.load_flow(flow_id)
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
        self.post_message(FlowsAdded(done, failures, "replayed"))

    @work(thread=True, group="store")
    def duplicate(self, ids: list[str]) -> None:
        """Copy each flow under a new id (to edit and replay), recorded like a replay."""
        made: list[Flow] = []
        failures: list[str] = []
        for flow_id in ids:
            try:
                flow = self.state.load_flow(flow_id)
                if flow is None:
                    failures.append(f"{flow_id}: no longer in the session")
                    continue
                twin = self.state.duplicate(flow)
                self.session.record(twin)
                made.append(twin)
            except StoreError as e:
                failures.append(f"{flow_id}: {e}")
        self.post_message(FlowsAdded(made, failures, "duplicated"))

    @on(FlowsAdded)
    def _flows_added(self, message: FlowsAdded) -> None:
        self.state.add_flows(message.flows)
        if self.state.index.sorted:
            self.state.index.relist_live()
        self.flows_changed(reordered=self.state.index.sorted)
        n = len(message.flows)
        title = message.done.capitalize()
        if n:
            self.notify(f"{message.done} {n} flow{'s' if n != 1 else ''}", title=title)
        for failure in message.failures:
            self.notify(failure, title=f"Not {message.done}", severity="error", timeout=8)

    # --- edits ----------------------------------------------------------------------------

    def edit(self, flow_id: str, part: str = "request") -> None:
        """Edit the held message of ``flow_id``, else ``part`` of the recorded flow."""
        held = self.session.held_flow(flow_id)
        stage = self.session.stage_of(flow_id)
        if held is not None and stage is not None:
            open_editor(self, held, stage, held=True)
            return
        flow = self.state.load_flow(flow_id)
        if flow is None:
            self.notify("that flow is no longer in the session", severity="warning")
        elif not flow.finished:  # the proxy is still writing it
            self.notify(
                "this exchange is still in progress: edit it when it is done (or D duplicates it)",
                severity="warning",
            )
        elif part == "response" and flow.response is None:
            self.notify("this flow has no response to edit", severity="warning")
        else:
            open_editor(self, flow, part, held=False)

    def flow_edited(self, flow: Flow, stage: str, *, changed: bool = True) -> None:
        """A user's edit was applied to ``flow`` (recorded beside the original, as a rule's
        change is): update its row, and record it unless it is held (the proxy sends, and
        records, a held flow as edited)."""
        if not changed:
            self.notify(f"{stage} unchanged: nothing to record", title="Edit")
            return
        self.state.add_flows([flow])  # the row's ✎ marker, ~modified, the header's count
        if self.session.held_flow(flow.id) is not None:
            self.notify(f"{stage} edited: a resumes it", title="Edit")
        else:
            self._write_store("record the edit", self.session.record, flow)
            self.notify(f"{stage} edited (r replays it, V reverts)", title="Edit")
        self.flows_changed()

    def revert(self, ids: list[str]) -> None:
        """Undo the user's edits of these flows (held ones too, while held)."""
        reverted, notes = 0, []
        for flow_id in ids:
            held = self.session.held_flow(flow_id)
            flow = held or self.state.load_flow(flow_id)
            if flow is None or (held is None and not flow.finished):
                continue  # gone, or resumed and still in flight: the proxy is writing it
            # A held response's request has gone upstream already: it stays as sent.
            at_response = held is not None and self.session.stage_of(flow_id) == "response"
            if not self.state.revert(flow, ("response",) if at_response else PARTS):
                if at_response and self.state.edited(flow_id):
                    notes.append("the edited request went upstream already: it stays")
                continue
            reverted += 1
            self.state.add_flows([flow])
            if held is None:
                self._write_store("record the revert", self.session.record, flow)
        for note in notes:
            self.notify(note, title="Revert", severity="warning")
        if reverted:
            self.notify(f"reverted {reverted} flow{'s' if reverted != 1 else ''}", title="Revert")
            self.flows_changed()
        elif not notes:
            self.notify("nothing to revert: not edited here", severity="warning")

    # --- saving ---------------------------------------------------------------------------

    @work(thread=True, group="save")
    def save_flows(self, ids: list[str], path: str) -> None:
        """Write these flows into the session file ``path`` (made when missing)."""
        flows = [f for f in map(self.state.load_flow, ids) if f is not None]
        try:
            written = save_flows(flows, path, self.session.info.session)
        except SaveError as e:
            self.call_from_thread(self.notify, str(e), title="Not saved", severity="error")
            return
        n = len(flows)
        self.call_from_thread(
            self.notify, f"saved {n} flow{'s' if n != 1 else ''} to {written}", title="Save"
        )

    def save_body(self, flow_id: str, part: str, path: str) -> None:
        """Write the (decoded) body of ``part`` of the flow to ``path``."""
        flow = self.state.load_flow(flow_id)
        if flow is None:
            self.notify("that flow is no longer in the session", severity="warning")
            return
        try:
            written, note = save_body(flow, part, path)
        except SaveError as e:
            self.notify(str(e), title="Not saved", severity="error")
            return
        self.notify(f"wrote the {part} body to {written}{note}", title="Save")

    def copy_text(self, text: str, what: str) -> None:
        """Send ``text`` to the terminal's clipboard; say truthfully what was done."""
        self.copy_to_clipboard(text)
        self.notify(f"{what} sent to the terminal clipboard (OSC 52)", title="Copy")

    # --- what the screens ask for ---------------------------------------------------------

    @on(OpenFlow)
    def _open_flow(self, message: OpenFlow) -> None:
        self.push_screen(FlowDetailScreen(message.flow_id))

    @on(OpenExport)
    def _open_export(self, message: OpenExport) -> None:
        self.push_screen(ExportScreen(message.ids))

    @on(OpenSearch)
    def _open_search(self, message: OpenSearch) -> None:
        self.push_screen(SearchResultsScreen(message.query))

    @on(EditFlow)
    def _edit_flow(self, message: EditFlow) -> None:
        self.edit(message.flow_id, message.part)

    @on(JumpToFlow)
    def _jump(self, message: JumpToFlow) -> None:
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
    except ConfigError as e:  # the session cannot be opened, or the proxy cannot start
        print(f"inspector: error: {e}", file=sys.stderr)
        return 2
    try:
        result = InspectorApp(session).run()
    finally:
        session.close()
    return result or 0
