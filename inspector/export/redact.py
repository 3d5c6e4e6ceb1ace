"""The one redaction rule set: mask credentials in a flow before it leaves the machine.

Every export format calls ``redact_flow`` and then writes the copy it returns, so
what is masked is the same in HAR, curl, raw and pytest output. Masked:

- ``Authorization`` / ``Proxy-Authorization`` (the scheme word is kept: ``Bearer REDACTED``),
- ``Cookie`` and ``Set-Cookie`` values (cookie names and attributes are kept),
- any header whose name looks like a credential (``SENSITIVE_NAME``: api key, token,
  secret, password, auth, ...),
- query parameters and URL-encoded form fields with such names,
- JSON body fields with such names, at any depth.
"""

from __future__ import annotations

import copy
import json
import re
from urllib.parse import parse_qsl

from inspector.content import media_type
from inspector.flow import Body, Flow
from protocol.headers import HeaderPairs, Headers

MASK = "REDACTED"
SENSITIVE_NAME = re.compile(
    r"api[-_]?key|token|secret|passw(?:or)?d|auth|credential|session[-_]?id|signature",
    re.IGNORECASE,
)
_AUTH_HEADERS = (b"authorization", b"proxy-authorization")


def is_sensitive(name: str) -> bool:
    """True for a header, parameter or field name that looks like it carries a credential."""
    return SENSITIVE_NAME.search(name) is not None


def redact_flow(flow: Flow) -> Flow:
    """A deep copy of ``flow`` with every credential masked."""
    out = copy.deepcopy(flow)
    req = out.request
    req.path = redact_target(req.path)
    req.headers = redact_headers(req.headers)
    req.trailers = redact_headers(req.trailers)
    req.body, req.headers = _redact_message_body(req.body, req.headers)
    if out.response is not None:
        resp = out.response
        resp.headers = redact_headers(resp.headers)
        resp.trailers = redact_headers(resp.trailers)
        resp.body, resp.headers = _redact_message_body(resp.body, resp.headers)
    return out


def redact_headers(headers: HeaderPairs) -> HeaderPairs:
    return [(name, _redact_header_value(name, value)) for name, value in headers]


def _redact_header_value(name: bytes, value: bytes) -> bytes:
    key = name.lower()
    if key in _AUTH_HEADERS:
        scheme, sep, _ = value.partition(b" ")
        return scheme + b" " + MASK.encode() if sep else MASK.encode()
    if key == b"cookie":
        return b"; ".join(_mask_cookie(part.strip()) for part in value.split(b";"))
    if key == b"set-cookie":
        first, sep, attributes = value.partition(b";")
        return _mask_cookie(first.strip()) + sep + attributes
    if is_sensitive(name.decode("latin-1")):
        return MASK.encode()
    return value


def _mask_cookie(pair: bytes) -> bytes:
    name, sep, _ = pair.partition(b"=")
    return name + b"=" + MASK.encode() if sep else pair


def redact_target(target: str) -> str:
    """Mask credential-looking query parameters of an origin-form target."""
    path, sep, query = target.partition("?")
    if not sep or not query:
        return target
    return f"{path}?{redact_query(query)}"


def redact_query(query: str) -> str:
    """Mask sensitive ``name=value`` pairs, leaving every other byte of the query as it was."""
    parts = []
    for part in query.split("&"):
        name, sep, _ = part.partition("=")
        if sep and is_sensitive(_unquote_name(name)):
            part = f"{name}={MASK}"
        parts.append(part)
    return "&".join(parts)


def _unquote_name(name: str) -> str:
    pairs = parse_qsl(f"{name}=x", keep_blank_values=True)
    return pairs[0][0] if pairs else name


def _redact_message_body(body: Body, headers: HeaderPairs) -> tuple[Body, HeaderPairs]:
    if not body.data or body.truncated:
        # A cut JSON or form body cannot be parsed; leave it alone rather than guess.
        return body, headers
    h = Headers(headers)
    content_type = h.get("content-type")
    new = redact_body_bytes(body.data, content_type.decode("latin-1") if content_type else None)
    if new == body.data:
        return body, headers
    if h.get("content-length") is not None:
        # A masked body changes length; the header must tell the truth or the message breaks.
        h.set("Content-Length", str(len(new)))
    return Body(data=new, size=len(new), truncated=False, sha256=None), h.raw


def redact_body_bytes(data: bytes, content_type: str | None) -> bytes:
    """Mask sensitive fields of a JSON or URL-encoded form body; other bodies are unchanged."""
    mt = media_type(content_type)
    if mt == "application/x-www-form-urlencoded":
        return _redact_form(data)
    stripped = data.lstrip()[:1]
    if mt == "application/json" or mt.endswith("+json") or stripped in (b"{", b"["):
        return _redact_json(data)
    return data


def _redact_form(data: bytes) -> bytes:
    try:
        return redact_query(data.decode("ascii")).encode("ascii")
    except UnicodeDecodeError:
        return data


def _redact_json(data: bytes) -> bytes:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data
    masked, changed = _mask_json(value)
    if not changed:
        return data
    return json.dumps(masked, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _mask_json(value: object) -> tuple[object, bool]:
    if isinstance(value, dict):
        changed = False
        out = {}
        for key, item in value.items():
            if is_sensitive(key) and not isinstance(item, dict | list):
                out[key] = MASK
                changed = True
            else:
                out[key], sub = _mask_json(item)
                changed = changed or sub
        return out, changed
    if isinstance(value, list):
        items = [_mask_json(item) for item in value]
        return [v for v, _ in items], any(c for _, c in items)
    return value, False
