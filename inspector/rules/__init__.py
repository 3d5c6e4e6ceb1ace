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
    HeaderRule,
    MapLocalRule,
    MapRemoteRule,
    apply_bodies,
    apply_headers,
)
from inspector.rules.patterns import RuleError, Spec

__all__ = ["CLOSE", "RuleError", "RuleSet"]


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

    def wants_request(self, flow: Flow) -> bool:
        """Whether the request must be held for a rule (its head is known, not its body)."""
        return any(
            _may_apply(rules, flow)
            for rules in (self.blocks, self.locals, self.remotes, self.headers, self.bodies)
        )

    def wants_response(self, flow: Flow) -> bool:
        """Whether the response must be held for a rule (``~q`` rules never want it)."""
        return _may_apply(self.headers, flow) or _may_apply(self.bodies, flow)

    async def request(self, flow: HTTPFlow) -> list[str]:
        """Apply the request-side rules in order; the labels of the rules that changed it."""
        recorded = flow.flow
        for rule in _matching(self.blocks, recorded)[:1]:
            rule.apply(flow)
            return [rule.spec.label]
        for rule in _matching(self.locals, recorded):
            if await rule.apply(flow):
                return [rule.spec.label]
        labels = []
        for rule in _matching(self.remotes, recorded):
            if rule.apply(flow):
                labels.append(rule.spec.label)
        labels += apply_headers(_matching(self.headers, recorded), flow.request)
        labels += apply_bodies(_matching(self.bodies, recorded), flow.request)
        return labels

    def response(self, flow: HTTPFlow) -> list[str]:
        """Apply the response-side modifications; the labels of the rules that changed it."""
        response = flow.response
        if response is None:
            return []
        recorded = flow.flow
        labels = apply_headers(_matching(self.headers, recorded), response)
        return labels + apply_bodies(_matching(self.bodies, recorded), response)
