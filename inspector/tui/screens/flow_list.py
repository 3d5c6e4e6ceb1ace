"""The main screen: the live flow list, the events pane and the prompts that act on flows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from inspector.tui import keys
from inspector.tui.messages import EditFlow, FlowsChanged, OpenExport, OpenFlow, OpenSearch
from inspector.tui.rows import SORT_KEYS
from inspector.tui.screens.choose import ChoiceScreen
from inspector.tui.screens.confirm_quit import ConfirmScreen
from inspector.tui.state import FlowState, filter_error
from inspector.tui.widgets.events_pane import EventsPane
from inspector.tui.widgets.filter_bar import FilterBar
from inspector.tui.widgets.flow_table import FlowTable
from inspector.tui.widgets.status_bar import HeaderBar, SourceInfo, StatusLine

if TYPE_CHECKING:
    from inspector.tui.app import InspectorApp

FILTER_HINT = (
    "~m METHOD  ~d DOMAIN  ~u URL  ~c CODE|4xx  ~h HEADER  ~b BODY  ~t TYPE  ~e error  ~s/~q"
    "  ~marked  ~replay   ! & | ( )   e.g. ~c 4xx & ~d api   (? shows all)"
)
DEFAULT_ADDRESS = "http://127.0.0.1:8080"  # inspector env's default --proxy
NOT_HELD = "the selected flow is not held (i sets what to intercept)"
SORT_ORDER = ("time", *[k for k in SORT_KEYS if k != "time"])
SORT_TITLES = {"time": "time (capture order)", "host": "host", "size": "size (response body)"}


def env_line(address: str) -> str:
    """The shell line that points a terminal at this proxy (``inspector env``)."""
    if address == DEFAULT_ADDRESS:
        return 'eval "$(inspector env)"'
    return f'eval "$(inspector env --proxy {address})"'


def first_run_text(info: SourceInfo) -> str:
    """How to send traffic through the proxy, with copy-ready commands."""
    address = info.address or DEFAULT_ADDRESS
    ca = info.ca_path or "~/.inspector/ca.pem"
    return "\n".join(
        [
            f"[b]Waiting for traffic.[/b]  The proxy listens on [b]{address}[/b]"
            f" ({info.mode} mode).",
            "",
            "Send a request through it:",
            "",
            f"  [b]curl -x {address} --cacert {ca} https://example.com[/b]",
            "",
            "Or point a whole shell at it (every program started there, trusting the CA):",
            "",
            f"  [b]{env_line(address)}[/b]",
            "",
            "or run one program through a proxy of its own: [b]inspector run -- python app.py[/b]",
            "",
            f"The CA certificate to trust is [b]{ca}[/b]"
            " (`inspector ca` prints it and how to install it).",
            "",
            "Press [b]?[/b] for every key, [b]i[/b] to intercept, [b]q[/b] to quit.",
        ]
    )


class FlowListScreen(Screen):
    """One row per exchange, live."""

    BINDINGS = keys.LIST_KEYS

    app: InspectorApp

    @property
    def state(self) -> FlowState:
        return self.app.state

    def compose(self) -> ComposeResult:
        info = self.app.session.info
        yield HeaderBar(info, id="header")
        yield Static(first_run_text(info), id="first-run")
        yield FlowTable(self.state.index, id="flows")
        yield EventsPane(id="events")
        yield Vertical(id="prompt")
        yield StatusLine(info, id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#events").display = False
        self.query_one("#prompt").display = False
        table = self.query_one(FlowTable)
        table.focus()
        self.watch(table, "follow", self._follow_changed, init=False)
        self.refresh_flows()

    def _follow_changed(self, follow: bool) -> None:
        self.query_one(StatusLine).follow = follow

    # --- keeping up with the app ----------------------------------------------------------

    @on(FlowsChanged)
    def _flows_changed(self, message: FlowsChanged) -> None:
        self.refresh_flows(reordered=message.reordered)

    def refresh_flows(self, *, reordered: bool = False) -> None:
        app, state = self.app, self.state
        table = self.query_one(FlowTable)
        table.rows_changed(reordered=reordered)
        self.query_one(HeaderBar).counts = state.counts
        live = app.session.info.address is not None
        waiting = live and not state.index.total and not state.filter_expr
        self.query_one("#first-run").display = waiting
        table.display = not waiting
        self.query_one(EventsPane).sync(state.error_events)
        status = self.query_one(StatusLine)
        status.filter_expr = state.filter_expr
        status.filter_off = state.filter_off
        status.intercept_expr = app.session.intercept_expr
        status.follow = table.follow
        status.only_marked = state.index.only_marked
        key = state.index.sort_key
        status.sort = (
            None
            if not state.index.sorted
            else f"{key or 'time'}{' ▼' if state.index.sort_reverse else ''}"
        )

    def on_flow_table_selected(self, message: FlowTable.Selected) -> None:
        self.post_message(OpenFlow(message.flow_id))

    def on_flow_table_sort_requested(self, message: FlowTable.SortRequested) -> None:
        index = self.state.index
        reverse = not index.sort_reverse if index.sort_key == message.key else False
        self._sort(message.key, reverse)

    def select_flow(self, flow_id: str) -> None:
        table = self.query_one(FlowTable)
        if not table.move_to(flow_id) and self.state.filter_expr and not self.state.filter_off:
            self.notify("that flow is hidden by the filter (t turns it off)", severity="warning")

    @property
    def current_id(self) -> str | None:
        row = self.query_one(FlowTable).cursor_row
        return row.id if row is not None else None

    # --- prompts --------------------------------------------------------------------------

    _prompt_ids: list[str] = []  # the flows a save prompt was opened for

    def _prompt(self, purpose: str, value: str = "", hint: str = "") -> None:
        slot = self.query_one("#prompt", Vertical)
        slot.remove_children()
        history = self.state.histories.setdefault(purpose, [])
        validate = filter_error if purpose in ("filter", "intercept") else None
        slot.mount(FilterBar(purpose, history, value=value, validate=validate, hint=hint))
        slot.display = True

    def _close_prompt(self) -> None:
        slot = self.query_one("#prompt", Vertical)
        slot.remove_children()
        slot.display = False
        self.query_one(FlowTable).focus()

    def action_filter(self) -> None:
        self._prompt("filter", self.state.filter_expr or "", hint=FILTER_HINT)

    def action_intercept(self) -> None:
        if self.app.session.interceptor is None:
            self.notify("intercepting needs a live proxy, not a saved session", severity="warning")
            return
        self._prompt(
            "intercept",
            self.app.session.intercept_expr or "",
            hint="matching requests and responses are held: e edits, a resumes, X kills; "
            "an empty filter stops intercepting",
        )

    def action_search(self) -> None:
        self._prompt("search", hint="searches URLs, headers and text bodies of every flow")

    @on(FilterBar.Changed)
    def _live_change(self, message: FilterBar.Changed) -> None:
        if message.purpose == "filter" and type(message) is FilterBar.Changed:
            self.app.apply_filter(message.value)

    @on(FilterBar.Submitted)
    def _submitted(self, message: FilterBar.Submitted) -> None:
        self._close_prompt()
        value = message.value or None
        if message.purpose == "filter":
            # Filtered rows and the closed prompt appear in the same repaint.
            self.app.apply_filter(value)
        elif message.purpose == "intercept":
            self.app.set_intercept(value)
            self.notify(f"intercepting {value}" if value else "intercept off", title="Intercept")
        elif message.purpose == "search" and value:
            self.post_message(OpenSearch(value))
        elif message.purpose == "save" and value:
            self.app.save_flows(self._prompt_ids, value)
        elif message.purpose == "body" and value and self._prompt_ids:
            self.app.save_body(self._prompt_ids[0], "response", value)

    @on(FilterBar.Cancelled)
    def _cancelled(self, message: FilterBar.Cancelled) -> None:
        self._close_prompt()

    def action_toggle_filter(self) -> None:
        if not self.app.toggle_filter():
            self.notify("no filter set: press f to set one", severity="warning")

    # --- flow actions ---------------------------------------------------------------------

    def action_open(self) -> None:
        self.query_one(FlowTable).action_select()

    def _held_targets(self) -> list[str]:
        ids = [i for i in self.state.selected_ids(self.current_id) if i in self.state.held_ids]
        if not ids:
            self.notify(NOT_HELD, severity="warning")
        return ids

    def action_edit(self) -> None:
        """Edit the held message, else the recorded request (then r replays it)."""
        current = self.current_id
        if current is not None:
            self.post_message(EditFlow(current))

    def action_resume(self) -> None:
        ids = self._held_targets()
        if ids:
            self.app.resume(ids)

    def action_resume_all(self) -> None:
        self.app.resume(list(self.state.held_ids))

    def action_kill(self) -> None:
        ids = self._held_targets()
        if ids:
            self.app.kill(ids)

    def action_replay(self) -> None:
        ids = self.state.selected_ids(self.current_id)
        if ids:
            self.notify(f"replaying {len(ids)} flow{'s' if len(ids) != 1 else ''}…", title="Replay")
            self.app.replay(ids)

    def action_mark(self) -> None:
        row = self.query_one(FlowTable).cursor_row
        if row is not None:
            self.app.set_marked([row.id], not row.marked)
            self.query_one(FlowTable).action_cursor_down()

    def action_unmark_all(self) -> None:
        self.app.set_marked(self.state.index.marked_ids(shown_only=False), False)

    def action_marked_only(self) -> None:
        index = self.state.index
        index.only_marked = not index.only_marked
        self.app.requery()
        self.refresh_flows()

    def action_duplicate(self) -> None:
        ids = self.state.selected_ids(self.current_id)
        if ids:
            self.app.duplicate(ids)

    def action_revert(self) -> None:
        ids = self.state.selected_ids(self.current_id)
        if ids:
            self.app.revert(ids)

    def action_save_flows(self) -> None:
        marked = self.state.index.marked_ids(shown_only=True)
        self._prompt_ids = marked or self.state.index.shown_ids()
        n = len(self._prompt_ids)
        what = "marked" if marked else "listed"
        self._prompt(
            "save", "flows.db", hint=f"the {n} {what} flows are added to this session file"
        )

    def action_save_body(self) -> None:
        current = self.current_id
        if current is not None:
            self._prompt_ids = [current]
            self._prompt("body", hint="the response body, Content-Encoding undone")

    def action_copy_url(self) -> None:
        row = self.query_one(FlowTable).cursor_row
        if row is not None:
            self.app.copy_text(row.url, "URL")

    def _writable(self) -> bool:
        if self.app.session.readonly:
            self.notify(
                "a saved session is read-only here (replay and export work)", severity="warning"
            )
            return False
        return True

    def action_delete(self) -> None:
        if self._writable():
            ids = self.state.selected_ids(self.current_id)
            self.app.delete_flows([i for i in ids if i not in self.state.held_ids])

    def action_drop_hidden(self) -> None:
        if not self._writable():
            return
        ids = self.state.hidden_ids()
        if not ids:
            self.notify("every flow is shown: nothing to drop", severity="warning")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.app.delete_flows(ids)

        self.app.push_screen(
            ConfirmScreen(f"Delete the {len(ids)} flows the filter hides from the session?"), done
        )

    def action_clear(self) -> None:
        if not self._writable():
            return
        ids = [i for i in self.state.index.shown_ids() if i not in self.state.held_ids]

        def done(yes: bool | None) -> None:
            if yes:
                self.app.delete_flows(ids)

        self.app.push_screen(
            ConfirmScreen(f"Delete all {len(ids)} shown flows from the session?"), done
        )

    def action_export(self) -> None:
        ids = self.state.selected_ids(self.current_id)
        if ids:
            self.post_message(OpenExport(ids))

    def action_toggle_events(self) -> None:
        pane = self.query_one(EventsPane)
        pane.display = not pane.display
        if pane.display:
            pane.focus()
        else:
            self.query_one(FlowTable).focus()

    def _sort(self, key: str, reverse: bool) -> None:
        self.state.index.set_sort(None if key == "time" and not reverse else key, reverse)
        self.app.requery()
        self.refresh_flows()

    def action_sort(self) -> None:
        index = self.state.index
        current = SORT_ORDER.index(index.sort_key or "time")

        def chosen(key: str | None) -> None:
            if key is not None:
                self._sort(key, index.sort_reverse)

        choices = [(SORT_TITLES.get(k, k), k) for k in SORT_ORDER]
        self.app.push_screen(
            ChoiceScreen("Sort the flows by (v reverses)", choices, current), chosen
        )

    def action_reverse(self) -> None:
        self._sort(self.state.index.sort_key or "time", not self.state.index.sort_reverse)
