"""One flow in detail: tabs for the request, response, changes (by rules and addons),
timing, TLS, WebSocket and error.

What each tab shows is built in ``inspector.tui.views``; this screen lays it out and
handles the keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from inspector import content
from inspector.flow import Flow
from inspector.render import flow_line
from inspector.tui import keys
from inspector.tui.changes_view import changes_view
from inspector.tui.messages import EditFlow, FlowsChanged, OpenExport
from inspector.tui.screens.choose import ChoiceScreen
from inspector.tui.state import FlowState
from inspector.tui.views import (
    error_view,
    initial_tab,
    request_head,
    response_head,
    timing_view,
    tls_view,
    truncation_notice,
    websocket_view,
)
from inspector.tui.widgets.body_viewer import BodyViewer
from inspector.tui.widgets.filter_bar import FilterBar
from inspector.tui.widgets.status_bar import HeaderBar

if TYPE_CHECKING:
    from inspector.tui.app import InspectorApp

TABS = ("request", "response", "changes", "timing", "tls", "websocket", "error")


class FlowDetailScreen(Screen):
    """Everything recorded of one exchange."""

    BINDINGS = keys.DETAIL_KEYS

    app: InspectorApp

    @property
    def state(self) -> FlowState:
        return self.app.state

    def __init__(self, flow_id: str) -> None:
        super().__init__()
        self.flow_id = flow_id
        self.flow: Flow | None = None
        self.viewers = {"request": "auto", "response": "auto"}
        self._find = ""
        self._shown_state: tuple[object, ...] | None = None

    def compose(self) -> ComposeResult:
        yield HeaderBar(self.app.session.info, id="header")
        yield Static("", id="summary")
        with TabbedContent(id="tabs"):
            for part in ("request", "response"):
                with TabPane(part.title(), id=part):
                    with VerticalScroll(classes="head"):
                        yield Static("", id=f"{part}-head")
                    yield BodyViewer(id=f"{part}-body")
            with TabPane("Changes", id="changes"), VerticalScroll():
                yield Static("", id="changes-view")
            with TabPane("Timing", id="timing"), VerticalScroll():
                yield Static("", id="timing-view")
            with TabPane("TLS", id="tls"), VerticalScroll():
                yield Static("", id="tls-view")
            with TabPane("WebSocket", id="websocket"), VerticalScroll():
                yield Static("", id="websocket-view")
            with TabPane("Error", id="error"), VerticalScroll():
                yield Static("", id="error-view")
        yield Vertical(id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#prompt").display = False
        self.query_one(HeaderBar).counts = self.state.counts
        self.reload()
        if self.flow is not None:
            self.query_one(TabbedContent).active = initial_tab(self.flow)

    # --- content --------------------------------------------------------------------------

    def _state(self) -> tuple[object, ...]:
        row = self.state.index.rows.get(self.flow_id)
        if row is None:
            return ()
        return (row.finished, row.held, row.status, row.error, row.marked, self.state.edits)

    def reload(self) -> None:
        self.flow = self.state.load_flow(self.flow_id)
        self._shown_state = self._state()
        flow = self.flow
        if flow is None:
            self.query_one("#summary", Static).update(
                Text("this flow is no longer in the session", style="bold red")
            )
            return
        self._show_summary(flow)
        self.query_one("#request-head", Static).update(request_head(flow))
        self.query_one("#response-head", Static).update(response_head(flow))
        self._show_body("request")
        self._show_body("response")
        self.query_one("#changes-view", Static).update(changes_view(flow))
        self.query_one("#timing-view", Static).update(timing_view(flow))
        self.query_one("#tls-view", Static).update(tls_view(flow))
        self.query_one("#websocket-view", Static).update(websocket_view(flow))
        self.query_one("#error-view", Static).update(error_view(flow))
        tabs = self.query_one(TabbedContent)
        for tab, empty in (
            ("tls", flow.tls is None),
            ("websocket", not flow.websocket),
            ("error", flow.error is None),
        ):
            tabs.get_tab(tab).set_class(empty, "-empty")
        # Only a flow a rule, an addon or an edit changed has a Changes tab.
        if flow.modified:
            tabs.show_tab("changes")
        else:
            tabs.hide_tab("changes")

    def _show_summary(self, flow: Flow) -> None:
        text = Text()
        if flow.id in self.state.held_ids:
            text.append(" ⏸ HELD ", style="bold black on yellow")
            text.append("  e edit · a resume · X kill   ", style="yellow")
        if flow.marked:
            text.append("● ", style="bold magenta")
        text.append(flow_line(flow))
        if flow.modified:
            text.append(f"\n✎ modified: {', '.join(flow.modified_by)}", style="cyan")
        if self.state.edited(flow.id):
            text.append("\n✎ edited here: V reverts, r replays", style="cyan")
        self.query_one("#summary", Static).update(text)

    def _show_body(self, part: str) -> None:
        flow = self.flow
        assert flow is not None
        message = flow.request if part == "request" else flow.response
        viewer = self.query_one(f"#{part}-body", BodyViewer)
        if message is None:
            viewer.show(content.View("text", "", None, ("no response",)))
            return
        view = content.render(
            message.body.data,
            message.header("content-type"),
            message.header("content-encoding"),
            self.viewers[part],
        )
        viewer.show(view, truncation_notice(message.body))

    @on(FlowsChanged)
    def _flows_changed(self, message: FlowsChanged) -> None:
        self.query_one(HeaderBar).counts = self.state.counts
        if self._state() != self._shown_state:
            self.reload()

    # --- actions --------------------------------------------------------------------------

    @property
    def active_tab(self) -> str:
        return self.query_one(TabbedContent).active

    def action_back(self) -> None:
        prompt = self.query_one("#prompt", Vertical)
        if prompt.display:
            self._close_prompt()
        else:
            self.app.pop_screen()

    def _switch_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        shown = [
            t for t in TABS if t != "changes" or (self.flow is not None and self.flow.modified)
        ]
        i = shown.index(tabs.active) if tabs.active in shown else 0
        tabs.active = shown[(i + step) % len(shown)]

    def action_next_tab(self) -> None:
        self._switch_tab(1)

    def action_previous_tab(self) -> None:
        self._switch_tab(-1)

    def _body_part(self) -> str | None:
        part = self.active_tab
        if part not in self.viewers:
            self.notify("switch to the Request or Response tab first", severity="warning")
            return None
        return part

    def action_cycle_viewer(self) -> None:
        part = self._body_part()
        if part is None or self.flow is None:
            return
        current = self.viewers[part]
        self.viewers[part] = content.VIEWERS[
            (content.VIEWERS.index(current) + 1) % len(content.VIEWERS)
        ]
        self._show_body(part)

    def action_find(self) -> None:
        if self._body_part() is not None:
            self._open_prompt("find", self._find)

    def _open_prompt(self, purpose: str, value: str) -> None:
        slot = self.query_one("#prompt", Vertical)
        slot.remove_children()
        history = self.state.histories.setdefault(purpose, [])
        slot.mount(FilterBar(purpose, history, value=value))
        slot.display = True

    def _close_prompt(self) -> None:
        slot = self.query_one("#prompt", Vertical)
        slot.remove_children()
        slot.display = False

    @on(FilterBar.Changed)
    def _find_live(self, message: FilterBar.Changed) -> None:
        if type(message) is FilterBar.Changed and message.purpose == "find":
            self._find = message.value
            self._find_in_body(again=False)

    @on(FilterBar.Submitted)
    def _prompt_submitted(self, message: FilterBar.Submitted) -> None:
        self._close_prompt()
        if message.purpose == "body":
            part = self._body_part()
            if part is not None and message.value:
                self.app.save_body(self.flow_id, part, message.value)
            return
        self._find = message.value
        self._find_in_body(again=False)

    @on(FilterBar.Cancelled)
    def _find_cancelled(self, message: FilterBar.Cancelled) -> None:
        self._close_prompt()

    def _find_in_body(self, *, again: bool, backwards: bool = False) -> None:
        part = self._body_part()
        if part is None or not self._find:
            return
        viewer = self.query_one(f"#{part}-body", BodyViewer)
        if not viewer.find(self._find, again=again, backwards=backwards):
            self.notify(f"{self._find!r} not found in the {part} body", severity="warning")

    def action_find_next(self) -> None:
        self._find_in_body(again=True)

    def action_find_previous(self) -> None:
        self._find_in_body(again=True, backwards=True)

    def action_replay(self) -> None:
        self.notify("replaying…", title="Replay")
        self.app.replay([self.flow_id])

    def _held(self) -> bool:
        if self.flow_id not in self.state.held_ids:
            self.notify("this flow is not held", severity="warning")
            return False
        return True

    def action_edit(self) -> None:
        """The held message, else the part on screen (the request from other tabs)."""
        part = self.active_tab if self.active_tab in self.viewers else "request"
        self.post_message(EditFlow(self.flow_id, part))

    def action_duplicate(self) -> None:
        self.app.duplicate([self.flow_id])

    def action_revert(self) -> None:
        self.app.revert([self.flow_id])

    def _step_flow(self, step: int) -> None:
        """Show the next (or previous) flow of the list's order, as mitmproxy's space/p."""
        index = self.state.index
        pos = index.position(self.flow_id)
        row = index.row_at(pos + step) if pos is not None else None
        if row is None:
            self.notify("no more flows that way", severity="information")
            return
        self.flow_id = row.id
        self.reload()
        if self.flow is not None:
            self.query_one(TabbedContent).active = initial_tab(self.flow)

    def action_next_flow(self) -> None:
        self._step_flow(1)

    def action_previous_flow(self) -> None:
        self._step_flow(-1)

    def action_copy_url(self) -> None:
        if self.flow is not None:
            self.app.copy_text(self.flow.request.url, "URL")

    def action_copy_header(self) -> None:
        flow = self.flow
        if flow is None:
            return
        parts = [("request", flow.request)]
        if flow.response is not None:
            parts.append(("response", flow.response))
        pairs = [
            (part, name.decode("latin-1"), value.decode("latin-1"))
            for part, message in parts
            for name, value in message.headers
        ]
        choices = [(f"{p:<8}  {name}: {value}", str(n)) for n, (p, name, value) in enumerate(pairs)]
        if not choices:
            self.notify("this flow has no headers", severity="warning")
            return

        def chosen(picked: str | None) -> None:
            if picked is not None:
                self.app.copy_text(pairs[int(picked)][2], f"{pairs[int(picked)][1]} value")

        self.app.push_screen(ChoiceScreen("Copy which header's value?", choices), chosen)

    def action_save_body(self) -> None:
        part = self._body_part()
        if part is None:
            return
        self._open_prompt("body", "")

    def action_resume(self) -> None:
        if self._held():
            self.app.resume([self.flow_id])
            self.reload()

    def action_kill(self) -> None:
        if self._held():
            self.app.kill([self.flow_id])
            self.reload()

    def action_export(self) -> None:
        self.post_message(OpenExport([self.flow_id]))
