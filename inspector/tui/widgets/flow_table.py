"""The flow list: a line-API table that renders only the rows on screen.

Rows come from a ``FlowIndex`` (metadata only), so drawing costs the same with
ten flows or a million. Follow mode keeps the cursor on the newest flow until
the user moves up, and resumes when the cursor reaches the bottom again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from inspector.render import duration_text, human_size, status_text
from inspector.tui import keys
from inspector.tui.flow_index import FlowIndex
from inspector.tui.rows import FlowRow


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # also the sort key in rows.SORT_KEYS ("" for the marker column)
    title: str
    width: int  # preferred width; 0: the path, which takes what is left
    minimum: int = 0  # narrowest it may get on a small terminal (0: cannot shrink)
    right: bool = False


COLUMNS = (
    Column("", "", 3),
    Column("time", "Time", 8),
    Column("method", "Method", 8),
    Column("version", "HTTP", 4),
    Column("host", "Host", 29, minimum=16),
    Column("path", "Path", 0),
    Column("status", "Status", 26, minimum=16),
    Column("type", "Type", 18, minimum=10),
    Column("size", "Size", 8, right=True),
    Column("duration", "Duration", 8, right=True),
)
MIN_PATH_WIDTH = 24
# Rendered rows kept for reuse (two screens' worth: each kept Strip also keeps the
# Strips Textual derived from it, which every full collection walks). A repaint that
# shows a row unchanged hands Textual the same Strip, whose own caches then answer its
# cropping and styling: no new objects, so no new cyclic garbage (Strips reference
# themselves).
LINE_CACHE_SIZE = 128
# On a narrow terminal these give up width first, then drop out (in this order).
SHRINK_ORDER = ("type", "host", "status")
DROP_ORDER = ("type", "version", "time", "duration")


def column_widths(width: int) -> tuple[int, ...]:
    """Each column's width for a table ``width`` cells wide (0: the column is hidden)."""
    widths = {c.key: c.width for c in COLUMNS}

    def path_width() -> int:
        shown = [k for k, w in widths.items() if w and k != "path"]
        return width - 1 - sum(widths[k] + 1 for k in shown) - 1

    for key in SHRINK_ORDER:
        column = next(c for c in COLUMNS if c.key == key)
        lack = MIN_PATH_WIDTH - path_width()
        if lack > 0:
            widths[key] = max(column.minimum, widths[key] - lack)
    for key in DROP_ORDER:
        if path_width() < MIN_PATH_WIDTH:
            widths[key] = 0
    widths["path"] = max(8, path_width())
    return tuple(widths[c.key] for c in COLUMNS)


STATUS_STYLES = {
    1: Style(color="blue"),
    2: Style(color="green"),
    3: Style(color="cyan"),
    4: Style(color="yellow"),
    5: Style(color="red", bold=True),
}
ERROR_STYLE = Style(color="magenta", bold=True)
HELD_STYLE = Style(color="yellow", bold=True, reverse=True)
PENDING_STYLE = Style(dim=True)
METHOD_STYLE = Style(bold=True)
MARK_STYLE = Style(color="magenta", bold=True)
REPLAY_STYLE = Style(color="cyan", bold=True)
MODIFIED_STYLE = Style(color="bright_cyan", bold=True)
VERSION_STYLE = Style(color="magenta")


def fit(text: str, width: int, right: bool = False) -> str:
    """Pad or cut ``text`` to exactly ``width`` cells, marking a cut with an ellipsis."""
    if width <= 0:
        return ""
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


def status_cell(row: FlowRow) -> tuple[str, Style]:
    if row.held:
        return "⏸ held", HELD_STYLE
    if row.error is not None:
        return row.error, ERROR_STYLE
    if row.status is None:
        return "…", PENDING_STYLE
    text = status_text(row.status, row.reason)
    if row.grpc is not None:  # the HTTP status says little of a gRPC call: add its own
        text = f"{text} grpc {row.grpc}".rstrip()
    return text, STATUS_STYLES.get(row.status // 100, Style())


def marker_cell(row: FlowRow) -> tuple[str, Style]:
    text = ""  # glyphs in a fixed order: see keys.ROW_LEGEND
    if row.marked:
        text += keys.MARK_GLYPH
    if row.modified:
        text += keys.MODIFIED_GLYPH
    if row.replay_of is not None:
        text += keys.REPLAY_GLYPH
    if not text:
        return "", Style()
    style = MARK_STYLE if row.marked else MODIFIED_STYLE if row.modified else REPLAY_STYLE
    return text, style


def row_state(row: FlowRow) -> tuple[object, ...]:
    """What can change in a row's look after it was first drawn."""
    return (
        row.status,
        row.reason,
        row.error,
        row.content_type,
        row.size,
        row.duration,
        row.marked,
        row.held,
        row.replay_of,
        row.modified,
        row.websocket,
        row.grpc,
    )


def cell(row: FlowRow, key: str) -> tuple[str, Style]:
    """The text and style of one cell."""
    if key == "":
        return marker_cell(row)
    if key == "status":
        return status_cell(row)
    if key == "time":
        return time.strftime("%H:%M:%S", time.localtime(row.start)), PENDING_STYLE
    if key == "method":
        return row.method, METHOD_STYLE
    if key == "host":
        if row.method == "CONNECT":
            return row.authority, Style()
        return f"{row.shown_scheme}://{row.authority}", Style()
    if key == "version":
        return row.version, VERSION_STYLE
    if key == "path":
        return row.path, Style()
    if key == "type":
        return row.content_type, PENDING_STYLE
    if key == "size":
        return ("" if row.size is None else human_size(row.size)), Style()
    if key == "duration":
        return ("" if row.duration is None else duration_text(row.duration)), PENDING_STYLE
    raise KeyError(key)


class FlowTable(ScrollView, can_focus=True):
    """One row per flow; the first line is a fixed header."""

    COMPONENT_CLASSES = {"flow-table--header", "flow-table--cursor", "flow-table--sorted"}
    DEFAULT_CSS = """
    FlowTable { background: $surface; scrollbar-gutter: stable; }
    FlowTable > .flow-table--header { background: $panel; color: $text; text-style: bold; }
    FlowTable > .flow-table--sorted { color: $accent; text-style: bold underline; }
    FlowTable > .flow-table--cursor { background: $accent 35%; }
    FlowTable:focus > .flow-table--cursor { background: $accent 60%; }
    """
    BINDINGS = keys.TABLE_KEYS

    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)
    follow: reactive[bool] = reactive(True)

    class Selected(Message):
        """The user opened a flow (enter or double click)."""

        def __init__(self, flow_id: str) -> None:
            super().__init__()
            self.flow_id = flow_id

    class SortRequested(Message):
        """The user clicked a column title."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, index: FlowIndex, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index = index
        self._cursor_id: str | None = None
        self._widths: tuple[int, ...] = ()
        self._widths_for = -1
        self._lines: dict[tuple[object, ...], Strip] = {}  # see LINE_CACHE_SIZE

    # --- data -----------------------------------------------------------------------------

    @property
    def cursor_row(self) -> FlowRow | None:
        return self.index.row_at(self.cursor)

    def rows_changed(self, *, reordered: bool = False) -> None:
        """Call after the index changed: re-size, keep the cursor on its flow, follow."""
        count = len(self.index)
        self._set_virtual_size(Size(self.size.width, count + 1))
        if self.follow:
            self.cursor = max(0, count - 1)
        elif reordered and self._cursor_id is not None and not self._cursor_stays():
            pos = self.index.position(self._cursor_id)
            self.cursor = pos if pos is not None else min(self.cursor, max(0, count - 1))
        elif self.cursor >= count:
            self.cursor = max(0, count - 1)
        self.refresh()

    def _cursor_stays(self) -> bool:
        """True when the cursor's flow is still on its line (finding it elsewhere scans
        the list)."""
        row = self.index.row_at(self.cursor)
        return row is not None and row.id == self._cursor_id

    def _set_virtual_size(self, size: Size) -> None:
        """Resize the scrollable area; without laying the screen out again when only the
        scrollbar's thumb moves (the common case: rows arriving in a long list)."""
        old = self.virtual_size
        if size == old:
            return
        visible = self.scrollable_content_region.height
        if (
            size.width == old.width
            and self.show_vertical_scrollbar
            and min(size.height, old.height) > visible
        ):
            # What Textual itself does when a size changes without a layout.
            self.set_reactive(FlowTable.virtual_size, size)
            self._scroll_update(size)
        else:
            self.virtual_size = size

    def move_to(self, flow_id: str) -> bool:
        """Put the cursor on ``flow_id`` (stops following); False when it is not in the view."""
        pos = self.index.position(flow_id)
        if pos is None:
            return False
        self.follow = pos == len(self.index) - 1
        self.cursor = pos
        return True

    # --- drawing --------------------------------------------------------------------------

    def _column_widths(self, width: int) -> tuple[int, ...]:
        if width != self._widths_for:
            self._widths = column_widths(width)
            self._widths_for = width
        return self._widths

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        widths = self._column_widths(width)
        if y == 0:
            return self._header_strip(widths, width)
        index = int(self.scroll_y) + y - 1
        row = self.index.row_at(index)
        base = self.rich_style
        if row is None:
            return self._cached(("blank", width, base), lambda: Strip.blank(width, base))
        if index == self.cursor:
            base = base + self.get_component_rich_style("flow-table--cursor")
        key = (row.id, row_state(row), width, base)
        return self._cached(key, lambda: self._row_strip(row, widths, width, base))

    def _cached(self, key: tuple[object, ...], render: Callable[[], Strip]) -> Strip:
        strip = self._lines.get(key)
        if strip is None:
            if len(self._lines) >= LINE_CACHE_SIZE:
                self._lines.clear()
            strip = self._lines[key] = render()
        return strip

    def _row_strip(self, row: FlowRow, widths: tuple[int, ...], width: int, base: Style) -> Strip:
        segments = [Segment(" ", base)]
        for column, w in zip(COLUMNS, widths, strict=True):
            if not w:
                continue
            text, style = cell(row, column.key)
            segments.append(Segment(fit(text, w, column.right), base + style))
            segments.append(Segment(" ", base))
        return Strip(segments).crop_extend(0, width, base)

    def _header_strip(self, widths: tuple[int, ...], width: int) -> Strip:
        style = self.get_component_rich_style("flow-table--header")
        key = ("header", width, style, self.index.sort_key, self.index.sort_reverse)
        return self._cached(key, lambda: self._render_header(widths, width, style))

    def _render_header(self, widths: tuple[int, ...], width: int, style: Style) -> Strip:
        sorted_style = style + self.get_component_rich_style("flow-table--sorted")
        segments = [Segment(" ", style)]
        for column, w in zip(COLUMNS, widths, strict=True):
            if not w:
                continue
            title = column.title
            is_sorted = column.key and column.key == self.index.sort_key
            if is_sorted:
                title += " ▼" if self.index.sort_reverse else " ▲"
            segments.append(
                Segment(fit(title, w, column.right), sorted_style if is_sorted else style)
            )
            segments.append(Segment(" ", style))
        return Strip(segments).crop_extend(0, width, style)

    # --- cursor ---------------------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.index) - 1)) if len(self.index) else 0

    def watch_cursor(self, old: int, new: int) -> None:
        row = self.index.row_at(new)
        self._cursor_id = row.id if row is not None else None
        top = self.scroll_y
        self._scroll_cursor_into_view()
        if self.scroll_y == top and old != new:
            # Only the two rows whose highlight changed are drawn again (row i is virtual
            # line i + 1, under the header), not the whole screen of rows.
            self.refresh_line(old + 1)
            self.refresh_line(new + 1)
        else:
            self.refresh()

    def _scroll_cursor_into_view(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def _move(self, delta: int) -> None:
        self.cursor += delta
        self.follow = self.cursor >= len(self.index) - 1

    def action_cursor_up(self) -> None:
        self._move(-1)

    def action_cursor_down(self) -> None:
        self._move(1)

    def action_page_up(self) -> None:
        self._move(-max(1, self.scrollable_content_region.height - 2))

    def action_page_down(self) -> None:
        self._move(max(1, self.scrollable_content_region.height - 2))

    def action_first(self) -> None:
        self._move(-len(self.index))

    def action_last(self) -> None:
        self._move(len(self.index))

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        if self.follow:
            self.cursor = len(self.index) - 1

    def action_select(self) -> None:
        row = self.cursor_row
        if row is not None:
            self.post_message(self.Selected(row.id))

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.index) + 1)
        self._scroll_cursor_into_view()

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            self._sort_by_click(event.x)
            return
        self.cursor = int(self.scroll_y) + event.y - 1
        self.follow = self.cursor >= len(self.index) - 1
        if event.chain >= 2:
            self.action_select()

    def _sort_by_click(self, x: int) -> None:
        left = 1
        for column, w in zip(COLUMNS, self._widths, strict=False):
            if not w:
                continue
            if left <= x < left + w and column.key:
                self.post_message(self.SortRequested(column.key))
                return
            left += w + 1
