"""A held request or response as editable HTTP text, and that text applied back to the flow.

The text is the message as it would go on the wire (start line, header lines, a blank
line, the body), so editing needs no form. Binary bodies are not put in the text; a
marker line stands for them and keeps them unchanged.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

from inspector.content import looks_textual
from inspector.flow import Flow, FlowBody, FlowRequest, FlowResponse
from protocol import is_token
from protocol.authority import default_port

BINARY_MARKER = "<binary body of {size} bytes: kept unchanged; replace this line to change it>"
_BINARY_RE = re.compile(
    r"^<binary body of (\d+) bytes: kept unchanged; replace this line to change it>$"
)
_VERSION_RE = re.compile(r"^HTTP/\d\.\d$")


class EditError(ValueError):
    """The edited text is not a valid message; the message says which line and why."""


def _body_text(body: FlowBody) -> str:
    if not body.data:
        return ""
    if not looks_textual(body.data):
        return BINARY_MARKER.format(size=len(body.data))
    return body.data.decode("utf-8", errors="replace")


def _header_lines(pairs: list[tuple[bytes, bytes]]) -> list[str]:
    return [f"{n.decode('latin-1')}: {v.decode('latin-1')}" for n, v in pairs]


def editable_stage(flow: Flow) -> str:
    """``request`` while the response has not arrived, else ``response``."""
    return "request" if flow.response is None else "response"


def message_text(flow: Flow, stage: str | None = None) -> str:
    """The held message as text: the request, or the response once it has arrived."""
    if (stage or editable_stage(flow)) == "request" or flow.response is None:
        req = flow.request
        start = f"{req.method} {req.url} {req.http_version}"
        lines = [start, *_header_lines(req.headers), "", _body_text(req.body)]
    else:
        resp = flow.response
        start = f"{resp.http_version} {resp.status_code} {resp.reason}".rstrip()
        lines = [start, *_header_lines(resp.headers), "", _body_text(resp.body)]
    return "\n".join(lines)


def _split(text: str) -> tuple[str, list[str], str]:
    text = text.replace("\r\n", "\n")
    head, sep, body = text.partition("\n\n")
    lines = head.split("\n")
    if not sep and lines and lines[-1] == "":
        lines.pop()
    if not lines or not lines[0].strip():
        raise EditError("line 1: the start line is missing")
    return lines[0].strip(), lines[1:], body


def _parse_headers(lines: list[str]) -> list[tuple[bytes, bytes]]:
    pairs = []
    for number, line in enumerate(lines, 2):
        name, colon, value = line.partition(":")
        if not colon or not is_token(name):
            raise EditError(f"line {number}: expected 'Name: value', got {line!r}")
        try:
            pairs.append((name.encode("latin-1"), value.strip().encode("latin-1")))
        except UnicodeEncodeError:
            raise EditError(f"line {number}: header values must be Latin-1 text") from None
    return pairs


def _new_body(old: FlowBody, text: str) -> FlowBody:
    match = _BINARY_RE.match(text.strip())
    if match and int(match.group(1)) == len(old.data):
        return old
    data = text.encode("utf-8")
    if data == old.data:
        return old
    return FlowBody(data=data, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def _fix_length(pairs: list[tuple[bytes, bytes]], old: FlowBody, new: FlowBody) -> None:
    """Keep an existing Content-Length true to an edited body."""
    if new is old:
        return
    for i, (name, _) in enumerate(pairs):
        if name.lower() == b"content-length":
            pairs[i] = (name, str(new.size).encode())


def apply_text(flow: Flow, text: str, stage: str | None = None) -> None:
    """Parse ``text`` and write it into the held message of ``flow`` (EditError if bad).

    This is the text alone: ``inspector.tui.edits.EditLog`` records the change."""
    start, header_lines, body_text = _split(text)
    pairs = _parse_headers(header_lines)
    if (stage or editable_stage(flow)) == "request" or flow.response is None:
        _apply_request(flow.request, start, pairs, body_text)
    else:
        _apply_response(flow.response, start, pairs, body_text)
    flow.intercepted = True


def _apply_request(req: FlowRequest, start: str, pairs: list, body_text: str) -> None:
    parts = start.split()
    if len(parts) != 3 or not is_token(parts[0]) or not _VERSION_RE.match(parts[2]):
        raise EditError(f"line 1: expected 'METHOD URL HTTP/1.1', got {start!r}")
    method, target, version = parts
    old_authority = req.authority
    if target.startswith("/"):
        path, scheme, host, port = target, req.scheme, req.host, req.port
    else:
        url = urlsplit(target)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise EditError(f"line 1: the URL must be http(s)://host/path or /path, got {target!r}")
        try:
            port = url.port or default_port(url.scheme)
        except ValueError:
            raise EditError(f"line 1: bad port in {target!r}") from None
        scheme, host = url.scheme, url.hostname
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    body = _new_body(req.body, body_text)
    _fix_length(pairs, req.body, body)
    req.method, req.http_version = method, version
    req.scheme, req.host, req.port, req.path = scheme, host, port, path
    if req.authority != old_authority:
        # The Host header followed the old URL: make it follow the new one.
        for i, (name, value) in enumerate(pairs):
            if name.lower() == b"host" and value.decode("latin-1") == old_authority:
                pairs[i] = (name, req.authority.encode("latin-1"))
    req.headers[:] = pairs
    req.body = body


def _apply_response(resp: FlowResponse, start: str, pairs: list, body_text: str) -> None:
    version, _, rest = start.partition(" ")
    code, _, reason = rest.partition(" ")
    if not _VERSION_RE.match(version) or not (code.isdigit() and len(code) == 3):
        raise EditError(f"line 1: expected 'HTTP/1.1 CODE REASON', got {start!r}")
    body = _new_body(resp.body, body_text)
    _fix_length(pairs, resp.body, body)
    resp.http_version, resp.status_code, resp.reason = version, int(code), reason.strip()
    resp.headers[:] = pairs
    resp.body = body
