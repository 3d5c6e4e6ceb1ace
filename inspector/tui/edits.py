"""The user's edits, recorded as a change like a rule's or an addon's, and undone by V.

An edit made in the UI (``e`` on a held or a recorded flow, ``D`` then ``e``, in the
built-in editor or ``$EDITOR``) keeps the message as it was beside the edited one, in
``flow.original_request`` / ``flow.original_response``, and names ``UI_EDIT`` in
``flow.modified_by``: the row's ✎ marker, ``~modified``, the ``[modified]`` dump suffix,
the Changes tab and HAR's ``_original`` all show it as they show a rule's change. When a
rule or an addon kept an original already, that one stays: the original is what the
client sent and what the upstream answered.

``EditLog`` remembers, per flow and message, the message as it was before the user's first
edit of it; ``revert`` puts that back (in place: the proxy holds the same objects while a
flow is held) and clears the record. An edit that brings a message back to what it was
counts as a revert. No Textual here: the model is testable alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.changes import capped, copy_request, copy_response
from inspector.flow import Flow, FlowRequest, FlowResponse
from inspector.tui.editing import apply_text, editable_stage

UI_EDIT = "edited in the UI"
PARTS = ("request", "response")

Message = FlowRequest | FlowResponse


@dataclass(slots=True)
class _Before:
    """One message before the user's first edit of it, and the flow's original then."""

    message: Message
    original: Message | None


@dataclass(slots=True)
class _FlowEdits:
    parts: dict[str, _Before]
    labelled: bool  # UI_EDIT was named already (an edit of an earlier run of the UI)


def _state(m: Message) -> tuple:
    """What an edit can change of a message (trailers and timestamps it cannot)."""
    if isinstance(m, FlowRequest):
        return (m.method, m.scheme, m.host, m.port, m.path, m.http_version, tuple(m.headers),
                m.body.data)  # fmt: skip
    return (m.status_code, m.reason, m.http_version, tuple(m.headers), m.body.data)


def _copy(m: Message) -> Message:
    return copy_request(m) if isinstance(m, FlowRequest) else copy_response(m)


def _restore(target: Message, source: Message) -> None:
    """Put every field of ``source`` into ``target`` in place (the proxy may hold it)."""
    for name in type(target).__slots__:
        setattr(target, name, getattr(source, name))


def _message(flow: Flow, part: str) -> Message | None:
    return flow.request if part == "request" else flow.response


class EditLog:
    """The messages as they were before the user's edits, per flow (for V)."""

    def __init__(self, body_limit: int) -> None:
        self.body_limit = body_limit  # the original is kept as the store keeps bodies
        self._before: dict[str, _FlowEdits] = {}

    def edited(self, flow_id: str) -> bool:
        """True when this UI edited the flow and V can revert it."""
        return flow_id in self._before

    def apply(self, flow: Flow, text: str, stage: str | None = None) -> bool:
        """Apply the edited ``text`` (EditError if bad) and record the change; False when
        the message is unchanged."""
        part = stage or editable_stage(flow)
        if part == "response" and flow.response is None:
            part = "request"
        message = _message(flow, part)
        assert message is not None
        backup = _copy(message)
        apply_text(flow, text, part)
        edits = self._before.get(flow.id)
        first = edits.parts.get(part) if edits is not None else None
        if first is None:
            if _state(message) == _state(backup):
                return False
            self._record(flow, part, backup)
        elif _state(message) == _state(first.message):
            self._undo(flow, part)  # edited back to what it was: no change to record
        return True

    def _record(self, flow: Flow, part: str, backup: Message) -> None:
        original = getattr(flow, f"original_{part}")
        edits = self._before.setdefault(flow.id, _FlowEdits({}, UI_EDIT in flow.modified_by))
        edits.parts[part] = _Before(backup, original)
        if original is None:
            kept = _copy(backup)
            kept.body = capped(backup.body, self.body_limit)
            setattr(flow, f"original_{part}", kept)
        if UI_EDIT not in flow.modified_by:
            flow.modified_by.append(UI_EDIT)

    def _undo(self, flow: Flow, part: str) -> None:
        edits = self._before[flow.id]
        before = edits.parts.pop(part)
        message = _message(flow, part)
        assert message is not None
        _restore(message, before.message)
        setattr(flow, f"original_{part}", before.original)
        if not edits.parts:
            del self._before[flow.id]
            if not edits.labelled and UI_EDIT in flow.modified_by:
                flow.modified_by.remove(UI_EDIT)

    def revert(self, flow: Flow, parts: tuple[str, ...] = PARTS) -> list[str]:
        """Undo the user's edits of ``parts`` of ``flow``, in place; the parts reverted.

        A flow edited in an earlier run of the UI (``UI_EDIT`` its only change) goes back
        to the originals its record keeps."""
        edits = self._before.get(flow.id)
        if edits is None:
            return self._revert_recorded(flow, parts)
        done = [part for part in PARTS if part in parts and part in edits.parts]
        for part in done:
            self._undo(flow, part)
        return done

    def _revert_recorded(self, flow: Flow, parts: tuple[str, ...]) -> list[str]:
        if flow.modified_by != [UI_EDIT] or parts != PARTS:
            return []
        done = []
        for part in PARTS:
            original, message = getattr(flow, f"original_{part}"), _message(flow, part)
            if original is not None and message is not None:
                _restore(message, original)
                setattr(flow, f"original_{part}", None)
                done.append(part)
        flow.modified_by.clear()
        return done
