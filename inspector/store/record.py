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
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from operator import attrgetter
from typing import Any, NamedTuple

from inspector.filters import header_text
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


def _body_out(body: FlowBody) -> dict[str, Any]:
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
        "body": _body_out(r.body), "ts": r.timestamp,
    }  # fmt: skip
    if r.trailers:
        out["trailers"] = _pairs_out(r.trailers)
    return out


def _response_out(r: FlowResponse) -> dict[str, Any]:
    out = {
        "status": r.status_code, "reason": r.reason, "version": r.http_version,
        "headers": _pairs_out(r.headers), "body": _body_out(r.body), "ts": r.timestamp,
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


_ORIGINAL_FIELDS = {
    "req": (("method", "scheme", "host", "port", "path", "version", "ts"),
            attrgetter("method", "scheme", "host", "port", "path", "http_version", "timestamp")),
    "resp": (("status", "reason", "version", "ts"),
             attrgetter("status_code", "reason", "http_version", "timestamp")),
}  # fmt: skip
_PARTS = ("headers", "body", "trailers")  # never taken from the current message


def _original_out(kind: str, original: Any, current: Any) -> dict[str, Any]:
    """An original message told against the current one, which keeps the record small:
    fields equal to the current's are left out and an unchanged body is ``{"same": 1}``
    (its bytes stored once)."""
    if current is None:
        return (_request_out if kind == "req" else _response_out)(original)
    rec: dict[str, Any] = {}
    keys, fields = _ORIGINAL_FIELDS[kind]
    was, now = fields(original), fields(current)
    if was != now:  # most changes are to headers alone
        rec.update((key, a) for key, a, b in zip(keys, was, now, strict=True) if a != b)
    same = _same_body(original.body, current.body)
    rec["body"] = {"same": 1} if same else _body_out(original.body)
    rec["headers"] = _pairs_out(original.headers)  # whole: cheaper than a delta to work out
    if original.trailers:
        rec["trailers"] = _pairs_out(original.trailers)
    return rec


def _original_in(rec: dict[str, Any] | None, current: dict[str, Any] | None) -> Any:
    """An original's record spelled out from the current message's (see _original_out)."""
    if rec is None or current is None:
        return rec
    full = {k: v for k, v in current.items() if k not in _PARTS}
    full.update(rec)
    if rec["body"].get("same"):
        full["body"] = {**current["body"], "same": 1}
    return full


def _same_body(a: FlowBody, b: FlowBody) -> bool:
    return a is b or (a.size == b.size and a.sha256 == b.sha256 and a.data == b.data)


def flow_to_record(flow: Flow) -> dict[str, Any]:
    """Everything of a flow but body bytes and ``marked``, as JSON-ready values.

    Empty and unset parts (no trailers, no error, timings not reached, ...) are left
    out: the record is written for every flow, and smaller is faster to encode and store.
    """
    rec = _plain_record(flow)
    if flow.modified_by:
        rec["modified_by"] = list(flow.modified_by)
    rec.update(_originals_out(flow))
    return rec


def _plain_record(flow: Flow) -> dict[str, Any]:
    """The record but its last keys, what changed the flow (``_originals_out``)."""
    rec: dict[str, Any] = {
        "v": flow.format_version,
        "id": flow.id,
        "client": list(flow.client_addr),
        "mode": flow.mode,
        "req": _request_out(flow.request),
        "resp": None if flow.response is None else _response_out(flow.response),
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


def _originals_out(flow: Flow) -> dict[str, Any]:
    """The record's last keys, of a changed flow: ``orig_req`` and ``orig_resp``."""
    rec = {}
    if flow.original_request is not None:
        rec["orig_req"] = _original_out("req", flow.original_request, flow.request)
    if flow.original_response is not None:
        rec["orig_resp"] = _original_out("resp", flow.original_response, flow.response)
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


class FlowRows(NamedTuple):
    """Everything written for one flow, computed before the first write."""

    flow_id: str
    columns: tuple[Any, ...]  # the values of COLUMNS
    record: str
    bodies: list[tuple[int, bytes]]  # (part, data) of each non-empty body


_ENCODE = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def flow_rows(flow: Flow) -> FlowRows:
    """The column values, the record's JSON and the bodies stored for ``flow``."""
    req, resp = flow.request, flow.response
    status = reason = resp_size = resp_type = resp_heads = None
    if resp is not None:
        status, reason, resp_size = resp.status_code, clean(resp.reason), resp.body.size
        resp_type, resp_heads = _content_type(resp.headers), header_text(resp.headers)
    columns = (
        flow.id, flow.timings.start, clean(req.method), clean(req.scheme), clean(req.host),
        req.port, clean(req.path), clean(req.url), status, reason,
        clean(_content_type(req.headers)), clean(resp_type), req.body.size, resp_size,
        flow.timings.duration, None if flow.error is None else clean(flow.error.exc_class),
        flow.replay_of, int(flow.marked), clean(header_text(req.headers)), clean(resp_heads),
        int(bool(flow.modified_by)), clean(req.http_version),
    )  # fmt: skip
    bodies = [(part, body.data) for part, body in _bodies(flow) if body.data]
    return FlowRows(flow.id, columns, record_json(flow), bodies)


def record_json(flow: Flow) -> str:
    """``flow_to_record(flow)`` as compact JSON, the same text. A changed flow's record
    ends with what changed it, written here without building it first: its
    ``modified_by`` labels, mostly the same few lists over a session, whose text is kept
    (``_labels_json``), and its originals (``_original_json``)."""
    rec = _plain_record(flow)
    labels = tuple(flow.modified_by)
    if not labels:
        rec.update(_originals_out(flow))
        return _ENCODE(rec)
    parts = [_ENCODE(rec)[:-1], ',"modified_by":', _labels_json(labels)]
    if flow.original_request is not None:
        parts += (',"orig_req":', _original_json("req", flow.original_request, flow.request))
    if flow.original_response is not None:
        parts += (',"orig_resp":', _original_json("resp", flow.original_response, flow.response))
    parts.append("}")
    return "".join(parts)


def _original_json(kind: str, original: Any, current: Any) -> str:
    """``_ENCODE(_original_out(kind, original, current))``, written piece by piece: the
    json module's encoder costs more per small object than the text it writes."""
    if current is None:
        return _ENCODE(_original_out(kind, original, current))
    parts = []
    keys, fields = _ORIGINAL_FIELDS[kind]
    was, now = fields(original), fields(current)
    if was != now:
        parts += (f'"{k}":{_ENCODE(a)}' for k, a, b in zip(keys, was, now, strict=True) if a != b)
    same = _same_body(original.body, current.body)
    parts.append('"body":' + ('{"same":1}' if same else _ENCODE(_body_out(original.body))))
    parts.append('"headers":' + _pairs_json(original.headers))
    if original.trailers:
        parts.append('"trailers":' + _pairs_json(original.trailers))
    return "{" + ",".join(parts) + "}"


_PAIR_TEXT: dict[tuple[bytes, bytes], str] = {}  # header pairs' JSON text: most recur
_PAIR_TEXT_SIZE = 4096  # emptied when full, so that it follows the traffic


def _pairs_json(pairs: list[tuple[bytes, bytes]]) -> str:
    """``_ENCODE(_pairs_out(pairs))``, with each pair's text kept for the next flows."""
    known, texts = _PAIR_TEXT, []
    for pair in pairs:
        text = known.get(pair)
        if text is None:
            name, value = pair[0].decode("latin-1"), pair[1].decode("latin-1")
            text = f"[{encode_basestring_ascii(name)},{encode_basestring_ascii(value)}]"
            if len(known) >= _PAIR_TEXT_SIZE:
                known.clear()
            known[pair] = text
        texts.append(text)
    return "[" + ",".join(texts) + "]"


@lru_cache(maxsize=256)
def _labels_json(labels: tuple[str, ...]) -> str:
    return _ENCODE(list(labels))


def _bodies(flow: Flow) -> list[tuple[int, FlowBody]]:
    out = [(REQUEST, flow.request.body)]
    if flow.response is not None:
        out.append((RESPONSE, flow.response.body))
    originals = ((ORIGINAL_REQUEST, flow.original_request, flow.request),
                 (ORIGINAL_RESPONSE, flow.original_response, flow.response))  # fmt: skip
    for part, original, current in originals:
        if original is not None and (
            current is None or not _same_body(original.body, current.body)
        ):
            out.append((part, original.body))
    return out


def _content_type(pairs: list[tuple[bytes, bytes]]) -> str | None:
    """The first Content-Type value (latin-1), without building a Headers object."""
    for name, value in pairs:
        if name.lower() == b"content-type":
            return value.decode("latin-1")
    return None


def clean(text: str | None) -> str | None:
    """``text`` as valid UTF-8 for a column (the record keeps the exact text)."""
    if text is None or text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")
