"""Structured comparison of a recorded response with a new one (``inspector replay --diff``).

Status, headers and body are compared separately. Headers that change on every
response (``DEFAULT_IGNORED_HEADERS``) are left out; bodies are compared after
undoing Content-Encoding: JSON structurally (``$.items[2].price: 10 -> 12``), text
by a unified diff, anything else by size and SHA-256.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from inspector.content import ContentError, decode, looks_textual
from inspector.flow import FlowResponse
from inspector.render import human_size, status_text
from protocol.headers import Headers

# Headers that differ between two identical answers: clocks, caches, per-response ids,
# session cookies and message framing (a changed body is reported by the body diff).
DEFAULT_IGNORED_HEADERS = frozenset(
    {
        "date",
        "server",
        "etag",
        "last-modified",
        "expires",
        "age",
        "set-cookie",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "via",
        "x-request-id",
        "x-runtime",
    }
)
MAX_BODY_LINES = 40  # lines of a text body diff, or JSON differences, shown per response
_NOTHING = object()  # a JSON value that is absent on one side


@dataclass(slots=True)
class ResponseDiff:
    """What differs between two responses; empty lists mean the part matches."""

    status: str | None = None
    headers: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return self.status is None and not self.headers and not self.body

    @property
    def parts(self) -> list[str]:
        """The names of the parts that differ: ``status``, ``headers``, ``body``."""
        names = [("status", self.status), ("headers", self.headers), ("body", self.body)]
        return [name for name, value in names if value]

    def lines(self) -> list[str]:
        """The difference as readable lines (empty when the responses match)."""
        out = [f"status: {self.status}"] if self.status else []
        return out + self.headers + self.body


def compare(
    recorded: FlowResponse | None, new: FlowResponse | None, ignore: Iterable[str] = ()
) -> ResponseDiff:
    """Compare two responses (None: no response), ignoring the default headers and ``ignore``."""
    if recorded is None or new is None:
        if recorded is new:
            return ResponseDiff()
        return ResponseDiff(status=f"{_status(recorded)} -> {_status(new)}")
    ignored = DEFAULT_IGNORED_HEADERS | {name.lower() for name in ignore}
    diff = ResponseDiff()
    if recorded.status_code != new.status_code:
        diff.status = f"{_status(recorded)} -> {_status(new)}"
    diff.headers = header_differences(recorded, new, ignored)
    diff.body = body_differences(recorded, new)
    return diff


def _status(response: FlowResponse | None) -> str:
    if response is None:
        return "no response"
    return status_text(response.status_code, response.reason)


def header_differences(
    recorded: FlowResponse, new: FlowResponse, ignored: frozenset[str]
) -> list[str]:
    """``header + Name: value`` for added, ``header - Name: value`` for removed,
    ``header ~ Name: old -> new`` for a single value that changed."""
    old = _header_map(recorded, ignored)
    now = _header_map(new, ignored)
    out = []
    for key in sorted(old.keys() | now.keys()):
        before, after = old.get(key, ([], "")), now.get(key, ([], ""))
        if Counter(before[0]) == Counter(after[0]):
            continue
        name = after[1] or before[1]
        if len(before[0]) == 1 and len(after[0]) == 1:
            out.append(f"header ~ {name}: {before[0][0]} -> {after[0][0]}")
            continue
        gone = Counter(before[0]) - Counter(after[0])
        came = Counter(after[0]) - Counter(before[0])
        out += [f"header - {name}: {v}" for v in gone.elements()]
        out += [f"header + {name}: {v}" for v in came.elements()]
    return out


def _header_map(
    response: FlowResponse, ignored: frozenset[str]
) -> dict[str, tuple[list[str], str]]:
    out: dict[str, tuple[list[str], str]] = {}
    for name, value in Headers(response.headers).text_items():
        key = name.lower()
        if key not in ignored:
            out.setdefault(key, ([], name))[0].append(value)
    return out


def body_differences(recorded: FlowResponse, new: FlowResponse) -> list[str]:
    old_body, new_body = recorded.body, new.body
    if old_body.truncated or new_body.truncated:
        return _digest_differences(recorded, new)
    if old_body.data == new_body.data:
        return []
    old_data, new_data = _decoded(recorded), _decoded(new)
    if old_data == new_data:
        return []
    old_json, new_json = _json(old_data), _json(new_data)
    if old_json is not _NOTHING and new_json is not _NOTHING:
        return _cap(list(json_differences(old_json, new_json)))
    if looks_textual(old_data) and looks_textual(new_data):
        return _cap(_text_differences(old_data, new_data))
    return [f"body: {_fingerprint(old_data)} -> {_fingerprint(new_data)}"]


def _decoded(response: FlowResponse) -> bytes:
    try:
        data, _ = decode(response.body.data, response.header("content-encoding"))
    except ContentError:
        return response.body.data
    return data


def _digest_differences(recorded: FlowResponse, new: FlowResponse) -> list[str]:
    # Only part of a body was kept; the size and the digest of the whole still tell.
    old_body, new_body = recorded.body, new.body
    if old_body.size == new_body.size and old_body.sha256 and old_body.sha256 == new_body.sha256:
        return []
    if old_body.sha256 is None or new_body.sha256 is None:
        # Without a digest of the whole, the same size and the same kept bytes is all we know.
        kept = min(len(old_body.data), len(new_body.data))
        if old_body.size == new_body.size and old_body.data[:kept] == new_body.data[:kept]:
            return []
    old = f"{human_size(old_body.size)} sha256 {(old_body.sha256 or '?')[:12]}"
    now = f"{human_size(new_body.size)} sha256 {(new_body.sha256 or '?')[:12]}"
    return [f"body (truncated in the recording): {old} -> {now}"]


def _fingerprint(data: bytes) -> str:
    return f"{human_size(len(data))} sha256 {hashlib.sha256(data).hexdigest()[:12]}"


def _json(data: bytes) -> object:
    if not data.strip():
        return _NOTHING
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return _NOTHING


def json_differences(old: object, new: object, path: str = "$") -> Iterable[str]:
    """One line per changed (``->``), added (``+``) or removed (``-``) value, by JSON path."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            sub = _key_path(path, key)
            if key not in new:
                yield f"{sub}: - {_short(old[key])}"
            elif key not in old:
                yield f"{sub}: + {_short(new[key])}"
            else:
                yield from json_differences(old[key], new[key], sub)
    elif isinstance(old, list) and isinstance(new, list):
        for i in range(max(len(old), len(new))):
            sub = f"{path}[{i}]"
            if i >= len(new):
                yield f"{sub}: - {_short(old[i])}"
            elif i >= len(old):
                yield f"{sub}: + {_short(new[i])}"
            else:
                yield from json_differences(old[i], new[i], sub)
    elif old != new or type(old) is not type(new):
        yield f"{path}: {_short(old)} -> {_short(new)}"


def _key_path(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _short(value: object, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text_differences(old: bytes, new: bytes) -> list[str]:
    old_lines = old.decode("utf-8", errors="replace").splitlines()
    new_lines = new.decode("utf-8", errors="replace").splitlines()
    diff = difflib.unified_diff(old_lines, new_lines, "recorded", "replayed", n=1, lineterm="")
    return [f"body {line}" if line.startswith(("---", "+++")) else line for line in diff]


def _cap(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_BODY_LINES:
        return lines
    hidden = len(lines) - MAX_BODY_LINES
    return [*lines[:MAX_BODY_LINES], f"... {hidden} more lines of body differences"]
