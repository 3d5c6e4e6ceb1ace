"""A one-line prompt with history and live validation: filter, intercept, search, find."""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Static

Validator = Callable[[str], str | None]  # returns an error message, or None when fine

PROMPTS = {
    "filter": "Filter",
    "intercept": "Intercept",
    "search": "Search all",
    "find": "Find in body",
    "save": "Save flows to session file",
    "body": "Save body to file",
}
LIVE_DELAY = 0.25  # seconds of typing pause before a live change is announced


class HistoryInput(Input):
    """An Input whose up/down keys walk a shared history list."""

    BINDINGS = [
        Binding("up", "older", "Older", show=False),
        Binding("down", "newer", "Newer", show=False),
    ]

    def __init__(self, history: list[str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.history = history
        self._pos = len(history)

    def action_older(self) -> None:
        if self._pos > 0:
            self._pos -= 1
            self.value = self.history[self._pos]
            self.cursor_position = len(self.value)

    def action_newer(self) -> None:
        if self._pos < len(self.history) - 1:
            self._pos += 1
            self.value = self.history[self._pos]
        else:
            self._pos = len(self.history)
            self.value = ""
        self.cursor_position = len(self.value)


class FilterBar(Vertical):
    """Prompt + input + error line. Posts Changed (valid, after a pause), Submitted, Cancelled."""

    DEFAULT_CSS = """
    FilterBar { height: auto; background: $boost; padding: 0 1; }
    FilterBar > HistoryInput { border: tall $accent; }
    FilterBar > HistoryInput.-invalid { border: tall $error; }
    FilterBar > .filter-bar--error { color: $error; height: auto; }
    FilterBar > .filter-bar--hint { color: $text-muted; height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    class Changed(Message):
        def __init__(self, bar: FilterBar, purpose: str, value: str) -> None:
            super().__init__()
            self.bar, self.purpose, self.value = bar, purpose, value

    class Submitted(Changed):
        pass

    class Cancelled(Message):
        def __init__(self, bar: FilterBar, purpose: str) -> None:
            super().__init__()
            self.bar, self.purpose = bar, purpose

    def __init__(
        self,
        purpose: str,
        history: list[str],
        *,
        value: str = "",
        validate: Validator | None = None,
        hint: str = "",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.purpose = purpose
        self.history = history
        self.validator = validate
        self.hint = hint
        self._initial = value
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield HistoryInput(
            self.history,
            value=self._initial,
            placeholder=f"{PROMPTS.get(self.purpose, self.purpose)}: type and press enter",
        )
        yield Static("", classes="filter-bar--error")
        if self.hint:
            yield Static(self.hint, classes="filter-bar--hint")

    def on_mount(self) -> None:
        self.border_title = PROMPTS.get(self.purpose, self.purpose)
        self.query_one(HistoryInput).focus()

    def error_for(self, value: str) -> str | None:
        if not value.strip() or self.validator is None:
            return None
        return self.validator(value)

    def _show_error(self, error: str | None) -> None:
        self.query_one(".filter-bar--error", Static).update(error or "")
        self.query_one(HistoryInput).set_class(error is not None, "-invalid")

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        error = self.error_for(event.value)
        self._show_error(error)
        if self._timer is not None:
            self._timer.stop()
        if error is None:
            value = event.value
            self._timer = self.set_timer(
                LIVE_DELAY, lambda: self.post_message(self.Changed(self, self.purpose, value))
            )

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        error = self.error_for(value)
        if error is not None:
            self._show_error(error)
            return
        if self._timer is not None:
            self._timer.stop()
        if value and (not self.history or self.history[-1] != value):
            self.history.append(value)
        self.post_message(self.Submitted(self, self.purpose, value))

    def action_cancel(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.post_message(self.Cancelled(self, self.purpose))
