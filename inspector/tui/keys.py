"""Every key of the UI, screen by screen: the screens bind these, the help screen and the
README list them (one table, so the three cannot disagree)."""

from __future__ import annotations

from textual.binding import Binding, BindingType

GLOBAL_KEYS: list[BindingType] = [
    Binding("question_mark", "help", "Help", key_display="?"),
    Binding("ctrl+c", "request_quit", "Quit", show=False, priority=True),
]
PALETTE = Binding("ctrl+p", "command_palette", "Command palette (every action by name)")

LIST_KEYS: list[BindingType] = [
    Binding("enter", "open", "Details"),
    Binding("f", "filter", "Filter"),
    Binding("t", "toggle_filter", "Filter on/off", show=False),
    Binding("slash", "search", "Search", key_display="/"),
    Binding("i", "intercept", "Intercept"),
    Binding("e", "edit", "Edit held", show=False),
    Binding("a", "resume", "Resume", show=False),
    Binding("A", "resume_all", "Resume all", show=False),
    Binding("x", "kill", "Kill", show=False),
    Binding("r", "replay", "Replay"),
    Binding("m", "mark", "Mark", show=False),
    Binding("M", "unmark_all", "Unmark all", show=False),
    Binding("d", "delete", "Delete", show=False),
    Binding("z", "clear", "Clear", show=False),
    Binding("w", "export", "Export", show=False),
    Binding("E", "toggle_events", "Events"),
    Binding("o", "sort", "Sort", show=False),
    Binding("O", "reverse", "Reverse order", show=False),
    Binding("G", "follow", "Follow newest", show=False),
    Binding("q", "app.request_quit", "Quit"),
]

TABLE_KEYS: list[BindingType] = [
    Binding("up,k", "cursor_up", "Up", show=False),
    Binding("down,j", "cursor_down", "Down", show=False),
    Binding("pageup", "page_up", "Page up", show=False),
    Binding("pagedown,space", "page_down", "Page down", show=False),
    Binding("home,g", "first", "First flow", show=False),
    Binding("end,G", "last", "Last flow (follow)", show=False),
    Binding("F", "toggle_follow", "Follow", show=False),
    Binding("enter", "select", "Details", show=False),
]

DETAIL_KEYS: list[BindingType] = [
    Binding("escape,q", "back", "Back"),
    Binding("tab", "next_tab", "Next tab", priority=True),
    Binding("shift+tab", "previous_tab", "Previous tab", show=False, priority=True),
    Binding("v", "cycle_viewer", "Viewer"),
    Binding("slash", "find", "Find", key_display="/"),
    Binding("n", "find_next", "Next match", show=False),
    Binding("N", "find_previous", "Previous match", show=False),
    Binding("r", "replay", "Replay"),
    Binding("e", "edit", "Edit held", show=False),
    Binding("a", "resume", "Resume", show=False),
    Binding("x", "kill", "Kill", show=False),
    Binding("m", "mark", "Mark", show=False),
    Binding("w", "export", "Export"),
]

EDITOR_KEYS: list[BindingType] = [
    Binding("ctrl+s", "save", "Apply"),
    Binding("ctrl+r", "save_resume", "Apply and resume"),
    Binding("escape", "app.pop_screen", "Discard"),
]

EXPORT_KEYS: list[BindingType] = [
    Binding("escape", "dismiss_export", "Cancel"),
    Binding("ctrl+y", "copy", "Copy to clipboard"),
    Binding("ctrl+s", "save", "Save to file"),
]

SECTIONS: list[tuple[str, list[BindingType]]] = [
    ("Flow list", [*LIST_KEYS, *TABLE_KEYS]),
    ("Flow detail", DETAIL_KEYS),
    ("Everywhere", [*GLOBAL_KEYS, PALETTE]),
    ("Intercept editor", EDITOR_KEYS),
    ("Export dialog", EXPORT_KEYS),
]
