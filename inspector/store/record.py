"""A flow as the store writes it: the JSON record, the indexed column values, the bodies.

The record holds everything of a Flow but body bytes and ``marked``: header pairs as
``[name, value]`` lists of latin-1 strings and WebSocket message heads as latin-1
strings, so every byte survives JSON. Unset and empty parts (trailers, error, WebSocket
messages, timings not reached, a body's ``truncated``/``sha256``, a comment, what a rule
or an addon changed) are left out, and a reader takes them as unset. A changed flow's
record adds ``modified_by`` and the originals ``orig_req``/``orig_resp`` (bodies in parts
``ORIGINAL_REQUEST``/``ORIGINAL_RESPONSE``). A WebSocket message an addon changed or dropped
adds ``dropped, original_size, original_head`` to its ``ws`` entry. The record carries the
Flow's ``format_version``.
"""

from __future__ import annotations

import json
from operator import attrgetter
from typing import Any, NamedTuple

from inspector.flow import (
    Flow,
    FlowBody,
    FlowError,
    FlowRequest,
    FlowResponse,
    Phase,
    Timings,
    TLSInfo,
    WebSocketMessage,
)

# The columns of ``flows`` derived from a flow, in the order ``flow_rows`` gives them.
COLUMNS = ("id", "start", "method", "scheme", "host", "port", "path", "url", "status",
           "reason", "req_content_type", "resp_content_type", "req_size", "resp_size",
           "duration", "error_class", "replay_of", "marked", "req_head_text",
           "resp_head_text", "modified", "http_version")  # fmt: skip
REQUEST, RESPONSE = 0, 1  # the ``part`` of a body row
# A flow changed by a rule or an addon also keeps what the client sent and the upstream
# answered (filters look at parts 0 and 1 only).
ORIGINAL_REQUEST, ORIGINAL_RESPONSE = 2, 3


def _pairs_out(pairs: list[tuple[bytes, bytes]]) -> list[list[str]]:
    return [[n.decode("latin-1"), v.decode("latin-1")] for n, v in pairs]


def _pairs_in(items: list[list[str]]) -> list[tuple[bytes, bytes]]:
    return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in items]


def body_out(body: FlowBody) -> dict[str, Any]:
    out: dict[str, Any] = {"size": body.size}
    if body.truncated:
        out["truncated"] = True
    if body.sha256 is not None:
        out["sha256"] = body.sha256
    return out


def _body_in(d: dict[str, Any], data: bytes) -> FlowBody:
    return FlowBody(data, d["size"], d.get("truncated", False), d.get("sha256"))


def _request_out(r: FlowRequest) -> dict[str, Any]:
    out = {
        "method": r.method, "scheme": r.scheme, "host": r.host, "port": r.port,
        "path": r.path, "version": r.http_version, "headers": _pairs_out(r.headers),
        "body": body_out(r.body), "ts": r.timestamp,
    }  # fmt: skip
    if r.trailers:
        out["trailers"] = _pairs_out(r.trailers)
    return out


def _response_out(r: FlowResponse) -> dict[str, Any]:
    out = {
        "status": r.status_code, "reason": r.reason, "version": r.http_version,
        "headers": _pairs_out(r.headers), "body": body_out(r.body), "ts": r.timestamp,
    }  # fmt: skip
    if r.trailers:
        out["trailers"] = _pairs_out(r.trailers)
    return out


def _request_in(q: dict[str, Any], data: bytes) -> FlowRequest:
    return FlowRequest(
        q["method"], q["scheme"], q["host"], q["port"], q["path"], q["version"],
        _pairs_in(q["headers"]), _body_in(q["body"], data),
        _pairs_in(q.get("trailers", ())), q["ts"],
    )  # fmt: skip


def _response_in(s: dict[str, Any] | None, data: bytes) -> FlowResponse | None:
    if s is None:
        return None
    return FlowResponse(
        s["status"], s["reason"], s["version"], _pairs_in(s["headers"]),
        _body_in(s["body"], data), _pairs_in(s.get("trailers", ())), s["ts"],
    )  # fmt: skip


_TIMING_FIELDS = ("start", "connect_start", "connect_end", "tls_end", "request_sent",
                  "response_start", "end")  # fmt: skip
_TLS_FIELDS = ("sni", "client_alpn", "client_version", "upstream_version", "upstream_cipher",
               "upstream_alpn", "upstream_cert_subject", "upstream_cert_issuer")  # fmt: skip


def _set_fields(obj: object, names: tuple[str, ...]) -> dict[str, Any]:
    """The attributes of ``obj`` among ``names`` that are not None."""
    values = {}
    for name in names:
        value = getattr(obj, name)
        if value is not None:
            values[name] = value
    return values


ORIGINAL_FIELDS = {
    "req": (("method", "scheme", "host", "port", "path", "version", "ts"),
            attrgetter("method", "scheme", "host", "port", "path", "http_version", "timestamp")),
    "resp": (("status", "reason", "version", "ts"),
             attrgetter("status_code", "reason", "http_version", "timestamp")),
}  # fmt: skip
_PARTS = ("headers", "body", "trailers")  # never taken from the current message


def original_out(kind: str, original: Any, current: Any) -> dict[str, Any]:
    """An original message told against the current one, which keeps the record small:
    fields equal to the current's are left out and an unchanged body is ``{"same": 1}``
    (its bytes stored once)."""
    if current is None:
        return (_request_out if kind == "req" else _response_out)(original)
    rec: dict[str, Any] = {}
    keys, fields = ORIGINAL_FIELDS[kind]
    was, now = fields(original), fields(current)
    if was != now:  # most changes are to headers alone
        rec.update((key, a) for key, a, b in zip(keys, was, now, strict=True) if a != b)
    same = same_body(original.body, current.body)
    rec["body"] = {"same": 1} if same else body_out(original.body)
    rec["headers"] = _pairs_out(original.headers)  # whole: cheaper than a delta to work out
    if original.trailers:
        rec["trailers"] = _pairs_out(original.trailers)
    return rec


def _original_in(rec: dict[str, Any] | None, current: dict[str, Any] | None) -> Any:
    """An original's record spelled out from the current message's (see original_out)."""
    if rec is None or current is None:
        return rec
    full = {k: v for k, v in current.items() if k not in _PARTS}
    full.update(rec)
    if rec["body"].get("same"):
        full["body"] = {**current["body"], "same": 1}
    return full


def same_body(a: FlowBody, b: FlowBody) -> bool:
    return a is b or (a.size == b.size and a.sha256 == b.sha256 and a.data == b.data)


def flow_to_record(flow: Flow) -> dict[str, Any]:
    """Everything of a flow but body bytes and ``marked``, as JSON-ready values.

    Empty and unset parts (no trailers, no error, timings not reached, ...) are left
    out: the record is written for every flow, and smaller is faster to encode and store.
    """
    rec: dict[str, Any] = {
        "v": flow.format_version,
        "id": flow.id,
        "client": list(flow.client_addr),
        "mode": flow.mode,
        "req": _request_out(flow.request),
        "resp": None if flow.response is None else _response_out(flow.response),
        **record_tail(flow),
    }
    if flow.modified_by:
        rec["modified_by"] = list(flow.modified_by)
    if flow.original_request is not None:
        rec["orig_req"] = original_out("req", flow.original_request, flow.request)
    if flow.original_response is not None:
        rec["orig_resp"] = original_out("resp", flow.original_response, flow.response)
    return rec


def record_tail(flow: Flow) -> dict[str, Any]:
    """The record's keys after the request and the response, but for what changed the
    flow: ``timings``, ``tls`` and the optional ones."""
    rec: dict[str, Any] = {
        "timings": _set_fields(flow.timings, _TIMING_FIELDS),
        "tls": None if flow.tls is None else _set_fields(flow.tls, _TLS_FIELDS),
    }
    if flow.websocket:
        rec["ws"] = [_ws_out(m) for m in list(flow.websocket)]  # a copy: the proxy appends
    err = flow.error
    if err is not None:
        rec["error"] = {
            "cls": err.exc_class,
            "msg": err.message,
            "phase": str(err.phase),
            "ts": err.timestamp,
        }
    if flow.replay_of is not None:
        rec["replay_of"] = flow.replay_of
    if flow.intercepted:
        rec["intercepted"] = True
    if flow.comment:
        rec["comment"] = flow.comment
    return rec


def _ws_out(m: WebSocketMessage) -> list[Any]:
    out = [m.timestamp, m.from_client, m.opcode, m.size, m.head.decode("latin-1")]
    if m.original_size is not None:  # changed or dropped by an addon: what was received
        out += [m.dropped, m.original_size, (m.original_head or b"").decode("latin-1")]
    return out


def _ws_in(
    ts: float, from_client: bool, opcode: int, size: int, head: str, *changed: Any
) -> WebSocketMessage:
    m = WebSocketMessage(ts, from_client, opcode, size, head.encode("latin-1"))
    if changed:
        m.dropped, m.original_size, original = changed
        m.original_head = original.encode("latin-1")
    return m


def flow_from_record(rec: dict[str, Any], marked: bool, bodies: dict[int, bytes]) -> Flow:
    """The inverse of ``flow_to_record``; ``bodies`` maps part (REQUEST, ...) to bytes."""
    e = rec.get("error")
    orig_req = _original_in(rec.get("orig_req"), rec["req"])
    orig_resp = _original_in(rec.get("orig_resp"), rec["resp"])
    return Flow(
        _request_in(rec["req"], bodies.get(REQUEST, b"")),
        id=rec["id"],
        client_addr=(rec["client"][0], rec["client"][1]),
        mode=rec["mode"],
        response=_response_in(rec["resp"], bodies.get(RESPONSE, b"")),
        timings=Timings(**rec["timings"]),
        tls=None if rec["tls"] is None else TLSInfo(**rec["tls"]),
        websocket=[_ws_in(*m) for m in rec.get("ws", ())],
        error=None if e is None else FlowError(e["cls"], e["msg"], Phase(e["phase"]), e["ts"]),
        replay_of=rec.get("replay_of"),
        marked=marked,
        intercepted=rec.get("intercepted", False),
        comment=rec.get("comment", ""),
        original_request=None
        if orig_req is None
        else _request_in(orig_req, _original_body(orig_req, bodies, ORIGINAL_REQUEST)),
        original_response=_response_in(
            orig_resp, _original_body(orig_resp, bodies, ORIGINAL_RESPONSE)
        ),
        modified_by=list(rec.get("modified_by", ())),
        format_version=rec["v"],
    )


def _original_body(rec: dict[str, Any] | None, bodies: dict[int, bytes], part: int) -> bytes:
    """An original's body bytes: its own part, or the current message's when the same."""
    if rec is not None and rec["body"].get("same"):
        return bodies.get(part - 2, b"")  # ORIGINAL_REQUEST -> REQUEST, ... -> RESPONSE
    return bodies.get(part, b"")


def decode_flow(record: str, marked: object, bodies: dict[int, bytes]) -> Flow:
    """A flow from a stored record's JSON text, its ``marked`` column and its bodies."""
    return flow_from_record(json.loads(record), bool(marked), bodies)


class FlowSummary(NamedTuple):
    """One row of a flow list, read from indexed columns only (no JSON, no bodies)."""

    id: str
    start: float
    method: str
    scheme: str
    host: str
    port: int
    path: str
    url: str
    status: int | None  # None without a response
    reason: str | None
    content_type: str | None  # the response's Content-Type header
    response_size: int | None  # response body size on the wire
    duration: float | None  # None while unfinished
    error_class: str | None  # the exception class when the exchange failed
    replay_of: str | None
    marked: bool
    modified: bool = False  # changed by a rule or an addon
    http_version: str = "HTTP/1.1"  # what the client spoke: "HTTP/2", "HTTP/1.0"...


# The columns a FlowSummary is read from, in its fields' order.
SUMMARY_COLUMNS = ", ".join(
    ("id", "start", "method", "scheme", "host", "port", "path", "url", "status", "reason",
     "resp_content_type", "resp_size", "duration", "error_class", "replay_of", "marked != 0",
     "modified != 0", "http_version")
)  # fmt: skip
