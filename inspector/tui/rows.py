"""The flow list's model: one small metadata row per flow, and the ordered, filtered view of them.

Only metadata lives here (no headers, no bodies), so memory grows by a few hundred
bytes per flow; everything else is read from the store on demand.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
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
    seq: int  # capture order: ties in sorted views and the default order
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


class FlowIndex:
    """Every known flow's row in capture order, and the visible (filtered, sorted) view."""

    def __init__(self) -> None:
        self.rows: dict[str, FlowRow] = {}
        self._next_seq = 0
        self.view: list[str] = []
        self.matching: set[str] | None = None  # ids passing the filter; None: no filter
        self.sort_key: str | None = None
        self.sort_reverse = False
        self.only_marked = False  # show only marked rows (M)
        self.modified: set[str] = set()  # ids of rows changed by a rule or an addon

    def __len__(self) -> int:
        return len(self.view)

    def row_at(self, index: int) -> FlowRow | None:
        if 0 <= index < len(self.view):
            return self.rows.get(self.view[index])
        return None

    def position(self, flow_id: str) -> int | None:
        """Index of ``flow_id`` in the view (linear: use on user actions, not per frame)."""
        try:
            return self.view.index(flow_id)
        except ValueError:
            return None

    def add(self, row: FlowRow) -> None:
        """Add a row loaded from the store (already filtered by whoever loaded it)."""
        row.seq = self._next_seq
        self._next_seq += 1
        self.rows[row.id] = row
        if row.modified:
            self.modified.add(row.id)
        if (self.matching is None or row.id in self.matching) and self._marked_ok(row):
            self.view.append(row.id)

    def _marked_ok(self, row: FlowRow) -> bool:
        return row.marked or not self.only_marked

    def upsert(self, flow: Flow, matches: bool | None) -> bool:
        """Record a live flow event; ``matches`` is the active filter's verdict. True if new."""
        row = self.rows.get(flow.id)
        is_new = row is None
        if row is None:
            row = FlowRow.from_flow(flow, self._next_seq)
            self._next_seq += 1
            self.rows[flow.id] = row
        else:
            row.update(flow)
        if row.modified:
            self.modified.add(flow.id)
        else:  # a user's edit reverted
            self.modified.discard(flow.id)
        if self.matching is not None and matches is not None:
            visible = flow.id in self.matching
            if matches and not visible:
                self.matching.add(flow.id)
                if self._marked_ok(row):
                    self.view.append(flow.id)
            elif not matches and visible:
                self.matching.discard(flow.id)
                if flow.id in self.view:
                    self.view.remove(flow.id)
        elif is_new and self.matching is None and self._marked_ok(row):
            self.view.append(flow.id)
        return is_new

    def rebuild_row(self, flow: Flow) -> None:
        """Take every field from ``flow`` again (the user edited its request)."""
        old = self.rows.get(flow.id)
        if old is not None:
            row = FlowRow.from_flow(flow, old.seq)
            row.held = old.held
            self.rows[flow.id] = row

    def remove(self, ids: Iterable[str]) -> None:
        gone = set(ids)
        for flow_id in gone:
            self.rows.pop(flow_id, None)
        self.modified -= gone
        if self.matching is not None:
            self.matching -= gone
        self.view = [i for i in self.view if i not in gone]

    def clear(self) -> None:
        self.rows.clear()
        self.modified.clear()
        self.view.clear()
        if self.matching is not None:
            self.matching.clear()

    def filter_rows(self, test: Callable[[FlowRow], bool]) -> None:
        """Show the rows passing ``test``: one pass over the rows builds the view too."""
        view = [flow_id for flow_id, row in self.rows.items() if test(row)]
        self.matching = set(view)
        if self.sorted or self.only_marked:
            self.resort()
        else:
            self.view = view  # ``rows`` is in capture order already

    def set_matching(self, ids: set[str] | None) -> None:
        """Apply a filter result (None: show everything) and rebuild the view."""
        self.matching = ids
        self.resort()

    def set_sort(self, key: str | None, reverse: bool = False) -> None:
        if key is not None and key not in SORT_KEYS:
            raise KeyError(key)
        self.sort_key, self.sort_reverse = key, reverse
        self.resort()

    def set_only_marked(self, only: bool) -> None:
        self.only_marked = only
        self.resort()

    def resort(self) -> None:
        """Rebuild the view from every row, the filter, the marks and the sort order."""
        matching = self.matching
        if not self.sorted and not self.only_marked:
            # ``rows`` keeps insertion order, which is capture order: no sort needed.
            self.view = (
                list(self.rows) if matching is None else [i for i in self.rows if i in matching]
            )
            return
        rows = self.rows.values()
        if matching is not None:
            rows = [r for r in rows if r.id in matching]
        if self.only_marked:
            rows = [r for r in rows if r.marked]
        if not self.sorted:
            self.view = [r.id for r in rows]
            return
        ordered = sorted(rows, key=SORT_KEYS[self.sort_key or "time"], reverse=self.sort_reverse)
        self.view = [r.id for r in ordered]

    @property
    def sorted(self) -> bool:
        """True when the view is in an order other than capture order."""
        return self.sort_key not in (None, "time") or self.sort_reverse
