"""HAR 1.2 (HTTP Archive) writing and reading.

``har_document`` turns flows into a HAR ``log``; ``flows_from_har`` turns a HAR document
(ours, or one saved by Chromium or Firefox devtools) back into flows, raising
``HarError`` with the entry index and the field at fault.

Bodies: HAR holds content as ``text``, or base64 with ``encoding: "base64"``. We write the
recorded bytes as they went over the wire (still content-encoded) and mark that with
``content._encoded: true``; browsers write decoded content, so on reading a browser HAR
the ``Content-Encoding`` header is dropped to keep the headers true to the bytes.

A flow changed by a rule or an addon is written as it was sent and received (the
entry's ``request`` and ``response``), with ``_original``: ``{"modifiedBy": [...],
"request": {...}, "response": {...}}`` holding the request as the client sent it and
the response as the upstream sent it (each only when changed), in the entry's format.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

from inspector import __version__
from inspector.content import is_text_body, media_type
from inspector.export.redact import redact_flow
from inspector.flow import (
    Flow,
    FlowBody,
    FlowError,
    FlowRequest,
    FlowResponse,
    Phase,
    Timings,
    new_flow_id,
)
from inspector.render import human_size
from protocol import is_token
from protocol.authority import default_port
from protocol.headers import HeaderPairs, Headers

HAR_VERSION = "1.2"
CREATOR = {"name": "http-inspector", "version": __version__}


class HarError(Exception):
    """A HAR document that cannot be read; the message names the entry and the field."""


# --- writing ------------------------------------------------------------------------------


def har_document(flows, redact: bool = False) -> dict:
    """A HAR 1.2 document (``{"log": ...}``) of ``flows`` in the order given."""
    entries = [har_entry(redact_flow(f) if redact else f) for f in flows]
    return {"log": {**_log_fields(), "entries": entries}}


def _log_fields() -> dict:
    return {"version": HAR_VERSION, "creator": dict(CREATOR), "pages": []}


def har_chunks(flows: Iterable[Flow], redact: bool = False) -> Iterator[str]:
    """The text of ``json.dumps(har_document(flows), indent=2, ensure_ascii=False)``, one
    entry at a time: one flow in memory at once, whatever the session holds."""
    head = json.dumps({"log": {**_log_fields(), "entries": []}}, indent=2, ensure_ascii=False)
    before, after = head.rsplit('"entries": []', 1)
    yield before + '"entries": ['
    first = True
    for flow in flows:
        entry = json.dumps(
            har_entry(redact_flow(flow) if redact else flow), indent=2, ensure_ascii=False
        )
        yield ("\n" if first else ",\n") + _ENTRY_INDENT + entry.replace("\n", "\n" + _ENTRY_INDENT)
        first = False
    yield ("]" if first else "\n" + _ENTRY_INDENT[:-2] + "]") + after + "\n"


_ENTRY_INDENT = " " * 6  # entries sit three levels deep: {"log": {"entries": [...]}}


def har_entry(flow: Flow) -> dict:
    req = flow.request
    timings = _timings(flow.timings)
    entry: dict = {
        "startedDateTime": _iso(flow.timings.start),
        "time": round(sum(v for v in timings.values() if v > 0), 3),
        "request": _request(req),
        "response": _response(flow),
        "cache": {},
        "timings": timings,
        "_id": flow.id,
        "_mode": flow.mode,
    }
    if _is_ip(req.host):  # the resolved address is not recorded; a literal one is known
        entry["serverIPAddress"] = req.host
    if flow.replay_of:
        entry["_replayOf"] = flow.replay_of
    notes = _truncation_notes(flow)
    if notes:
        entry["comment"] = "; ".join(notes)
    if flow.error is not None:
        err = flow.error
        entry["_error"] = {"class": err.exc_class, "message": err.message, "phase": str(err.phase)}
    if flow.modified_by:
        entry["_original"] = _original(flow)
    return entry


def _original(flow: Flow) -> dict:
    """``_original``: what the client sent and the upstream answered before a rule or an
    addon changed it (only the changed side), and what changed it, in order."""
    original: dict = {"modifiedBy": list(flow.modified_by)}
    if flow.original_request is not None:
        original["request"] = _request(flow.original_request)
    if flow.original_response is not None:
        original["response"] = _response_message(flow.original_response)
    return original


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _pairs(headers: HeaderPairs) -> list[dict]:
    return [{"name": n, "value": v} for n, v in Headers(headers).text_items()]


def _request(req: FlowRequest) -> dict:
    query = req.path.partition("?")[2]
    out = {
        "method": req.method,
        "url": req.url,
        "httpVersion": req.http_version,
        "cookies": _request_cookies(req.headers),
        "headers": _pairs(req.headers),
        "queryString": [
            {"name": n, "value": v} for n, v in parse_qsl(query, keep_blank_values=True)
        ],
        "headersSize": _head_size(f"{req.method} {req.path} {req.http_version}", req.headers),
        "bodySize": req.body.size,
    }
    if req.body.size or req.body.data:
        out["postData"] = _post_data(req)
    return out


def _post_data(req: FlowRequest) -> dict:
    mime = req.header("content-type") or ""
    data: dict = {"mimeType": mime, "params": []}
    data.update(_content_text(req.body.data, mime, req.header("content-encoding")))
    data.update(_body_marks(req.body))
    if media_type(mime) == "application/x-www-form-urlencoded" and "encoding" not in data:
        pairs = parse_qsl(data["text"], keep_blank_values=True)
        data["params"] = [{"name": n, "value": v} for n, v in pairs]
    return data


def _body_marks(body: FlowBody) -> dict:
    """Custom fields that let an import tell a cut body from a whole one."""
    marks: dict = {}
    if body.truncated:
        marks["_truncated"] = True
    if body.sha256:
        marks["_sha256"] = body.sha256
    return marks


def _content_text(data: bytes, mime: str, encoding: str | None) -> dict:
    """``{"text": ...}`` for UTF-8 text, else ``{"text": base64, "encoding": "base64"}``."""
    if is_text_body(data, mime, encoding):
        try:
            return {"text": data.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {"text": base64.b64encode(data).decode("ascii"), "encoding": "base64"}


def _response(flow: Flow) -> dict:
    resp = flow.response
    if resp is None:
        # HAR requires a response; browsers write this shape for a failed request.
        return {
            "status": 0,
            "statusText": "",
            "httpVersion": "",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        }
    return _response_message(resp)


def _response_message(resp: FlowResponse) -> dict:
    mime = resp.header("content-type") or "x-unknown"
    content: dict = {"size": resp.body.size, "mimeType": mime}
    if resp.body.data:
        content.update(_content_text(resp.body.data, mime, resp.header("content-encoding")))
    content.update(_body_marks(resp.body))
    if resp.header("content-encoding"):
        content["_encoded"] = True
    return {
        "status": resp.status_code,
        "statusText": resp.reason,
        "httpVersion": resp.http_version,
        "cookies": _response_cookies(resp.headers),
        "headers": _pairs(resp.headers),
        "content": content,
        "redirectURL": resp.header("location") or "",
        "headersSize": _head_size(
            f"{resp.http_version} {resp.status_code} {resp.reason}", resp.headers
        ),
        "bodySize": resp.body.size,
    }


def _head_size(start_line: str, headers: HeaderPairs) -> int:
    return len(start_line) + 2 + sum(len(n) + len(v) + 4 for n, v in headers) + 2


def _request_cookies(headers: HeaderPairs) -> list[dict]:
    out = []
    for value in Headers(headers).get_all("cookie"):
        for part in value.decode("latin-1").split(";"):
            name, sep, val = part.strip().partition("=")
            if sep and name:
                out.append({"name": name, "value": val})
    return out


def _response_cookies(headers: HeaderPairs) -> list[dict]:
    out = []
    for value in Headers(headers).get_all("set-cookie"):
        jar = SimpleCookie()
        try:
            jar.load(value.decode("latin-1"))
        except CookieError:
            continue
        for morsel in jar.values():
            cookie: dict = {"name": morsel.key, "value": morsel.value}
            for attr, key in (("path", "path"), ("domain", "domain"), ("expires", "expires")):
                if morsel[attr]:
                    cookie[key] = morsel[attr]
            cookie["httpOnly"] = bool(morsel["httponly"])
            cookie["secure"] = bool(morsel["secure"])
            out.append(cookie)
    return out


def _ms(start: float | None, end: float | None) -> float:
    if start is None or end is None:
        return -1
    return round(max(end - start, 0.0) * 1000, 3)


def _timings(t: Timings) -> dict:
    connected = t.tls_end or t.connect_end
    return {
        "blocked": -1,
        "dns": -1,
        "connect": _ms(t.connect_start, connected),
        "ssl": _ms(t.connect_end, t.tls_end),
        "send": _ms(connected or t.start, t.request_sent),
        "wait": _ms(t.request_sent, t.response_start),
        "receive": _ms(t.response_start, t.end),
    }


def _truncation_notes(flow: Flow) -> list[str]:
    notes = []
    parts = [("request", flow.request.body)]
    if flow.response is not None:
        parts.append(("response", flow.response.body))
    for name, body in parts:
        if body.truncated:
            notes.append(
                f"{name} body truncated: {human_size(len(body.data))} of "
                f"{human_size(body.size)} recorded"
            )
    return notes


# --- reading ------------------------------------------------------------------------------


def flows_from_har(doc: object) -> list[Flow]:
    """The flows of a parsed HAR document, or HarError naming the entry and field."""
    if not isinstance(doc, dict) or not isinstance(doc.get("log"), dict):
        raise HarError('not a HAR file: the top level must be an object with a "log" object')
    entries = doc["log"].get("entries")
    if not isinstance(entries, list):
        raise HarError('not a HAR file: "log.entries" is missing or not a list')
    seen: set[str] = set()
    flows = []
    for flow in flows_from_entries(entries):
        if flow.id in seen:
            flow.id = new_flow_id()
        seen.add(flow.id)
        flows.append(flow)
    return flows


def flows_from_entries(entries: Iterable[object]) -> Iterator[Flow]:
    """The flow of each HAR entry as it comes, or HarError naming the entry and field.

    Ids are the entries' own (``_id``) where they have one: the caller sees to repeats.
    """
    for index, entry in enumerate(entries):
        yield _entry_flow(_Entry(index, entry))


class _Entry:
    """Typed access to one entry's fields; every failure names the entry and the field."""

    def __init__(self, index: int, entry: object) -> None:
        self.index = index
        if not isinstance(entry, dict):
            raise self.error("", "is not an object")
        self.data = entry

    def error(self, path: str, problem: str) -> HarError:
        where = f"{path} " if path else ""
        return HarError(f"entry {self.index}: {where}{problem}")

    def get(self, path: str, kind: type | tuple[type, ...], *, required: bool = True):
        value: object = self.data
        for key in path.split("."):
            if not isinstance(value, dict):
                raise self.error(path, "is missing")
            value = value.get(key)
        if value is None:
            if required:
                raise self.error(path, "is missing")
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(path, f"must be {_kind_name(kind)}, not {type(value).__name__}")
        return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _entry_flow(e: _Entry) -> Flow:
    start = _parse_time(e)
    request = _read_request(e, start)
    response = _read_response(e)
    flow = Flow(request=request, response=response, timings=_read_timings(e, start))
    flow.id = _read_id(e)
    flow.mode = e.get("_mode", str, required=False) or "import"
    flow.replay_of = e.get("_replayOf", str, required=False)
    error = e.get("_error", (dict, str), required=False)
    if isinstance(error, str):  # Chromium writes the network error as a string
        flow.error = FlowError("BrowserError", error, Phase.STATUS_LINE, start)
    elif error is not None:
        flow.error = _read_error(e, error, start)
    elif response is None:
        flow.error = FlowError(
            "NoResponse", "the HAR entry has no response (status 0)", Phase.STATUS_LINE, start
        )
    return flow


def _read_id(e: _Entry) -> str:
    value = e.get("_id", str, required=False)
    if value and re.fullmatch(r"[0-9a-f]{32}", value):
        return value
    return new_flow_id()


def _parse_time(e: _Entry) -> float:
    text = e.get("startedDateTime", str)
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise e.error("startedDateTime", f"is not an ISO 8601 date: {text!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _read_headers(e: _Entry, path: str) -> HeaderPairs:
    items = e.get(path, list, required=False) or []
    out: HeaderPairs = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise e.error(where, "must be an object with name and value")
        name, value = item.get("name"), item.get("value")
        if not isinstance(name, str) or not name:
            raise e.error(f"{where}.name", "is missing")
        if not isinstance(value, str):
            raise e.error(f"{where}.value", "is missing")
        if name.startswith(":"):
            continue  # HTTP/2 pseudo-headers in browser HARs; the URL and method carry them
        if not is_token(name):
            raise e.error(f"{where}.name", f"is not a valid header name: {name!r}")
        if any(c in value for c in "\r\n\x00"):
            raise e.error(f"{where}.value", "contains a line break or NUL")
        try:
            out.append((name.encode("latin-1"), value.encode("latin-1")))
        except UnicodeEncodeError:
            out.append((name.encode("utf-8"), value.encode("utf-8")))
    return out


def _read_request(e: _Entry, start: float) -> FlowRequest:
    method = e.get("request.method", str)
    if not is_token(method):
        raise e.error("request.method", f"is not an HTTP method: {method!r}")
    url = e.get("request.url", str)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise e.error("request.url", f"is not an absolute http(s) URL: {url!r}")
    try:
        port = parts.port or default_port(parts.scheme)
    except ValueError:
        raise e.error("request.url", f"has a bad port: {url!r}") from None
    # The target exactly as written after the authority (an empty "?" kept), minus a fragment.
    path = url.split("://", 1)[1][len(parts.netloc) :].partition("#")[0] or "/"
    headers = _read_headers(e, "request.headers")
    if not any(name.lower() == b"host" for name, _ in headers):
        # HTTP/2 browser captures carry :authority instead; HTTP/1.1 needs Host first.
        netloc = parts.netloc.rpartition("@")[2]
        headers.insert(0, (b"Host", netloc.encode("ascii" if netloc.isascii() else "idna")))
    size = e.get("request.bodySize", int, required=False)
    post = e.get("request.postData", dict, required=False) or {}
    body = _read_body(e, "request.postData", post, size)
    return FlowRequest(
        method=method,
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        path=path,
        http_version=_version(e, "request.httpVersion"),
        headers=headers,
        body=body,
        timestamp=start,
    )


def _version(e: _Entry, path: str) -> str:
    value = (e.get(path, str, required=False) or "").upper()
    if value in ("HTTP/2", "HTTP/2.0", "H2"):  # ours, Chromium's and Firefox's, a tool's ALPN
        return "HTTP/2"  # so replay speaks it again (gRPC servers take nothing else)
    # "h3" and anything else: replay speaks HTTP/1.1 (no HTTP/3 client here).
    return value if value in ("HTTP/1.0", "HTTP/1.1") else "HTTP/1.1"


def _read_text(e: _Entry, path: str) -> bytes:
    text = e.get(f"{path}.text", str, required=False)
    if text is None:
        params = e.get(f"{path}.params", list, required=False) or []
        return _params_body(e, path, params)
    encoding = e.get(f"{path}.encoding", str, required=False)
    if encoding is None:
        return text.encode("utf-8")
    if encoding != "base64":
        raise e.error(f"{path}.encoding", f'must be "base64", not {encoding!r}')
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise e.error(f"{path}.text", "is not valid base64") from None


def _params_body(e: _Entry, path: str, params: list) -> bytes:
    pairs = []
    for i, item in enumerate(params):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise e.error(f"{path}.params[{i}].name", "is missing")
        pairs.append((item["name"], str(item.get("value", ""))))
    return urlencode(pairs).encode("ascii")


def _read_response(e: _Entry) -> FlowResponse | None:
    status = e.get("response.status", int)
    if status == 0:
        return None
    if not 100 <= status <= 999:
        raise e.error("response.status", f"is not an HTTP status code: {status}")
    headers = _read_headers(e, "response.headers")
    content = e.get("response.content", dict, required=False) or {}
    size = e.get("response.content.size", int, required=False) if content else None
    body = _read_body(e, "response.content", content, size)
    if not content.get("_encoded") and body.data and not body.truncated:
        headers = _drop_content_encoding(headers, len(body.data))
    return FlowResponse(
        status_code=status,
        reason=e.get("response.statusText", str, required=False) or "",
        http_version=_version(e, "response.httpVersion"),
        headers=headers,
        body=body,
    )


def _read_body(e: _Entry, path: str, fields: dict, size: int | None) -> FlowBody:
    """A body from ``text``/``params``; cut when marked so or when the text is left out."""
    has_text = "text" in fields or "params" in fields
    data = _read_text(e, path) if has_text else b""
    digest = fields.get("_sha256") if isinstance(fields.get("_sha256"), str) else None
    if fields.get("_truncated") or (not has_text and size is not None and size > 0):
        # Browsers leave out the content of large or binary bodies; ours mark cut ones.
        full = max(size or 0, len(data))
        return FlowBody(data=data, size=full, truncated=full > len(data), sha256=digest)
    return _body(data)


def _drop_content_encoding(headers: HeaderPairs, size: int) -> HeaderPairs:
    fields = Headers(list(headers))
    if fields.get("content-encoding") is None:
        return headers
    fields.remove("content-encoding")
    if fields.get("content-length") is not None:
        fields.set("Content-Length", str(size))
    return fields.raw


def _body(data: bytes) -> FlowBody:
    return FlowBody(
        data=data, size=len(data), truncated=False, sha256=hashlib.sha256(data).hexdigest()
    )


def _read_timings(e: _Entry, start: float) -> Timings:
    total = e.get("time", (int, float), required=False)
    t = Timings(
        start=start, end=start + total / 1000 if total is not None and total >= 0 else start
    )
    raw = e.get("timings", dict, required=False) or {}
    steps = {k: raw.get(k) for k in ("blocked", "dns", "connect", "send", "wait", "receive")}
    if not all(isinstance(v, int | float) or v is None for v in steps.values()):
        raise e.error("timings", "values must be numbers")
    ms = {k: (v / 1000 if isinstance(v, int | float) and v > 0 else 0.0) for k, v in steps.items()}
    cursor = start + ms["blocked"] + ms["dns"]
    if isinstance(steps["connect"], int | float) and steps["connect"] >= 0:
        t.connect_start = cursor
        cursor += ms["connect"]
        t.connect_end = cursor
    t.request_sent = cursor + ms["send"]
    t.response_start = t.request_sent + ms["wait"]
    return t


def _read_error(e: _Entry, error: dict, start: float) -> FlowError:
    phase_text = error.get("phase", Phase.STATUS_LINE.value)
    try:
        phase = Phase(phase_text)
    except ValueError:
        raise e.error("_error.phase", f"is not a known phase: {phase_text!r}") from None
    return FlowError(
        str(error.get("class") or "Error"), str(error.get("message") or ""), phase, start
    )
