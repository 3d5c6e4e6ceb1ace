"""The detail's "Changes" tab: what rules, addons and the user's edits changed, original
against changed.

A flow changed by a rule, an addon (``inspector.changes``) or an edit in the UI
(``inspector.tui.edits``) keeps the request as the client sent it and the response as the
upstream sent it; this shows, in order, what changed it, then for each message its start
line, header and body differences (the one comparison of ``inspector.diff``, as
``replay --diff`` uses it).
"""

from __future__ import annotations

from rich.text import Text

from inspector.diff import body_differences, header_differences
from inspector.flow import Flow, FlowRequest, FlowResponse
from inspector.render import human_size, status_text
from inspector.tui.edits import UI_EDIT
from inspector.tui.views import message_preview

NOTHING = "No rule, addon or edit in the UI changed this flow."
UI_EDIT_NOTE = (
    "(a held message edited here went on as edited; a recorded flow's edit changes the"
    " record: r replays it, V reverts it)"
)


def changes_view(flow: Flow) -> Text:
    """What changed the flow, then request and response differences, coloured +/-."""
    if not flow.modified_by:
        return Text(NOTHING, style="dim")
    text = Text()
    text.append("Changed by, in order\n", style="bold")
    for number, label in enumerate(flow.modified_by, 1):
        text.append(f"  {number}. {label}\n", style="cyan")
    if UI_EDIT in flow.modified_by:
        text.append(f"  {UI_EDIT_NOTE}\n", style="dim")
    text.append("\nRequest", style="bold")
    text.append(": as the client sent it -> as it went upstream\n", style="dim")
    original = flow.original_request
    if original is None:
        text.append("  unchanged\n", style="dim")
    else:
        _start_line(text, original.method + " " + original.url, _request_line(flow.request))
        _differences(text, original, flow.request)
    text.append("\nResponse", style="bold")
    text.append(": as the upstream sent it -> as the client got it\n", style="dim")
    text.append_text(_response_part(flow))
    if any(m.modified for m in flow.websocket):
        text.append("\nWebSocket messages", style="bold")
        text.append(": as received -> as sent on\n", style="dim")
        text.append_text(_websocket_part(flow))
    return text


def _websocket_part(flow: Flow) -> Text:
    """Each message an addon changed or dropped: what was received, then what was sent."""
    text = Text()
    for msg in flow.websocket:
        if not msg.modified:
            continue
        arrow = "→ server" if msg.from_client else "← client"
        text.append(f"  {arrow}\n", style="dim")
        size = human_size(msg.original_size or 0)
        text.append(f"  - {size}  {message_preview(msg.opcode, msg.original_head)}\n", style="red")
        if msg.dropped:
            text.append("  + dropped: not sent on\n", style="green")
        else:
            after = f"{human_size(msg.size)}  {message_preview(msg.opcode, msg.head)}"
            text.append(f"  + {after}\n", style="green")
    return text


def _request_line(request: FlowRequest) -> str:
    return request.method + " " + request.url


def _response_part(flow: Flow) -> Text:
    text = Text()
    original, response = flow.original_response, flow.response
    if response is None:
        text.append("  none\n", style="dim")
    elif original is None and flow.timings.response_start is None:
        text.append("  made by a rule or an addon: the upstream was not asked\n", style="dim")
    elif original is None:
        text.append("  unchanged\n", style="dim")
    else:
        before = status_text(original.status_code, original.reason)
        _start_line(text, before, status_text(response.status_code, response.reason))
        _differences(text, original, response)
    return text


def _start_line(text: Text, before: str, after: str) -> None:
    if before != after:
        text.append(f"  - {before}\n", style="red")
        text.append(f"  + {after}\n", style="green")


def _differences(
    text: Text, original: FlowRequest | FlowResponse, now: FlowRequest | FlowResponse
) -> None:
    lines = header_differences(original, now, frozenset())  # type: ignore[arg-type]
    lines += body_differences(original, now)  # type: ignore[arg-type]
    if not lines:
        text.append("  same start line, headers and body\n", style="dim")
    for line in lines:
        style = "red" if " - " in line[:9] or line.startswith("-") else ""
        if " + " in line[:9] or line.startswith("+"):
            style = "green"
        text.append(f"  {line}\n", style=style or "yellow")
