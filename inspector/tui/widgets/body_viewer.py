"""A message body shown through one of the content viewers, with notes and find."""

from __future__ import annotations

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static, TextArea
from textual.widgets.text_area import Selection

from inspector import images
from inspector.content import VIEWER_TITLES, View
from inspector.tui.colour import COLOUR_LIMIT, LineSpans, line_spans
from inspector.tui.image_view import half_blocks


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


MIN_PREVIEW_LINES = 8  # a preview drawn before layout, or in a very short pane
PARTIAL = "no preview: only the start of this image was recorded (--body-limit)"


class BodyViewer(Vertical):
    """Notes (viewer, decoding, truncation) above a read-only, searchable text area, or,
    for the image viewer, the image's description and a preview drawn in half blocks."""

    DEFAULT_CSS = """
    BodyViewer { height: 1fr; }
    BodyViewer > .body-viewer--notes { color: $text-muted; height: auto; padding: 0 1; }
    BodyViewer > .body-viewer--notes.-warning { color: $warning; }
    BodyViewer > TextArea { height: 1fr; border: none; padding: 0 1; }
    BodyViewer > .body-viewer--image { height: 1fr; padding: 0 1; display: none; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text = ""
        self.colouring = False  # a worker is colouring the text
        self.previewing = False  # a worker is decoding or drawing an image preview
        self._last_find: tuple[str, int] | None = None
        self._image: bytes | None = None  # the image viewer's body
        self._summary = ""
        self._raster: images.Raster | None = None  # decoded once, redrawn on a resize
        self._drawn_for: tuple[int, int] | None = None
        self._drawing = 0  # the newest preview asked for: older workers' results are dropped

    def compose(self) -> ComposeResult:
        yield Static("", classes="body-viewer--notes")
        yield ColouredTextArea(
            "",
            read_only=True,
            soft_wrap=True,
            show_line_numbers=False,
            highlight_cursor_line=False,
        )
        with VerticalScroll(classes="body-viewer--image"):
            yield Static("", classes="body-viewer--preview")

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
        self._last_find = None
        area = self.query_one(ColouredTextArea)
        area.display = view.image is None
        self.query_one(".body-viewer--image").display = view.image is not None
        self._image, self._raster, self._drawn_for = view.image, None, None
        if view.image is not None:
            self._show_image(view, partial=bool(notices))
            return
        self.previewing = False
        self.text = text
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

    # --- the image preview ----------------------------------------------------------------

    def _show_image(self, view: View, *, partial: bool) -> None:
        self.text = ""  # nothing to find in a picture
        self._summary = view.text
        if partial:  # notices say the record was capped: the image's end is missing
            self._image, self.previewing = None, False
            self._set_preview(Text(PARTIAL, style="italic"))
            return
        self._set_preview(Text("decoding the preview…", style="dim"))
        self.previewing = True  # from now: the drawing waits for the layout
        self.call_after_refresh(self._draw_preview)

    def _set_preview(self, preview: Text) -> None:
        text = Text(self._summary)
        text.append("\n\n")
        text.append_text(preview)
        self.query_one(".body-viewer--preview", Static).update(text)

    def _preview_box(self) -> tuple[int, int]:
        """Cells across and lines down that the preview may fill (what is on screen)."""
        pane = self.query_one(".body-viewer--image")
        width = pane.content_size.width
        lines = pane.content_size.height - self._summary.count("\n") - 3
        return width, max(lines, MIN_PREVIEW_LINES)

    def _draw_preview(self) -> None:
        """Decode (once) and draw the image for the space there is, in a worker."""
        if self._image is None:
            return
        width, lines = self._preview_box()
        if width <= 0 or (width, lines) == self._drawn_for:
            self.previewing = self.previewing and width > 0
            return  # not laid out yet (a hidden tab): on_resize draws it
        self._drawn_for = (width, lines)
        self.previewing = True
        self._drawing += 1
        self._preview(self._drawing, self._image, self._raster, width, lines)

    def on_resize(self, event: events.Resize) -> None:
        self._draw_preview()

    @work(thread=True, exclusive=True, group="preview")
    def _preview(
        self, drawing: int, data: bytes, raster: images.Raster | None, width: int, lines: int
    ) -> None:
        try:
            raster = raster or images.decode(data)
            preview = half_blocks(images.thumbnail(raster, width, 2 * lines))
        except images.NoPreview as e:
            preview = Text(str(e), style="italic")
        except images.ImageError as e:
            preview = Text(str(e), style="bold red")
        self.app.call_from_thread(self._previewed, drawing, data, raster, preview)

    def _previewed(
        self, drawing: int, data: bytes, raster: images.Raster | None, preview: Text
    ) -> None:
        if data is not self._image:
            return  # another body is shown now
        self._raster = raster
        if drawing == self._drawing:  # not redrawn for another size meanwhile
            self._set_preview(preview)
            self.previewing = False

    # --- find -----------------------------------------------------------------------------

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
