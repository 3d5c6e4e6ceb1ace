"""The events pane: a live log of exception events; enter jumps to the flow."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from inspector.tui.messages import JumpToFlow
from inspector.tui.state import MAX_EVENTS, ErrorEvent


def event_text(event: ErrorEvent) -> Text:
    """``12:00:01  connect  ConnectionRefusedError: ...  GET http://...``."""
    when = time.strftime("%H:%M:%S", time.localtime(event.timestamp))
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{when}  ", style="dim")
    text.append(f"{event.phase:<11} ", style="bold")
    text.append(event.exc_class, style="bold magenta")
    text.append(f": {event.message}  ")
    text.append(f"{event.method} {event.url}", style="dim")
    return text


class EventsPane(OptionList):
    """Exception events, newest last; selecting one jumps to its flow."""

    DEFAULT_CSS = """
    EventsPane { height: 10; border-top: solid $error; border-title-color: $error; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Exception events"
        self._flow_ids: list[str] = []
        self._last_seq = -1

    def sync(self, events: Sequence[ErrorEvent]) -> None:
        """Append the events newer than the last one shown (a batch at a time)."""
        if not events or events[-1].seq <= self._last_seq:
            return
        new: list[ErrorEvent] = []
        for event in reversed(events):  # newest first: stop at the first one shown
            if event.seq <= self._last_seq:
                break
            new.append(event)
        new.reverse()
        self._last_seq = new[-1].seq
        at_end = self.highlighted is None or self.highlighted >= self.option_count - 1
        self.add_options([Option(event_text(e)) for e in new])
        self._flow_ids.extend(e.flow_id for e in new)
        excess = self.option_count - MAX_EVENTS
        if excess > 0:
            for _ in range(excess):
                self.remove_option_at_index(0)
            del self._flow_ids[:excess]
        if at_end:
            self.highlighted = self.option_count - 1

    @property
    def flow_ids(self) -> list[str]:
        return list(self._flow_ids)

    @on(OptionList.OptionSelected)
    def _jump(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(JumpToFlow(self._flow_ids[event.option_index]))
