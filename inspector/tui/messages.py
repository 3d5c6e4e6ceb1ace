"""Messages the TUI's screens and widgets send up to the app."""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

from textual.message import Message

from inspector.flow import Flow

if TYPE_CHECKING:
    from inspector.tui.flow_index import Query


class FlowsChanged(Message):
    """The flow index changed (a drained batch, a filter, a sort); collapses while queued."""

    def __init__(self, *, reordered: bool = False) -> None:
        super().__init__()
        self.reordered = reordered

    def can_replace(self, message: Message) -> bool:
        # A reorder must not be lost by being replaced by a plain append.
        return isinstance(message, FlowsChanged) and (self.reordered or not message.reordered)


class JumpToFlow(Message):
    """Show this flow: select it in the list and open its detail."""

    def __init__(self, flow_id: str, *, open_detail: bool = True) -> None:
        super().__init__()
        self.flow_id = flow_id
        self.open_detail = open_detail


class FlowsAdded(Message):
    """A worker made and recorded flows (replays linked by ``replay_of``, duplicates):
    ``done`` says what happened to them ("replayed"), ``failures`` what could not be done."""

    def __init__(self, flows: list[Flow], failures: list[str], done: str) -> None:
        super().__init__()
        self.flows = flows
        self.failures = failures
        self.done = done


class FilterApplied(Message):
    """A list query (filter, sort, marks-only) finished: the row ids it found."""

    def __init__(self, query: Query, seqs: array) -> None:
        super().__init__()
        self.query = query
        self.seqs = seqs


class OpenFlow(Message):
    """Open this flow's detail screen."""

    def __init__(self, flow_id: str) -> None:
        super().__init__()
        self.flow_id = flow_id


class OpenExport(Message):
    """Open the export dialog for these flows."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__()
        self.ids = ids


class OpenSearch(Message):
    """Search every flow for ``query`` and list the results."""

    def __init__(self, query: str) -> None:
        super().__init__()
        self.query = query


class EditFlow(Message):
    """Edit this flow (in $EDITOR or the built-in editor): its held message, else ``part``
    (request or response) of the recorded flow."""

    def __init__(self, flow_id: str, part: str = "request") -> None:
        super().__init__()
        self.flow_id = flow_id
        self.part = part
