"""What the flow list shows of one flow (``FlowRow``), and the list's sort keys.

Only metadata lives here (no headers, no bodies). ``flow_index.FlowIndex`` keeps rows
only for the flows on screen and those the store does not have yet.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from sys import intern  # hosts, types and reasons repeat: one string each saves memory

from inspector import grpc
from inspector.content import media_type
from inspector.flow import Flow
from inspector.store import FlowSummary
from protocol.authority import format_authority

SORT_KEYS: dict[str, Callable[[FlowRow], object]] = {}
_MEDIA_TYPES: dict[str | None, str] = {}  # Content-Type value -> interned media type
_MEDIA_TYPES_MAX = 4096


def _media_type(content_type: str | None) -> str:
    """media_type(), interned and remembered: a flood repeats a few types."""
    found = _MEDIA_TYPES.get(content_type)
    if found is None:
        found = intern(media_type(content_type))
        if len(_MEDIA_TYPES) < _MEDIA_TYPES_MAX:
            _MEDIA_TYPES[content_type] = found
    return found


_AUTHORITIES: dict[tuple[str, str, int], str] = {}  # (scheme, host, port) -> interned text


def _authority(scheme: str, host: str, port: int) -> str:
    """format_authority(), interned and remembered: a session has few distinct hosts."""
    key = (scheme, host, port)
    found = _AUTHORITIES.get(key)
    if found is None:
        found = intern(format_authority(scheme, host, port))
        if len(_AUTHORITIES) < _MEDIA_TYPES_MAX:
            _AUTHORITIES[key] = found
    return found


@dataclass(slots=True)
class FlowRow:
    """What the flow list shows of one flow."""

    id: str
    seq: int  # the store's row id (capture order); live rows count on past every stored one
    start: float
    method: str
    scheme: str
    host: str  # what ~d matches; the authority adds brackets and a non-default port
    authority: str
    path: str
    status: int | None = None
    reason: str = ""
    error: str | None = None  # exception class when the exchange failed
    content_type: str = ""
    size: int | None = None  # response body size on the wire
    duration: float | None = None
    marked: bool = False
    replay_of: str | None = None
    held: bool = False
    finished: bool = False
    version: str = ""  # HTTP version where it is not 1.1: "2", "1.0"
    modified: bool = False  # changed by a rule or an addon
    websocket: bool = False
    grpc: str | None = None  # None: not gRPC; else the gRPC status name ("" unknown yet)

    @classmethod
    def from_flow(cls, flow: Flow, seq: int) -> FlowRow:
        req = flow.request
        row = cls(
            id=flow.id,
            seq=seq,
            start=flow.timings.start,
            method=intern(req.method),
            scheme=intern(req.scheme),
            host=intern(req.host),
            authority=intern(req.authority),
            path=req.path if req.method != "CONNECT" else req.url,
            replay_of=flow.replay_of,
            marked=flow.marked,
            version=short_version(req.http_version),
        )
        row.update(flow)
        return row

    @classmethod
    def from_summary(cls, s: FlowSummary) -> FlowRow:
        """A row from the store's indexed columns (no JSON, no bodies)."""
        return cls(
            id=s.id,
            seq=0,
            start=s.start,
            method=intern(s.method),
            scheme=intern(s.scheme),
            host=intern(s.host),
            authority=_authority(s.scheme, s.host, s.port),
            path=s.path if s.method != "CONNECT" else s.url,
            status=s.status,
            reason=intern(s.reason or ""),
            error=s.error_class,
            content_type=_media_type(s.content_type),
            size=s.response_size,
            duration=s.duration,
            marked=s.marked,
            replay_of=s.replay_of,
            finished=s.duration is not None,
            modified=s.modified,
            version=short_version(s.http_version),
            websocket=s.status == 101,
            grpc="" if (s.content_type or "").startswith("application/grpc") else None,
        )

    def update(self, flow: Flow) -> None:
        """Refresh the parts of a row that change while an exchange progresses."""
        resp = flow.response
        if resp is not None:
            self.status = resp.status_code
            self.reason = intern(resp.reason)
            self.content_type = _media_type(resp.header("content-type"))
            self.size = resp.body.size
        self.error = flow.error.exc_class if flow.error is not None else None
        self.duration = flow.timings.duration
        self.finished = flow.finished
        self.marked = flow.marked
        self.modified = flow.modified
        self.websocket = bool(flow.websocket) or self.status == 101
        if grpc.is_grpc(flow):
            status = grpc.status(flow)
            self.grpc = status.name if status is not None else ""

    @property
    def shown_scheme(self) -> str:
        """``https``, ``http``; ``wss``/``ws`` for a WebSocket."""
        if self.websocket:
            return "wss" if self.scheme == "https" else "ws"
        return self.scheme

    @property
    def url(self) -> str:
        if self.method == "CONNECT":
            return self.path
        return f"{self.scheme}://{self.authority}{self.path}"


def short_version(http_version: str) -> str:
    """``HTTP/2`` -> ``2``, ``HTTP/1.0`` -> ``1.0``; HTTP/1.1, the usual one, -> ``""``."""
    version = http_version.removeprefix("HTTP/")
    if version == "1.1":
        return ""
    return intern(version.removesuffix(".0") if version.startswith("2") else version)


SORT_KEYS.update(
    {
        "time": operator.attrgetter("seq"),
        "method": operator.attrgetter("method"),
        "host": lambda r: (r.authority, r.scheme),
        "version": operator.attrgetter("version"),
        "path": operator.attrgetter("path"),
        "status": lambda r: (r.status is None, r.status or 0),
        "type": operator.attrgetter("content_type"),
        "size": lambda r: r.size or 0,
        "duration": lambda r: r.duration if r.duration is not None else -1.0,
    }
)
