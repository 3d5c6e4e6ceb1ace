"""The one redaction rule set: mask credentials in a flow before it leaves the machine.

Every export format calls ``redact_flow`` and then writes the copy it returns, so
what is masked is the same in HAR, curl, raw and pytest output. Masked:

- ``Authorization`` / ``Proxy-Authorization`` (the scheme word is kept: ``Bearer REDACTED``),
- ``Cookie`` and ``Set-Cookie`` values (cookie names and attributes are kept),
- any header whose name looks like a credential (``SENSITIVE_NAME``: api key, token,
  secret, password, auth, ...),
- query parameters and URL-encoded form fields with such names,
- JSON body fields with such names, at any depth,
- and then every other occurrence of a value masked above, anywhere in the flow (a
  server that echoes the request back would otherwise leak the credential in its body).
"""

from __future__ import annotations

import copy
import json
import re
from urllib.parse import parse_qsl

from inspector.content import media_type
from inspector.flow import Flow, FlowBody
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
    """A deep copy of ``flow`` with every credential masked (in the originals kept beside
    what a rule or an addon changed, too)."""
    secrets = _secrets(flow)
    out = copy.deepcopy(flow)
    for req in (out.request, out.original_request):
        if req is not None:
            path = redact_target(req.path).encode("latin-1")
            req.path = _scrub(path, secrets).decode("latin-1")
            req.headers = _scrub_headers(redact_headers(req.headers), secrets)
            req.trailers = _scrub_headers(redact_headers(req.trailers), secrets)
            req.body, req.headers = _redact_message_body(req.body, req.headers, secrets)
    for resp in (out.response, out.original_response):
        if resp is not None:
            resp.headers = _scrub_headers(redact_headers(resp.headers), secrets)
            resp.trailers = _scrub_headers(redact_headers(resp.trailers), secrets)
            resp.body, resp.headers = _redact_message_body(resp.body, resp.headers, secrets)
    # A rule's text can hold the credential it sets (-H "/Authorization/Bearer ...").
    out.modified_by = [
        _scrub(m.encode(), secrets).decode("utf-8", "replace") for m in out.modified_by
    ]
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


def _redact_message_body(
    body: FlowBody, headers: HeaderPairs, secrets: list[bytes]
) -> tuple[FlowBody, HeaderPairs]:
    if not body.data:
        return body, headers
    if body.truncated:
        # A cut JSON or form body cannot be parsed; known secret values are still masked.
        scrubbed = _scrub(body.data, secrets)
        if scrubbed == body.data:
            return body, headers
        return FlowBody(data=scrubbed, size=body.size, truncated=True, sha256=None), headers
    h = Headers(headers)
    content_type = h.get("content-type")
    new = redact_body_bytes(body.data, content_type.decode("latin-1") if content_type else None)
    new = _scrub(new, secrets)
    if new == body.data:
        return body, headers
    if h.get("content-length") is not None:
        # A masked body changes length; the header must tell the truth or the message breaks.
        h.set("Content-Length", str(len(new)))
    return FlowBody(data=new, size=len(new), truncated=False, sha256=None), h.raw


# --- known secret values, masked wherever else they appear ---------------------------------

_MIN_SECRET = 4  # shorter values ("1", "yes") would mask unrelated text


def _secrets(flow: Flow) -> list[bytes]:
    """The credential values the rules mask in ``flow``, longest first."""
    found: set[bytes] = set()
    requests = [r for r in (flow.request, flow.original_request) if r is not None]
    responses = [r for r in (flow.response, flow.original_response) if r is not None]
    messages = [(m.headers, m.body) for m in (*requests, *responses)]
    for headers, body in messages:
        for name, value in headers:
            found.update(_header_secrets(name, value))
        content_type = Headers(headers).get("content-type")
        if not body.truncated:
            ctype = content_type.decode("latin-1") if content_type else None
            found.update(_body_secrets(body.data, ctype))
    for req in requests:
        found.update(_pair_secrets(req.path.partition("?")[2]))
    mask = MASK.encode()
    return sorted((s for s in found if len(s) >= _MIN_SECRET and s != mask), key=len, reverse=True)


def _header_secrets(name: bytes, value: bytes) -> list[bytes]:
    key = name.lower()
    if key in _AUTH_HEADERS:
        return [value, value.partition(b" ")[2].strip()]
    if key == b"cookie":
        return [part.partition(b"=")[2].strip() for part in value.split(b";")]
    if key == b"set-cookie":
        return [value.partition(b";")[0].partition(b"=")[2].strip()]
    return [value] if is_sensitive(name.decode("latin-1")) else []


def _pair_secrets(query: str) -> list[bytes]:
    out = []
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if sep and is_sensitive(_unquote_name(name)):
            out.append(value.encode("latin-1", errors="replace"))
            decoded = parse_qsl(f"x={value}", keep_blank_values=True)
            if decoded:
                out.append(decoded[0][1].encode("utf-8"))
    return out


def _body_secrets(data: bytes, content_type: str | None) -> list[bytes]:
    if media_type(content_type) == "application/x-www-form-urlencoded":
        return _pair_secrets(data.decode("latin-1"))
    if data.lstrip()[:1] not in (b"{", b"["):
        return []
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return []
    return [v.encode("utf-8") for v in _json_secret_values(value)]


def _json_secret_values(value: object) -> list[str]:
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            if (
                is_sensitive(key)
                and isinstance(item, str | int | float)
                and not isinstance(item, bool)
            ):
                out.append(str(item))
            else:
                out += _json_secret_values(item)
        return out
    if isinstance(value, list):
        return [v for item in value for v in _json_secret_values(item)]
    return []


def _scrub(data: bytes, secrets: list[bytes]) -> bytes:
    for secret in secrets:
        if secret in data:
            data = data.replace(secret, MASK.encode())
    return data


def _scrub_headers(headers: HeaderPairs, secrets: list[bytes]) -> HeaderPairs:
    return [(name, _scrub(value, secrets)) for name, value in headers]


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
