"""Every key of the UI, screen by screen: the screens bind these, the help screen and the
README list them (one table, so the three cannot disagree)."""

from __future__ import annotations

from textual.binding import Binding, BindingType

GLOBAL_KEYS: list[BindingType] = [
    Binding("question_mark", "help", "Help", key_display="?"),
    Binding("colon", "command_palette", "Command palette", key_display=":", show=False),
    Binding("Q", "quit", "Quit now (no question)", show=False),
    Binding("ctrl+c", "request_quit", "Quit", show=False, priority=True),
]
PALETTE = Binding("ctrl+p", "command_palette", "Command palette (every action by name)")

# mitmproxy 11's keys (its defaultkeys) where both programs have the action; ours beside.
LIST_KEYS: list[BindingType] = [
    Binding("enter", "open", "Details"),
    Binding("f", "filter", "Filter"),
    Binding("t", "toggle_filter", "Filter on/off", show=False),
    Binding("slash", "search", "Search", key_display="/"),
    Binding("i", "intercept", "Intercept"),
    Binding("e", "edit", "Edit (the held message, else the recorded request)", show=False),
    Binding("a", "resume", "Resume the held flow", show=False),
    Binding("A", "resume_all", "Resume every held flow", show=False),
    Binding("X", "kill", "Kill the held flow (its client gets an error)", show=False),
    Binding("r", "replay", "Replay"),
    Binding("D", "duplicate", "Duplicate (then e edits and r replays it)", show=False),
    Binding("V", "revert", "Revert your edits", show=False),
    Binding("m", "mark", "Mark", show=False),
    Binding("U", "unmark_all", "Unmark all", show=False),
    Binding("M", "marked_only", "Marked only on/off", show=False),
    Binding("d", "delete", "Delete the flow (or the marked ones)", show=False),
    Binding("z", "clear", "Clear: delete every shown flow", show=False),
    Binding("Z", "drop_hidden", "Delete the flows the filter hides", show=False),
    Binding("x", "export", "Export"),
    Binding("w", "save_flows", "Save the listed (or marked) flows to a session file", show=False),
    Binding("b", "save_body", "Save the response body to a file", show=False),
    Binding("c", "copy_url", "Copy URL", show=False),
    Binding("E", "toggle_events", "Events"),
    Binding("o", "sort", "Sort by a column (choose)", show=False),
    Binding("v", "reverse", "Reverse order", show=False),
    Binding("q", "app.request_quit", "Quit"),
]

TABLE_KEYS: list[BindingType] = [
    Binding("up,k", "cursor_up", "Up", show=False),
    Binding("down,j", "cursor_down", "Down", show=False),
    Binding("pageup,ctrl+b", "page_up", "Page up", show=False),
    Binding("pagedown,space,ctrl+f", "page_down", "Page down", show=False),
    Binding("home,g", "first", "First flow", show=False),
    Binding("end,G", "last", "Last flow", show=False),
    Binding("F", "toggle_follow", "Follow new flows on/off", show=False),
    Binding("enter", "select", "Details", show=False),
]

DETAIL_KEYS: list[BindingType] = [
    Binding("escape,q", "back", "Back"),
    Binding("tab", "next_tab", "Next tab", priority=True),
    Binding("shift+tab", "previous_tab", "Previous tab", show=False, priority=True),
    Binding("l", "next_tab", "Next tab", show=False),
    Binding("h", "previous_tab", "Previous tab", show=False),
    Binding("space", "next_flow", "Next flow", show=False),
    Binding("p", "previous_flow", "Previous flow", show=False),
    Binding("m", "cycle_viewer", "Body view mode"),
    Binding("slash", "find", "Find", key_display="/"),
    Binding("n", "find_next", "Next match", show=False),
    Binding("N", "find_previous", "Previous match", show=False),
    Binding("r", "replay", "Replay"),
    Binding("e", "edit", "Edit"),
    Binding("a", "resume", "Resume", show=False),
    Binding("X", "kill", "Kill held", show=False),
    Binding("D", "duplicate", "Duplicate", show=False),
    Binding("V", "revert", "Revert edits", show=False),
    Binding("x", "export", "Export"),
    Binding("b", "save_body", "Save the body on screen to a file", show=False),
    Binding("c", "copy_url", "Copy URL", show=False),
    Binding("C", "copy_header", "Copy a header's value (choose)", show=False),
]

EDITOR_KEYS: list[BindingType] = [
    Binding("ctrl+s", "save", "Apply"),
    Binding("ctrl+r", "save_resume", "Apply and resume"),
    Binding("escape", "app.pop_screen", "Discard"),
]

EXPORT_KEYS: list[BindingType] = [
    Binding("escape", "dismiss_export", "Cancel"),
    Binding("ctrl+y", "copy", "Copy (to the terminal clipboard, OSC 52)"),
    Binding("ctrl+s", "save", "Save to file"),
]

SECTIONS: list[tuple[str, list[BindingType]]] = [
    ("Flow list", [*LIST_KEYS, *(b for b in TABLE_KEYS if b.action != "select")]),
    ("Flow detail", DETAIL_KEYS),
    ("Everywhere", [*GLOBAL_KEYS, PALETTE]),
    ("Intercept editor", EDITOR_KEYS),
    ("Export dialog", EXPORT_KEYS),
]


# What a flow list row shows beside its columns (the help screen and README explain it).
MARK_GLYPH, MODIFIED_GLYPH, REPLAY_GLYPH = "●", "✎", "↻"
ROW_LEGEND: list[tuple[str, str]] = [
    (MARK_GLYPH, "marked (m)"),
    (MODIFIED_GLYPH, "changed by a rule, an addon or an edit in the UI (the header counts them)"),
    (REPLAY_GLYPH, "a replay (r) of another flow"),
    ("⏸ held", "held by the intercept filter (i): e edits, a resumes, X kills"),
    ("https://  http://", "the scheme before the host; wss:// and ws:// for a WebSocket"),
    ("HTTP 2, 1.0", "the HTTP version, where it is not 1.1"),
    ("grpc NAME", "a gRPC call: its gRPC status after the HTTP status"),
]

KEY_NAMES = {"slash": "/", "question_mark": "?", "colon": ":", "escape": "esc"}


def key_names(binding: Binding) -> str:
    """How a binding's keys are written for people: ``up, k``."""
    if binding.key_display:
        return binding.key_display
    return ", ".join(KEY_NAMES.get(k, k) for k in binding.key.split(","))


def markdown() -> str:
    """Every section's keys as Markdown tables (the README's key table is this text)."""
    out: list[str] = []
    for title, bindings in SECTIONS:
        out += [f"**{title}**", "", "| key | action |", "|---|---|"]
        for binding in bindings:
            if isinstance(binding, Binding) and binding.description:
                out.append(f"| `{key_names(binding)}` | {binding.description} |")
        out.append("")
    out += ["**Row markers**", "", "| shown | meaning |", "|---|---|"]
    out += [f"| `{shown}` | {meaning} |" for shown, meaning in ROW_LEGEND]
    out.append("")
    return "\n".join(out)
