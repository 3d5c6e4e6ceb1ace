"""Raw HTTP/1.1 bytes of a recorded exchange: the request, then the response.

Bodies are written de-chunked: a recorded ``Transfer-Encoding: chunked`` is replaced by
the ``Content-Length`` of the recorded content, so each message parses on its own.
Each message is introduced by a ``### `` comment line that is not part of HTTP.
"""

from __future__ import annotations

from datetime import UTC, datetime

from inspector.export.redact import redact_flow
from inspector.flow import Flow, FlowBody
from inspector.render import human_size
from protocol.headers import HeaderPairs, Headers

CRLF = b"\r\n"


def raw_exchange(flow: Flow, redact: bool = False) -> bytes:
    """The request and response of ``flow`` as HTTP/1.1 bytes with comment separators."""
    if redact:
        flow = redact_flow(flow)
    req = flow.request
    stamp = datetime.fromtimestamp(flow.timings.start, UTC).isoformat(timespec="milliseconds")
    out = [_comment(f"request {req.method} {req.url}  (flow {flow.id}, {stamp})")]
    out.append(_request_bytes(flow))
    if flow.response is not None:
        resp = flow.response
        out.append(_comment(f"response {resp.status_code} {resp.reason}".rstrip()))
        out.append(_message(_status_line(flow), resp.headers, resp.body, resp.trailers))
    if flow.error is not None:
        err = flow.error
        out.append(_comment(f"error in {err.phase}: {err.exc_class}: {err.message}"))
    return b"".join(out)


def _comment(text: str) -> bytes:
    return b"### " + " ".join(text.split()).encode("utf-8") + CRLF


def _request_bytes(flow: Flow) -> bytes:
    req = flow.request
    line = f"{req.method} {req.path} {req.http_version}".encode("latin-1", errors="replace")
    return _message(line, req.headers, req.body, req.trailers)


def _status_line(flow: Flow) -> bytes:
    resp = flow.response
    assert resp is not None
    line = f"{resp.http_version} {resp.status_code} {resp.reason}".rstrip()
    return line.encode("latin-1", errors="replace")


def _message(start: bytes, headers: HeaderPairs, body: FlowBody, trailers: HeaderPairs) -> bytes:
    fields = Headers(list(headers))
    if fields.get("transfer-encoding") is not None:
        fields.remove("transfer-encoding")
        fields.add("Content-Length", str(body.size))
    # Trailers of a chunked message become ordinary fields once it is de-chunked.
    for name, value in trailers:
        fields.add(name, value)
    head = start + CRLF + b"".join(n + b": " + v + CRLF for n, v in fields.raw) + CRLF
    tail = CRLF
    if body.truncated:
        note = f"body truncated: {human_size(len(body.data))} of {human_size(body.size)} recorded"
        tail = CRLF + _comment(note)
    return head + body.data + tail
