"""The help screen: every key, generated from the BINDINGS, and the filter language."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from inspector.filters import HELP as FILTER_HELP

PALETTE = Binding("ctrl+p", "command_palette", "Command palette (every action by name)")


PALETTE = Binding("ctrl+p", "command_palette", "Command palette (every action by name)")


def key_names(binding: Binding) -> str:
    if binding.key_display:
        return binding.key_display
    names = {"slash": "/", "question_mark": "?", "space": "space", "escape": "esc"}
    return ", ".join(names.get(k, k) for k in binding.key.split(","))


def bindings_table(title: str, bindings: list[BindingType]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=None, pad_edge=False)
    table.add_column("key", style="bold cyan", min_width=12)
    table.add_column("action")
    for binding in bindings:
        if isinstance(binding, Binding) and binding.description:
            table.add_row(key_names(binding), binding.description)
    return table


def help_renderable() -> Group:
    """The whole help text (also what the README shows)."""
    from inspector.tui.app import InspectorApp
    from inspector.tui.screens.export import ExportScreen
    from inspector.tui.screens.flow_detail import FlowDetailScreen
    from inspector.tui.screens.flow_list import FlowListScreen
    from inspector.tui.screens.intercept_editor import InterceptEditorScreen
    from inspector.tui.widgets.flow_table import FlowTable

    return Group(
        bindings_table("Flow list", [*FlowListScreen.BINDINGS, *FlowTable.BINDINGS]),
        Text(),
        bindings_table("Flow detail", FlowDetailScreen.BINDINGS),
        Text(),
        bindings_table("Everywhere", [*InspectorApp.BINDINGS, PALETTE]),
        Text(),
        bindings_table("Intercept editor", InterceptEditorScreen.BINDINGS),
        Text(),
        bindings_table("Export dialog", ExportScreen.BINDINGS),
        Text(),
        Text("Filters (f, i, --intercept)", style="bold"),
        Text(FILTER_HELP),
    )


class HelpScreen(ModalScreen[None]):
    """Keys of every screen, and the filter language."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", show=False)]

    def __init__(self, under: Screen | None = None) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "http-inspector keys"
            body.border_subtitle = "esc closes"
            yield Static(help_renderable())

    def action_close(self) -> None:
        self.dismiss(None)
