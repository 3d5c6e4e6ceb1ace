"""Pick one of a few things (a sort column, a header to copy): a small modal list."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


class ChoiceScreen(ModalScreen[str | None]):
    """``title`` over one line per choice (label, value); dismisses with the value or None."""

    BINDINGS = [Binding("escape,q", "cancel", "Cancel")]

    def __init__(self, title: str, choices: list[tuple[str | Text, str]], current: int = 0) -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="choice-dialog"):
            yield Static(self.title_text, classes="question")
            yield OptionList(*(Option(label) for label, _ in self.choices), id="choices")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = min(self.current, max(0, len(self.choices) - 1))
        options.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[event.option_index][1])

    def action_cancel(self) -> None:
        self.dismiss(None)
