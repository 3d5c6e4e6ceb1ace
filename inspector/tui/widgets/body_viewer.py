"""A message body shown through one of the content viewers, with notes and find."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static, TextArea
from textual.widgets.text_area import Selection

from inspector.content import VIEWER_TITLES, View


def offset_to_location(text: str, offset: int) -> tuple[int, int]:
    """A character offset in ``text`` as TextArea's (row, column)."""
    row = text.count("\n", 0, offset)
    return row, offset - (text.rfind("\n", 0, offset) + 1)


class BodyViewer(Vertical):
    """Notes (viewer, decoding, truncation) above a read-only, searchable text area."""

    DEFAULT_CSS = """
    BodyViewer { height: 1fr; }
    BodyViewer > .body-viewer--notes { color: $text-muted; height: auto; padding: 0 1; }
    BodyViewer > .body-viewer--notes.-warning { color: $warning; }
    BodyViewer > TextArea { height: 1fr; border: none; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text = ""
        self._last_find: tuple[str, int] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", classes="body-viewer--notes")
        yield TextArea(
            "",
            read_only=True,
            soft_wrap=True,
            show_line_numbers=False,
            highlight_cursor_line=False,
        )

    def show(self, view: View, notices: tuple[str, ...] = ()) -> None:
        """Display ``view``; ``notices`` (e.g. truncation) come first and are highlighted."""
        lines = [*notices, f"viewer: {VIEWER_TITLES[view.viewer]} (v to change)", *view.notes]
        notes = self.query_one(".body-viewer--notes", Static)
        notes.update("\n".join(lines))
        notes.set_class(bool(notices), "-warning")
        self.text = view.text
        self._last_find = None
        area = self.query_one(TextArea)
        area.load_text(view.text)
        area.scroll_home(animate=False)

    def find(self, query: str, *, again: bool = False, backwards: bool = False) -> bool:
        """Select the next (or previous) match of ``query``, case-insensitive; False if none."""
        if not query:
            return False
        haystack, needle = self.text.lower(), query.lower()
        start = 0
        if again and self._last_find is not None and self._last_find[0] == needle:
            prev = self._last_find[1]
            start = prev + 1
        if backwards:
            end = self._last_find[1] if self._last_find else len(haystack)
            pos = haystack.rfind(needle, 0, max(0, end))
            if pos < 0:
                pos = haystack.rfind(needle)
        else:
            pos = haystack.find(needle, start)
            if pos < 0:
                pos = haystack.find(needle)  # wrap around
        if pos < 0:
            return False
        self._last_find = (needle, pos)
        area = self.query_one(TextArea)
        area.selection = Selection(
            offset_to_location(self.text, pos), offset_to_location(self.text, pos + len(needle))
        )
        area.scroll_cursor_visible(center=True, animate=False)
        return True
