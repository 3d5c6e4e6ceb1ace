"""The one way to render a flow as a line of text (dump, replay output and the TUI use it).

A finished exchange::

    GET http://127.0.0.1:9000/x -> 404 Not Found  1.2 kB  3 ms

A failed one (the exception class and its message)::

    GET http://127.0.0.1:9 -> ERROR ConnectionRefusedError: [Errno 111] Connection refused

A failure after the response head arrived keeps the status it had::

    GET http://127.0.0.1:9000/x -> ERROR IncompleteRead: ... (after 200 OK)

A gRPC call shows its gRPC status by name after the HTTP status::

    POST https://h:50051/pkg.Svc/Get -> 200 OK grpc NOT_FOUND  0 B  4 ms

A flow changed by a rule or an addon (``flow.modified``) ends with ``  [modified]``.
A replayed flow (``replay_of`` set) starts with ``[replay] ``; a flow still in
progress ends in ``-> ...``. Parts are separated by two spaces; the size is that of
the response body on the wire.
"""

from __future__ import annotations

from inspector import grpc
from inspector.flow import Flow
from protocol.status import describe

REPLAY_PREFIX = "[replay] "
MODIFIED_SUFFIX = "  [modified]"
_SIZE_UNITS = ("kB", "MB", "GB", "TB", "PB")


def human_size(n: int) -> str:
    """Byte count in decimal units: ``512 B``, ``1.2 kB``, ``34.5 MB``, ``123 GB``."""
    if n < 0:
        raise ValueError(f"a size cannot be negative: {n}")
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in _SIZE_UNITS:
        value /= 1000
        # Pick the unit only if the rounded value stays below 1000 (no "1000 kB").
        text = f"{value:.1f}" if value < 99.95 else f"{value:.0f}"
        if float(text) < 1000 or unit == _SIZE_UNITS[-1]:
            return f"{text} {unit}"
    raise AssertionError("unreachable")


def duration_text(seconds: float) -> str:
    """``0.4 ms``, ``3 ms``, ``1.24 s``, ``2 min 5 s``."""
    seconds = max(seconds, 0.0)
    ms = seconds * 1000
    if ms < 0.95:
        return f"{ms:.1f} ms"
    if ms < 999.5:
        return f"{ms:.0f} ms"
    if seconds < 59.995:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def status_text(code: int, reason: str | None = "") -> str:
    """``404 Not Found``; the server's own phrase is added when it differs from the standard."""
    phrase = describe(code).phrase
    reason = _one_line(reason or "")
    if not reason or reason.lower() == phrase.lower():
        return f"{code} {phrase}"
    if phrase.startswith("Unknown"):
        return f"{code} {reason}"
    return f'{code} {phrase} ("{reason}")'


def flow_line(flow: Flow) -> str:
    """The one-line summary of a flow (see the module docstring for the forms)."""
    line = _flow_line(flow)
    return line + MODIFIED_SUFFIX if flow.modified_by else line


def _flow_line(flow: Flow) -> str:
    req = flow.request
    head = f"{REPLAY_PREFIX if flow.replay_of else ''}{req.method} {req.url} -> "
    resp = flow.response
    if flow.error is not None:
        err = flow.error
        tail = f" (after {status_text(resp.status_code, resp.reason)})" if resp else ""
        return f"{head}ERROR {err.exc_class}: {_one_line(err.message)}{tail}"
    if resp is None:
        return f"{head}..."
    parts = [status_text(resp.status_code, resp.reason), human_size(resp.body.size)]
    call = grpc.status(flow)
    if call is not None:
        parts[0] += f" grpc {call.name}"
    duration = flow.timings.duration
    if duration is not None:
        parts.append(duration_text(duration))
    return head + "  ".join(parts)


def _one_line(text: str) -> str:
    # A dump line must stay one line whatever a server or an exception put in the text.
    if "\n" in text or "\r" in text:
        return " ".join(text.split())
    return text
