"""The help screen: every key, generated from the BINDINGS, and the filter language."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from inspector.filters import HELP as FILTER_HELP
from inspector.tui.keys import ROW_LEGEND, SECTIONS, key_names


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
    parts: list[Table | Text] = []
    for title, bindings in SECTIONS:
        parts += [bindings_table(title, bindings), Text()]
    legend = Table(title="Row markers", title_justify="left", title_style="bold", box=None)
    legend.add_column("shown", style="bold cyan", min_width=12)
    legend.add_column("meaning")
    for shown, meaning in ROW_LEGEND:
        legend.add_row(shown, meaning)
    parts += [legend, Text()]
    parts += [Text("Filters (f, i, --intercept)", style="bold"), Text(FILTER_HELP)]
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    """Keys of every screen, and the filter language."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", show=False)]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "http-inspector keys"
            body.border_subtitle = "esc closes"
            yield Static(help_renderable())

    def action_close(self) -> None:
        self.dismiss(None)
