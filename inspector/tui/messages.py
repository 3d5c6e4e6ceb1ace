"""Messages the TUI's screens and widgets send up to the app."""

from __future__ import annotations

from textual.message import Message

from inspector.flow import Flow


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


class ReplayFinished(Message):
    """A replay worker is done: the new flows (linked by ``replay_of``) and the failures."""

    def __init__(self, flows: list[Flow], failures: list[str]) -> None:
        super().__init__()
        self.flows = flows
        self.failures = failures


class FilterApplied(Message):
    """A filter worker finished: the matching ids (None: no filter) for ``expr``."""

    def __init__(self, expr: str | None, ids: set[str] | None) -> None:
        super().__init__()
        self.expr = expr
        self.ids = ids


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


class EditHeld(Message):
    """Edit this held flow (in $EDITOR or the built-in editor)."""

    def __init__(self, flow_id: str) -> None:
        super().__init__()
        self.flow_id = flow_id
