"""Raw HTTP/1.1 bytes of a recorded exchange: the request, then the response.

Bodies are written de-chunked: a recorded ``Transfer-Encoding: chunked`` is replaced by
the ``Content-Length`` of the recorded content, so each message parses on its own.
Each message is introduced by a ``### `` comment line that is not part of HTTP.

An exchange made over HTTP/2 has no such bytes: it is rendered as HTTP/1.1 (version
``HTTP/1.1`` in the start lines, the status's standard reason phrase, a ``Content-Length``
where HTTP/2 framed the body itself), and a comment line says so.
"""

from __future__ import annotations

from datetime import UTC, datetime

from inspector.export.redact import redact_flow
from inspector.flow import Flow, FlowBody
from inspector.render import human_size
from protocol import responses
from protocol.headers import HeaderPairs, Headers

CRLF = b"\r\n"


def raw_exchange(flow: Flow, redact: bool = False) -> bytes:
    """The request and response of ``flow`` as HTTP/1.1 bytes with comment separators."""
    if redact:
        flow = redact_flow(flow)
    req = flow.request
    stamp = datetime.fromtimestamp(flow.timings.start, UTC).isoformat(timespec="milliseconds")
    out = [_comment(f"request {req.method} {req.url}  (flow {flow.id}, {stamp})")]
    if _over_http2(flow):
        out.append(_comment("exchanged over HTTP/2, rendered here as HTTP/1.1"))
    out.append(_request_bytes(flow))
    if flow.response is not None:
        resp = flow.response
        reason = resp.reason or responses.get(resp.status_code, "")
        out.append(_comment(f"response {resp.status_code} {reason}".rstrip()))
        length = resp.http_version == "HTTP/2"
        out.append(_message(_status_line(flow), resp.headers, resp.body, resp.trailers, length))
    if flow.error is not None:
        err = flow.error
        out.append(_comment(f"error in {err.phase}: {err.exc_class}: {err.message}"))
    return b"".join(out)


def _comment(text: str) -> bytes:
    return b"### " + " ".join(text.split()).encode("utf-8") + CRLF


def _over_http2(flow: Flow) -> bool:
    resp = flow.response
    return flow.request.http_version == "HTTP/2" or (
        resp is not None and resp.http_version == "HTTP/2"
    )


def _request_bytes(flow: Flow) -> bytes:
    req = flow.request
    h2 = req.http_version == "HTTP/2"
    version = "HTTP/1.1" if h2 else req.http_version
    line = f"{req.method} {req.path} {version}".encode("latin-1", errors="replace")
    return _message(line, req.headers, req.body, req.trailers, h2 and req.body.size > 0)


def _status_line(flow: Flow) -> bytes:
    resp = flow.response
    assert resp is not None
    version, reason = resp.http_version, resp.reason
    if version == "HTTP/2":  # HTTP/2 has no reason phrase: the standard one stands in
        version, reason = "HTTP/1.1", responses.get(resp.status_code, "")
    line = f"{version} {resp.status_code} {reason}".rstrip()
    return line.encode("latin-1", errors="replace")


def _message(
    start: bytes,
    headers: HeaderPairs,
    body: FlowBody,
    trailers: HeaderPairs,
    needs_length: bool = False,
) -> bytes:
    """One message; ``needs_length``: HTTP/2 framed the body, so give it a Content-Length."""
    fields = Headers(list(headers))
    if fields.get("transfer-encoding") is not None:
        fields.remove("transfer-encoding")
        fields.add("Content-Length", str(body.size))
    elif needs_length and fields.get("content-length") is None:
        fields.add("content-length", str(body.size))
    # Trailers of a chunked message become ordinary fields once it is de-chunked.
    for name, value in trailers:
        fields.add(name, value)
    head = start + CRLF + b"".join(n + b": " + v + CRLF for n, v in fields.raw) + CRLF
    tail = CRLF
    if body.truncated:
        note = f"body truncated: {human_size(len(body.data))} of {human_size(body.size)} recorded"
        tail = CRLF + _comment(note)
    return head + body.data + tail
