"""Global search results: every flow whose URL, headers or text bodies contain the query."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from inspector.tui.messages import JumpToFlow
from inspector.tui.rows import FlowRow
from inspector.tui.widgets.flow_table import status_cell
from inspector.tui.widgets.status_bar import HeaderBar

if TYPE_CHECKING:
    from inspector.tui.app import InspectorApp


def result_text(row: FlowRow) -> Text:
    status, style = status_cell(row)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{row.method:<7} ", style="bold")
    text.append(f"{status:<24} ", style=style)
    text.append(row.url)
    return text


class SearchResultsScreen(Screen):
    """The flows ``Store.search`` finds for a query; enter opens one."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    app: InspectorApp

    def __init__(self, query: str) -> None:
        super().__init__()
        self.query_text = query
        self.result_ids: list[str] = []

    def compose(self) -> ComposeResult:
        yield HeaderBar(self.app.session.info)
        yield Static(f"Searching for {self.query_text!r}…", id="search-title")
        yield OptionList(id="results")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(HeaderBar).counts = self.app.state.counts
        self.query_one(OptionList).focus()
        self._search()

    @work(thread=True, exclusive=True)
    def _search(self) -> None:
        try:
            ids = self.app.session.search(self.query_text)
        except Exception as e:  # a bad FTS query: say so instead of failing the screen
            self.app.call_from_thread(self._show_error, str(e))
            return
        self.app.call_from_thread(self._show, ids)

    def _show_error(self, message: str) -> None:
        self.query_one("#search-title", Static).update(
            Text(f"Search {self.query_text!r} failed: {message}", style="bold red")
        )

    def _show(self, ids: list[str]) -> None:
        rows = self.app.state.index.rows_by_id(ids)
        self.result_ids = [i for i in ids if i in rows]
        n = len(self.result_ids)
        title = f"{n} flow{'s' if n != 1 else ''} match {self.query_text!r}"
        self.query_one("#search-title", Static).update(
            Text(title + ("  (enter opens one, esc goes back)" if n else ""), style="bold")
        )
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([Option(result_text(rows[i])) for i in self.result_ids])
        if n:
            options.highlighted = 0

    @on(OptionList.OptionSelected)
    def _open(self, event: OptionList.OptionSelected) -> None:
        self.post_message(JumpToFlow(self.result_ids[event.option_index]))
