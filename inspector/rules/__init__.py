"""Rules that change traffic on purpose, applied in a fixed order.

On a complete request, before anything goes upstream: ``--block-list`` (the first
matching rule answers, or closes for 444), ``--map-local`` (the first matching rule
answers from a file), ``--map-remote`` (every matching rule rewrites the URL in turn),
then ``--modify-headers`` and ``--modify-body``; addons come after all of them. On a
complete response, before the client gets it: ``--modify-headers`` and ``--modify-body``,
then addons. A filter decides where a rule applies; ``~q`` (no response yet) limits a
modification to requests and ``~s`` to responses. A request answered by a rule skips
the request modifications; its local response still gets the response ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from inspector.flow import Flow
from inspector.http import HTTPFlow
from inspector.rules.kinds import (
    CLOSE,
    BlockRule,
    BodyRule,
    HeaderPlans,
    HeaderRule,
    MapLocalRule,
    MapRemoteRule,
    apply_bodies,
    apply_remotes,
)
from inspector.rules.patterns import RuleError, Spec
from inspector.rules.sides import REQUEST, RESPONSE, SideRules

__all__ = ["CLOSE", "RuleError", "RuleSet"]

FRAMING = frozenset((b"content-length", b"transfer-encoding"))  # not edited on a streamed head


def _matching(rules: list, flow: Flow) -> list:
    return [r for r in rules if r.spec.filter is None or r.spec.filter(flow)]


def _may_apply(rules: list, flow: Flow) -> bool:
    """Whether a rule could apply once the body is read: its filter holds on the head
    already, or it looks at bodies (``~b``, ``~bq``, ``~bs``), which are not read yet."""
    for rule in rules:
        flt = rule.spec.filter
        if flt is None or rule.spec.reads_bodies or flt(flow):
            return True
    return False


@dataclass(slots=True)
class RuleSet:
    """Every rule of the command line, compiled once."""

    blocks: list[BlockRule] = field(default_factory=list)
    locals: list[MapLocalRule] = field(default_factory=list)
    remotes: list[MapRemoteRule] = field(default_factory=list)
    headers: list[HeaderRule] = field(default_factory=list)
    bodies: list[BodyRule] = field(default_factory=list)
    # Header rules that hold a message whole: they touch framing or their filter reads bodies.
    holding: list[HeaderRule] = field(default_factory=list, init=False)
    remotes_read_bodies: bool = field(default=False, init=False)
    may_hold: bool = field(default=False, init=False)  # some rule could hold a request
    may_hold_response: bool = field(default=False, init=False)  # ... or a response
    edits_heads: bool = field(default=False, init=False)  # map remote or header rules
    # Per side ("q" requests, "s" responses), what of each rule's filter is left to ask.
    remotes_q: SideRules[MapRemoteRule] = field(init=False)
    bodies_q: SideRules[BodyRule] = field(init=False)
    bodies_s: SideRules[BodyRule] = field(init=False)
    headers_q: HeaderPlans = field(init=False)
    headers_s: HeaderPlans = field(init=False)

    def __post_init__(self) -> None:
        self.holding = [r for r in self.headers if r.spec.reads_bodies or r.name.lower() in FRAMING]
        self.remotes_read_bodies = any(rule.spec.reads_bodies for rule in self.remotes)
        self.may_hold = bool(
            self.blocks or self.locals or self.bodies or self.holding or self.remotes_read_bodies
        )
        self.may_hold_response = bool(self.bodies or self.holding)
        self.edits_heads = bool(self.remotes or self.headers)
        self.remotes_q = SideRules.of(self.remotes, REQUEST)
        self.bodies_q = SideRules.of(self.bodies, REQUEST)
        self.bodies_s = SideRules.of(self.bodies, RESPONSE)
        self.headers_q = HeaderPlans(SideRules.of(self.headers, REQUEST))
        self.headers_s = HeaderPlans(SideRules.of(self.headers, RESPONSE))

    @classmethod
    def from_options(
        cls,
        *,
        block_list: Iterable[str] = (),
        map_local: Iterable[str] = (),
        map_remote: Iterable[str] = (),
        modify_headers: Iterable[str] = (),
        modify_body: Iterable[str] = (),
    ) -> RuleSet:
        """Compile the patterns; ``RuleError`` (exit 2) for the first bad one."""
        return cls(
            [BlockRule.from_pattern(p) for p in block_list],
            [MapLocalRule.from_pattern(p) for p in map_local],
            [MapRemoteRule.from_pattern(p) for p in map_remote],
            [HeaderRule.from_pattern(p) for p in modify_headers],
            [BodyRule.from_pattern(p) for p in modify_body],
        )

    def __bool__(self) -> bool:
        return bool(self.blocks or self.locals or self.remotes or self.headers or self.bodies)

    @property
    def specs(self) -> list[Spec]:
        rules = [*self.blocks, *self.locals, *self.remotes, *self.headers, *self.bodies]
        return [rule.spec for rule in rules]

    def holds_request(self, flow: Flow) -> bool:
        """Whether the request must be held whole (its head is known, not its body): a rule
        may answer it, change its body or its framing, or its filter reads bodies. Other
        rules edit the head as it streams (``request_head``)."""
        if not self.may_hold:
            return False
        return (
            _may_apply(self.blocks, flow)
            or _may_apply(self.locals, flow)
            or _may_apply(self.bodies, flow)
            or _may_apply(self.holding, flow)
            or self.remotes_read_bodies
        )

    def holds_response(self, flow: Flow) -> bool:
        """Likewise for a response whose head is known (``~q`` rules never hold it)."""
        if not self.may_hold_response:
            return False
        return _may_apply(self.bodies, flow) or _may_apply(self.holding, flow)

    def request_head(self, flow: Flow) -> list[str]:
        """Map remote and header rules on a request that streams (see ``holds_request``).
        The request's header list is replaced, never edited: the caller keeps the old one
        as the original's, without a copy (``response_head`` likewise)."""
        if not self.remotes:
            return self.headers_q.plan(flow).apply(flow.request)
        labels = apply_remotes(self.remotes_q.matching(flow), flow)
        return labels + self.headers_q.plan(flow).apply(flow.request)

    def response_head(self, flow: Flow) -> list[str]:
        """Header rules on a response that streams."""
        if flow.response is None:
            return []
        return self.headers_s.plan(flow).apply(flow.response)

    async def request(self, flow: HTTPFlow) -> list[str]:
        """Apply the request-side rules in order; the labels of the rules that changed it."""
        recorded = flow.flow
        for rule in _matching(self.blocks, recorded)[:1]:
            rule.apply(flow)
            return [rule.spec.label]
        for rule in _matching(self.locals, recorded):
            if await rule.apply(flow):
                return [rule.spec.label]
        labels = apply_remotes(self.remotes_q.matching(recorded), recorded)
        labels += self.headers_q.plan(recorded).apply(recorded.request)
        if self.bodies_q:
            labels += apply_bodies(self.bodies_q.matching(recorded), flow.request)
        return labels

    def response(self, flow: HTTPFlow) -> list[str]:
        """Apply the response-side modifications; the labels of the rules that changed it."""
        response = flow.response
        if response is None:
            return []
        recorded = flow.flow
        labels = self.headers_s.plan(recorded).apply(recorded.response)  # type: ignore[arg-type]
        if self.bodies_s:
            labels += apply_bodies(self.bodies_s.matching(recorded), response)
        return labels
