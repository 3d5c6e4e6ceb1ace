"""A message body shown through one of the content viewers, with notes and find."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static, TextArea
from textual.widgets.text_area import Selection

from inspector.content import VIEWER_TITLES, View
from inspector.tui.colour import COLOUR_LIMIT, LineSpans, line_spans


def offset_to_location(text: str, offset: int) -> tuple[int, int]:
    """A character offset in ``text`` as TextArea's (row, column)."""
    row = text.count("\n", 0, offset)
    return row, offset - (text.rfind("\n", 0, offset) + 1)


WRAP_LIMIT = 256 * 1024  # characters up to which long lines wrap; beyond, they scroll
# Characters shown: TextArea measures every line on each layout (seconds for the 6 MiB
# of a pretty-printed 4 MiB JSON body), and nobody scrolls through more; b saves it all.
SHOW_LIMIT = 512 * 1024


def shown_part(text: str, limit: int = SHOW_LIMIT) -> str:
    """``text`` up to ``limit`` characters, cut at a line end."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    return text[: cut if cut > 0 else limit]


class ColouredTextArea(TextArea):
    """A TextArea that colours its lines from ``spans`` (``get_line`` is TextArea's
    documented hook for extra styling; no tree-sitter needed)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.spans: LineSpans = {}
        self.match_cursor_bracket = False  # each cursor move would search the whole body

    def set_spans(self, spans: LineSpans) -> None:
        self.spans = spans
        self.notify_style_update()  # drops the rendered lines cached without colours
        self.refresh()

    def get_line(self, line_index: int) -> Text:
        line = super().get_line(line_index)
        for start, end, style in self.spans.get(line_index, ()):
            line.stylize(style, start, end)
        return line


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
        self.colouring = False  # a worker is colouring the text
        self._last_find: tuple[str, int] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", classes="body-viewer--notes")
        yield ColouredTextArea(
            "",
            read_only=True,
            soft_wrap=True,
            show_line_numbers=False,
            highlight_cursor_line=False,
        )

    def show(self, view: View, notices: tuple[str, ...] = ()) -> None:
        """Display ``view``; ``notices`` (e.g. truncation) come first and are highlighted."""
        lines = [*notices, f"viewer: {VIEWER_TITLES[view.viewer]} (m to change)", *view.notes]
        if view.syntax and len(view.text) > COLOUR_LIMIT:
            lines.append(f"colours for the first {COLOUR_LIMIT // 1024} KiB only")
        text = shown_part(view.text)
        if len(text) < len(view.text):
            lines.append(
                f"showing the first {len(text) // 1024} KiB of {len(view.text) // 1024} KiB"
                " (b saves the whole body)"
            )
        elif len(text) > WRAP_LIMIT:
            lines.append("long lines scroll sideways (no wrapping above 256 KiB)")
        notes = self.query_one(".body-viewer--notes", Static)
        notes.update("\n".join(lines))
        notes.set_class(bool(notices), "-warning")
        self.text = text
        self._last_find = None
        area = self.query_one(ColouredTextArea)
        area.spans = {}
        # Soft wrapping re-measures every line on each layout (seconds for a 4 MiB body).
        area.soft_wrap = len(text) <= WRAP_LIMIT
        area.load_text(text)
        area.scroll_home(animate=False)
        self.colouring = view.syntax is not None
        if view.syntax:
            self._colour(text, view.syntax)

    @work(thread=True, exclusive=True, group="colour")
    def _colour(self, text: str, language: str) -> None:
        """Lex in a thread (up to a few hundred ms); the text shows plain meanwhile."""
        spans = line_spans(text, language)
        self.app.call_from_thread(self._coloured, text, spans)

    def _coloured(self, text: str, spans: LineSpans) -> None:
        if text is self.text:  # not replaced by another view meanwhile
            self.query_one(ColouredTextArea).set_spans(spans)
        self.colouring = False

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
