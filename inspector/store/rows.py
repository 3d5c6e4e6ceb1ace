"""A flow as the store's writer writes it: the ``flows`` columns, the record, the bodies.

The record's text is what ``json`` makes of ``flow_to_record(flow)`` (compact, ASCII),
the same text, written here piece by piece: a flow is written for every exchange, and
encoding first builds the record's dicts and lists, decoding every header field on the
way. Header fields recur from flow to flow (Host, Accept, Server, ...), so each pair's
text is kept for the next flows (``_pairs_json``), as are the lists of what changed a
flow (``_labels_json``).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple

from inspector.filters import header_text
from inspector.flow import Flow, FlowBody, FlowRequest, FlowResponse
from inspector.store.record import (
    ORIGINAL_FIELDS,
    ORIGINAL_REQUEST,
    ORIGINAL_RESPONSE,
    REQUEST,
    RESPONSE,
    original_out,
    record_tail,
    same_body,
)


class FlowRows(NamedTuple):
    """Everything written for one flow, computed before the first write."""

    flow_id: str
    columns: tuple[Any, ...]  # the values of record.COLUMNS
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
    """``flow_to_record(flow)`` as compact JSON: the same text, written directly."""
    client, resp = flow.client_addr, flow.response
    parts = [
        '{"v":', _value(flow.format_version), ',"id":', _value(flow.id),
        ',"client":[', _value(client[0]), ",", _value(client[1]), '],"mode":', _value(flow.mode),
        ',"req":', _request_json(flow.request),
        ',"resp":', "null" if resp is None else _response_json(resp),
        ",", _ENCODE(record_tail(flow))[1:-1],
    ]  # fmt: skip
    if flow.modified_by:
        parts += (',"modified_by":', _labels_json(tuple(flow.modified_by)))
    if flow.original_request is not None:
        parts += (',"orig_req":', _original_json("req", flow.original_request, flow.request))
    if flow.original_response is not None:
        parts += (',"orig_resp":', _original_json("resp", flow.original_response, resp))
    parts.append("}")
    return "".join(parts)


def _value(x: Any) -> str:
    """A scalar's JSON text, as the json module writes it."""
    cls = x.__class__
    if cls is str:
        return encode_basestring_ascii(x)
    if cls is int or (cls is float and math.isfinite(x)):
        return repr(x)  # json writes ints and finite floats with their repr
    return _ENCODE(x)  # None, booleans, NaN, subclasses: left to json


def _request_json(r: FlowRequest) -> str:
    line = ('{"method":', _value(r.method), ',"scheme":', _value(r.scheme), ',"host":',
            _value(r.host), ',"port":', _value(r.port), ',"path":', _value(r.path))  # fmt: skip
    return _message_json(line, r)


def _response_json(r: FlowResponse) -> str:
    return _message_json(('{"status":', _value(r.status_code), ',"reason":', _value(r.reason)), r)


def _message_json(line: tuple[str, ...], r: FlowRequest | FlowResponse) -> str:
    """A message's text from its first line's keys (``line``) on."""
    text = "".join((
        *line, ',"version":', _value(r.http_version), ',"headers":', _pairs_json(r.headers),
        ',"body":', _body_json(r.body), ',"ts":', _value(r.timestamp),
    ))  # fmt: skip
    if r.trailers:
        text += ',"trailers":' + _pairs_json(r.trailers)
    return text + "}"


def _body_json(body: FlowBody) -> str:
    text = '{"size":' + _value(body.size)
    if body.truncated:
        text += ',"truncated":true'
    if body.sha256 is not None:
        text += ',"sha256":' + _value(body.sha256)
    return text + "}"


def _original_json(kind: str, original: Any, current: Any) -> str:
    """``_ENCODE(original_out(kind, original, current))``, written directly."""
    if current is None:
        return _ENCODE(original_out(kind, original, current))
    keys, fields = ORIGINAL_FIELDS[kind]
    was, now = fields(original), fields(current)
    moved = ""  # most changes are to headers alone
    if was != now:
        moved = "".join(
            f'"{k}":{_value(a)},' for k, a, b in zip(keys, was, now, strict=True) if a != b
        )
    same = same_body(original.body, current.body)
    body = '{"same":1}' if same else _body_json(original.body)
    text = f'{{{moved}"body":{body},"headers":{_pairs_json(original.headers)}'
    if original.trailers:
        text += ',"trailers":' + _pairs_json(original.trailers)
    return text + "}"


_PAIR_TEXT: dict[tuple[bytes, bytes], str] = {}  # header pairs' JSON text: most recur
_PAIR_TEXT_SIZE = 4096  # emptied when full, so that it follows the traffic


def _pairs_json(pairs: list[tuple[bytes, bytes]]) -> str:
    """``[[name, value], ...]`` (latin-1), each pair's text kept for the next flows."""
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
        if original is not None and (current is None or not same_body(original.body, current.body)):
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
