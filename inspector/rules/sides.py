"""A rule's filter for one side of the exchange, worked out once, at start-up.

Rules run at two stops: on a request, when the flow has no response yet (``~q`` holds
and ``~s`` does not), and on a response (the other way round). ``for_side`` folds the
two flags into constants, so ``/~q/X/1`` asks nothing of a flow, ``/~s/X/1`` is never
tried on a request, and ``/~s & ~d api/X/1`` asks only ``~d api`` of a response.
``SideRules`` keeps, for one side, the rules that may apply with what is left to ask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from inspector.filters import And, Filter, Flag, Not, Or
from inspector.flow import Flow
from inspector.rules.patterns import Spec

REQUEST, RESPONSE = "q", "s"  # the flag that holds on that side: ~q, ~s


def for_side(flt: Filter | None, side: str) -> Filter | bool:
    """``flt`` on ``side``: True (applies to every flow), False (to none), or the part of
    the filter the side does not decide, to ask of each flow."""
    if flt is None:
        return True
    if isinstance(flt, Flag) and str(flt) in ("~q", "~s"):
        return str(flt) == f"~{side}"
    if isinstance(flt, Not):
        inner = for_side(flt.inner, side)
        return (not inner) if isinstance(inner, bool) else Not(inner)
    if isinstance(flt, And | Or):
        decisive = isinstance(flt, Or)  # the part value that decides the group alone
        left = []
        for part in flt.parts:
            value = for_side(part, side)
            if value is decisive:
                return decisive
            if not isinstance(value, bool):
                left.append(value)
        if not left:
            return not decisive
        return left[0] if len(left) == 1 else type(flt)(left)
    return flt


class _Rule(Protocol):
    spec: Spec


R = TypeVar("R", bound=_Rule)


@dataclass(frozen=True, slots=True)
class SideRules(Generic[R]):
    """The rules of one kind that may apply on one side, in command-line order, each with
    what is left of its filter (None: nothing to ask, it applies)."""

    entries: tuple[tuple[R, Filter | None], ...]

    @classmethod
    def of(cls, rules: Iterable[R], side: str) -> SideRules[R]:
        entries = []
        for rule in rules:
            test = for_side(rule.spec.filter, side)
            if test is not False:
                entries.append((rule, None if test is True else test))
        return cls(tuple(entries))

    def matching(self, flow: Flow) -> list[R]:
        """The rules whose filter holds on ``flow`` (on this side)."""
        return [rule for rule, test in self.entries if test is None or test(flow)]

    def __bool__(self) -> bool:
        return bool(self.entries)
