"""What the flow detail's tabs show, as Rich renderables built from a Flow (no widgets)."""

from __future__ import annotations

import time
from dataclasses import fields
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from inspector import grpc
from inspector.flow import Flow, FlowBody
from inspector.render import duration_text, human_size
from protocol.status import describe

if TYPE_CHECKING:
    from protocol.headers import HeaderPairs

STATUS_COLOURS = {1: "blue", 2: "green", 3: "cyan", 4: "yellow", 5: "red"}
OPCODES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def headers_text(pairs: HeaderPairs) -> Text:
    """Header fields in their original order and case."""
    text = Text()
    for name, value in pairs:
        text.append(name.decode("latin-1"), style="bold cyan")
        text.append(": ")
        text.append(value.decode("latin-1"))
        text.append("\n")
    return text


def truncation_notice(body: FlowBody) -> tuple[str, ...]:
    if not body.truncated:
        return ()
    digest = f", sha256 {body.sha256}" if body.sha256 else ""
    return (
        f"⚠ recorded {human_size(len(body.data))} of {human_size(body.size)}{digest}",
        "  over --body-limit: it streamed through whole, untouched by rules and addons",
    )


def status_description(code: int, reason: str) -> Text:
    """``404 NOT_FOUND  Not Found  (RFC 9110, Section 15.5.5)`` and the server's own phrase."""
    info = describe(code)
    text = Text()
    text.append(f"{code} {info.phrase}", style=f"bold {STATUS_COLOURS.get(code // 100, '')}")
    text.append("  (")
    text.append(info.name, style="cyan")
    if info.reference:
        text.append(f", {info.reference}")
    text.append(")")
    if reason and reason.lower() != info.phrase.lower():
        text.append(f'\nthe server sent the reason phrase "{reason}"', style="yellow")
    return text


def request_head(flow: Flow) -> Text:
    req = flow.request
    text = Text()
    text.append(req.url, style="bold underline")
    text.append("\n\n")
    text.append(f"{req.method} ", style="bold")
    text.append(req.path)
    text.append(f" {req.http_version}\n", style="dim")
    text = _with_fields(text, req.headers, req.trailers)
    if grpc.is_grpc(flow):
        text.append_text(grpc_messages_text(req.body))
    return text


def response_head(flow: Flow) -> Text:
    resp = flow.response
    if resp is None:
        return Text("no response" + (" (see the Error tab)" if flow.error else " yet"), style="dim")
    text = status_description(resp.status_code, resp.reason)
    call = grpc.status(flow)
    if call is not None:
        text.append_text(grpc_status_text(call))
    text.append("\n\n")
    text.append(f"{resp.http_version} ", style="dim")
    text.append(f"{resp.status_code} {resp.reason}\n", style="bold")
    text = _with_fields(text, resp.headers, resp.trailers)
    if grpc.is_grpc(flow):
        text.append_text(grpc_messages_text(resp.body))
    return text


GRPC_LISTED = 20  # messages listed one per line; the rest are counted


def grpc_status_text(call: grpc.GrpcStatus) -> Text:
    """``grpc 5 NOT_FOUND: a requested entity was not found`` and the server's message."""
    text = Text("\ngrpc ")
    style = "bold green" if call.code == 0 else "bold red"
    text.append(f"{call.code} {call.name}", style=style)
    text.append(f": {call.meaning}")
    if call.message:
        text.append(f'\nthe server said "{call.message}"', style="yellow")
    return text


def grpc_messages_text(body: FlowBody) -> Text:
    """The body's length-prefixed gRPC messages: count, then size, flag and offset of each."""
    found = grpc.messages(body.data)
    total = sum(m.size for m in found)
    text = Text("\ngRPC messages: ", style="dim")
    text.append(f"{len(found)}, {human_size(total)}\n", style="bold")
    for n, m in enumerate(found[:GRPC_LISTED], start=1):
        flags = "compressed" if m.compressed else "plain"
        cut = "" if m.complete else "  (recording ends inside it)"
        text.append(f"  #{n:<3} {human_size(m.size):>9}  {flags:<10}  at byte {m.offset}{cut}\n")
    if len(found) > GRPC_LISTED:
        text.append(f"  ... and {len(found) - GRPC_LISTED} more\n", style="dim")
    if found and body.truncated:
        text.append("  (the body was recorded in part: later messages are not listed)\n")
    return text


def _with_fields(text: Text, headers: HeaderPairs, trailers: HeaderPairs) -> Text:
    """A message's header block, then its trailers when it had any."""
    text.append_text(headers_text(headers))
    if trailers:
        text.append("\ntrailers:\n", style="dim")
        text.append_text(headers_text(trailers))
    return text


WATERFALL_WIDTH = 48  # cells the whole exchange spans in the timing tab
PHASE_STYLES = {
    "connect": "yellow",
    "TLS handshake": "magenta",
    "request sent": "blue",
    "waiting (first byte)": "green",
    "receiving": "cyan",
    "failed": "red",
}


def waterfall_bar(span: tuple[float, float], start: float, total: float, style: str) -> Text:
    """``span`` of an exchange that began at ``start`` and took ``total`` seconds, drawn to
    scale in WATERFALL_WIDTH cells (at least one cell, however short)."""
    scale = WATERFALL_WIDTH / total if total > 0 else 0.0
    left = min(WATERFALL_WIDTH - 1, round((span[0] - start) * scale))
    length = max(1, min(WATERFALL_WIDTH - left, round((span[1] - span[0]) * scale)))
    return Text(" " * left + "█" * length, style=style)


def timing_steps(flow: Flow) -> list[tuple[str, float | None, tuple[float | None, float | None]]]:
    """(step, when it ended, (began, ended)) for each step of the exchange."""
    t = flow.timings
    sending_from = t.tls_end or t.connect_end or t.start
    last = "receiving" if flow.error is None else "failed"
    return [
        ("request received", t.start, (None, None)),
        ("connect", t.connect_end, (t.connect_start, t.connect_end)),
        ("TLS handshake", t.tls_end, (t.connect_end, t.tls_end)),
        ("request sent", t.request_sent, (sending_from, t.request_sent)),
        ("waiting (first byte)", t.response_start, (t.request_sent, t.response_start)),
        (last, t.end, (t.response_start or t.request_sent or t.start, t.end)),
    ]


def timing_table(flow: Flow) -> Table:
    """Each step with when it ended, how long it took, and a waterfall bar to scale."""
    t = flow.timings
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("step")
    table.add_column("at", justify="right")
    table.add_column("took", justify="right")
    table.add_column("waterfall", width=WATERFALL_WIDTH, no_wrap=True)
    # The last timestamp, whichever it is: a failed exchange may end before a step began.
    total = max(getattr(t, f.name) or t.start for f in fields(t)) - t.start
    for name, at, (began, ended) in timing_steps(flow):
        if at is None:
            table.add_row(name, "-", "", "", style="dim")
            continue
        took, bar = "", Text()
        if began is not None and ended is not None:
            took = duration_text(ended - began)
            bar = waterfall_bar((began, ended), t.start, total, PHASE_STYLES.get(name, ""))
        table.add_row(name, "+" + duration_text(at - t.start), took, bar)
    shown = "in progress" if t.duration is None else duration_text(t.duration)
    table.add_row(Text("total", style="bold"), "", Text(shown, style="bold"), "")
    return table


def timing_view(flow: Flow) -> Group:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(flow.timings.start))
    return Group(Text(f"started {started}\n", style="dim"), timing_table(flow))


def tls_view(flow: Flow) -> Text:
    tls = flow.tls
    if tls is None:
        return Text("not a TLS connection", style="dim")
    fields = [
        ("client SNI", tls.sni),
        ("client ALPN", tls.client_alpn),
        ("client TLS version", tls.client_version),
        ("upstream TLS version", tls.upstream_version),
        ("upstream cipher", tls.upstream_cipher),
        ("upstream ALPN", tls.upstream_alpn),
        ("upstream certificate subject", tls.upstream_cert_subject),
        ("upstream certificate issuer", tls.upstream_cert_issuer),
    ]
    text = Text()
    for name, value in fields:
        text.append(f"{name:<30}", style="bold")
        text.append(f"{value if value is not None else '-'}\n")
    return text


def websocket_view(flow: Flow) -> Text:
    if not flow.websocket:
        return Text("no WebSocket messages", style="dim")
    text = Text()
    for msg in flow.websocket:
        when = time.strftime("%H:%M:%S", time.localtime(msg.timestamp))
        arrow = "→ server" if msg.from_client else "← client"
        text.append(f"{when}  {arrow}  ", style="dim")
        text.append(f"{OPCODES.get(msg.opcode, str(msg.opcode)):<8}", style="bold")
        size = msg.original_size if msg.dropped else msg.size
        text.append(f" {human_size(size or 0):>9}  ")
        if msg.dropped:
            text.append("dropped by an addon  ", style="bold red")
        elif msg.modified:
            text.append("changed by an addon  ", style="bold yellow")
        text.append(message_preview(msg.opcode, msg.original_head if msg.dropped else msg.head))
        text.append("\n")
    return text


def message_preview(opcode: int, head: bytes | None) -> str:
    """A WebSocket message's first bytes on one line: text as text, the rest as hex."""
    head = head or b""
    preview = head.decode("utf-8", "replace") if opcode == 1 else head.hex(" ")
    return " ".join(preview.split())[:120]


def error_view(flow: Flow) -> Text:
    err = flow.error
    if err is None:
        return Text("no error", style="dim")
    text = Text()
    text.append(err.exc_class, style="bold magenta")
    text.append(f"\n\n{err.message}\n\n")
    text.append("phase: ", style="bold")
    text.append(f"{err.phase}\n")
    if err.timestamp:
        text.append("at: ", style="bold")
        text.append(time.strftime("%H:%M:%S", time.localtime(err.timestamp)))
        text.append(f" (+{duration_text(err.timestamp - flow.timings.start)})\n")
    return text


def initial_tab(flow: Flow) -> str:
    if flow.response is not None:
        return "response"
    return "error" if flow.error is not None else "request"
