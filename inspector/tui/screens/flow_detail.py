"""One flow in detail: tabs for the request, response, timing, TLS, WebSocket and error."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from inspector import content
from inspector.flow import Body, Flow
from inspector.render import duration_text, flow_line, human_size
from inspector.tui.messages import FlowsChanged
from inspector.tui.widgets.body_viewer import BodyViewer
from inspector.tui.widgets.filter_bar import FilterBar
from inspector.tui.widgets.status_bar import HeaderBar
from protocol.status import describe

if TYPE_CHECKING:
    from inspector.tui.app import InspectorApp
    from protocol.headers import HeaderPairs

TABS = ("request", "response", "timing", "tls", "websocket", "error")
STATUS_COLOURS = {1: "blue", 2: "green", 3: "cyan", 4: "yellow", 5: "red"}
OPCODES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def headers_text(pairs: HeaderPairs) -> Text:
    """Header fields in their original order and case."""
    text = Text()
    for name, value in pairs:
        text.append(name.decode("latin-1"), style="bold cyan")
        text.append(": ")
        text.append(value.decode("latin-1"))
        text.append("\n")
    return text


def truncation_notice(body: Body) -> tuple[str, ...]:
    if not body.truncated:
        return ()
    digest = f", sha256 {body.sha256}" if body.sha256 else ""
    return (f"⚠ recorded {human_size(len(body.data))} of {human_size(body.size)}{digest}",)


def status_description(code: int, reason: str) -> Text:
    """``404 NOT_FOUND  Not Found  (RFC 9110, Section 15.5.5)`` and the server's own phrase."""
    info = describe(code)
    text = Text()
    text.append(f"{code} {info.phrase}", style=f"bold {STATUS_COLOURS.get(code // 100, '')}")
    text.append("  (")
    text.append(info.name, style="cyan")
    if info.reference:
        text.append(f", {info.reference}")
    text.append(")")
    if reason and reason.lower() != info.phrase.lower():
        text.append(f'\nthe server sent the reason phrase "{reason}"', style="yellow")
    return text


def request_head(flow: Flow) -> Text:
    req = flow.request
    text = Text()
    text.append(req.url, style="bold underline")
    text.append("\n\n")
    text.append(f"{req.method} ", style="bold")
    text.append(req.path)
    text.append(f" {req.http_version}\n", style="dim")
    text.append_text(headers_text(req.headers))
    if req.trailers:
        text.append("\ntrailers:\n", style="dim")
        text.append_text(headers_text(req.trailers))
    return text


def response_head(flow: Flow) -> Text:
    resp = flow.response
    if resp is None:
        return Text("no response" + (" (see the Error tab)" if flow.error else " yet"), style="dim")
    text = status_description(resp.status_code, resp.reason)
    text.append("\n\n")
    text.append(f"{resp.http_version} ", style="dim")
    text.append(f"{resp.status_code} {resp.reason}\n", style="bold")
    text.append_text(headers_text(resp.headers))
    if resp.trailers:
        text.append("\ntrailers:\n", style="dim")
        text.append_text(headers_text(resp.trailers))
    return text


def timing_table(flow: Flow) -> Table:
    t = flow.timings
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("step")
    table.add_column("at", justify="right")
    table.add_column("took", justify="right")
    steps = [
        ("request received", t.start, None),
        ("connect", t.connect_end, (t.connect_start, t.connect_end)),
        ("TLS handshake", t.tls_end, (t.connect_end, t.tls_end)),
        ("request sent", t.request_sent, None),
        ("waiting (first byte)", t.response_start, (t.request_sent, t.response_start)),
        ("response done" if flow.error is None else "failed", t.end, (t.response_start, t.end)),
    ]
    for name, at, span in steps:
        if at is None:
            table.add_row(name, "-", "", style="dim")
            continue
        took = ""
        if span is not None and span[0] is not None and span[1] is not None:
            took = duration_text(span[1] - span[0])
        table.add_row(name, "+" + duration_text(at - t.start), took)
    total = "in progress" if t.duration is None else duration_text(t.duration)
    table.add_row(Text("total", style="bold"), "", Text(total, style="bold"))
    return table


def timing_view(flow: Flow) -> Group:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(flow.timings.start))
    return Group(Text(f"started {started}\n", style="dim"), timing_table(flow))


def tls_view(flow: Flow) -> Text:
    tls = flow.tls
    if tls is None:
        return Text("not a TLS connection", style="dim")
    fields = [
        ("client SNI", tls.sni),
        ("client ALPN", tls.client_alpn),
        ("client TLS version", tls.client_version),
        ("upstream TLS version", tls.upstream_version),
        ("upstream cipher", tls.upstream_cipher),
        ("upstream ALPN", tls.upstream_alpn),
        ("upstream certificate subject", tls.upstream_cert_subject),
        ("upstream certificate issuer", tls.upstream_cert_issuer),
    ]
    text = Text()
    for name, value in fields:
        text.append(f"{name:<30}", style="bold")
        text.append(f"{value if value is not None else '-'}\n")
    return text


def websocket_view(flow: Flow) -> Text:
    if not flow.websocket:
        return Text("no WebSocket messages", style="dim")
    text = Text()
    for msg in flow.websocket:
        when = time.strftime("%H:%M:%S", time.localtime(msg.timestamp))
        arrow = "→ server" if msg.from_client else "← client"
        text.append(f"{when}  {arrow}  ", style="dim")
        text.append(f"{OPCODES.get(msg.opcode, str(msg.opcode)):<8}", style="bold")
        text.append(f" {human_size(msg.size):>9}  ")
        preview = msg.head.decode("utf-8", "replace") if msg.opcode == 1 else msg.head.hex(" ")
        text.append(" ".join(preview.split())[:120])
        text.append("\n")
    return text


def error_view(flow: Flow) -> Text:
    err = flow.error
    if err is None:
        return Text("no error", style="dim")
    text = Text()
    text.append(err.exc_class, style="bold magenta")
    text.append(f"\n\n{err.message}\n\n")
    text.append("phase: ", style="bold")
    text.append(f"{err.phase}\n")
    if err.timestamp:
        text.append("at: ", style="bold")
        text.append(time.strftime("%H:%M:%S", time.localtime(err.timestamp)))
        text.append(f" (+{duration_text(err.timestamp - flow.timings.start)})\n")
    return text


def initial_tab(flow: Flow) -> str:
    if flow.response is not None:
        return "response"
    return "error" if flow.error is not None else "request"


class FlowDetailScreen(Screen):
    """Everything recorded of one exchange."""

    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("tab", "next_tab", "Next tab", priority=True),
        Binding("shift+tab", "previous_tab", "Previous tab", show=False, priority=True),
        Binding("v", "cycle_viewer", "Viewer"),
        Binding("slash", "find", "Find", key_display="/"),
        Binding("n", "find_next", "Next match", show=False),
        Binding("N", "find_previous", "Previous match", show=False),
        Binding("r", "replay", "Replay"),
        Binding("e", "edit", "Edit held", show=False),
        Binding("a", "resume", "Resume", show=False),
        Binding("x", "kill", "Kill", show=False),
        Binding("m", "mark", "Mark", show=False),
        Binding("w", "export", "Export"),
    ]

    app: InspectorApp

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
        self.query_one(HeaderBar).counts = self.app.counts
        self.reload()
        flow = self.flow
        if flow is not None:
            initial = (
                "response" if flow.response is not None else "error" if flow.error else "request"
            )
            self.query_one(TabbedContent).active = initial

    # --- content --------------------------------------------------------------------------

    def _state(self) -> tuple[object, ...]:
        row = self.app.index.rows.get(self.flow_id)
        if row is None:
            return ()
        return (row.finished, row.held, row.status, row.error, row.marked)

    def reload(self) -> None:
        self.flow = self.app.load_flow(self.flow_id)
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

    def _show_summary(self, flow: Flow) -> None:
        text = Text()
        if flow.id in self.app.held_ids:
            text.append(" ⏸ HELD ", style="bold black on yellow")
            text.append("  e edit · a resume · x kill   ", style="yellow")
        if flow.marked:
            text.append("● ", style="bold magenta")
        text.append(flow_line(flow))
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
        self.query_one(HeaderBar).counts = self.app.counts
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
        i = TABS.index(tabs.active) if tabs.active in TABS else 0
        tabs.active = TABS[(i + step) % len(TABS)]

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
        if self._body_part() is None:
            return
        slot = self.query_one("#prompt", Vertical)
        slot.remove_children()
        history = self.app.histories.setdefault("find", [])
        slot.mount(FilterBar("find", history, value=self._find))
        slot.display = True

    def _close_prompt(self) -> None:
        slot = self.query_one("#prompt", Vertical)
        slot.remove_children()
        slot.display = False

    @on(FilterBar.Changed)
    def _find_live(self, message: FilterBar.Changed) -> None:
        if type(message) is FilterBar.Changed:
            self._find = message.value
            self._find_in_body(again=False)

    @on(FilterBar.Submitted)
    def _find_submitted(self, message: FilterBar.Submitted) -> None:
        self._find = message.value
        self._close_prompt()
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
        if self.flow_id not in self.app.held_ids:
            self.notify("this flow is not held", severity="warning")
            return False
        return True

    def action_edit(self) -> None:
        from inspector.tui.screens.intercept_editor import open_editor

        if self._held():
            open_editor(self.app, self.flow_id)

    def action_resume(self) -> None:
        if self._held():
            self.app.resume([self.flow_id])
            self.reload()

    def action_kill(self) -> None:
        if self._held():
            self.app.kill([self.flow_id])
            self.reload()

    def action_mark(self) -> None:
        row = self.app.index.rows.get(self.flow_id)
        if row is not None:
            self.app.set_marked([self.flow_id], not row.marked)

    def action_export(self) -> None:
        from inspector.tui.screens.export import ExportScreen

        self.app.push_screen(ExportScreen([self.flow_id]))
