"""The hostile-input corpus's vocabulary: a case, its outcomes, and what the origin must see.

A case lists every outcome it accepts as ``status -> what the origin must have seen``:
``NOTHING`` (not one byte reached it) or ``ONE(checks)`` (exactly one request, and
each check holds on its bytes). ``CLOSED`` stands for a connection closed without a
response. Cases marked ``needs_12`` expect what issue #12 items 1-2 make the proxy do
(a request held until its framing is validated; Host from an absolute-form target;
Content-Length lists de-duplicated).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tests.hostile_harness import CLOSED, UP, Seen

__all__ = ["CLOSED"]

Check = Callable[[Seen, bytes], bool]  # (the request the origin saw, the origin's host:port)


@dataclass(frozen=True)
class Origin:
    """What the origin must have seen for one accepted outcome."""

    requests: int  # 0: no byte at all; 1: one request
    checks: tuple[Check, ...] = ()
    says: str = ""  # the same in words, for failure messages and the README table

    def holds(self, seen: list[Seen], received: int, authority: bytes) -> str | None:
        """None when the origin saw what it must; else what went wrong."""
        if self.requests == 0:
            return None if received == 0 and not seen else f"origin saw {received} bytes"
        if len(seen) != 1:
            return f"origin saw {len(seen)} requests, expected one"
        failed = [c for c in self.checks if not c(seen[0], authority)]
        if failed:
            names = ", ".join(getattr(c, "__doc__", None) or repr(c) for c in failed)
            return f"origin's request fails: {names}; it was {seen[0].raw[:400]!r}"
        return None


NOTHING = Origin(0, says="nothing")


def ONE(*checks: Check, says: str = "the request") -> Origin:
    return Origin(1, checks, says)


Outcomes = dict[int, Origin]


def refused(*statuses: int) -> Outcomes:
    """Answered with one of ``statuses`` (or closed), nothing reaching the origin."""
    return dict.fromkeys(statuses, NOTHING)


def relayed(*checks: Check, status: int = 200, says: str = "the request") -> Outcomes:
    return {status: ONE(*checks, says=says)}


@dataclass(frozen=True)
class Case:
    category: str
    name: str
    data: bytes  # what the client sends; {UP} stands for the origin's host:port
    outcomes: Outcomes
    half_close: bool = False  # the client shuts its sending side after the data
    needs_12: bool = False
    notes: str = ""

    @property
    def statuses(self) -> frozenset[int]:
        return frozenset(self.outcomes)


def cases(category: str, *items: tuple, needs_12: bool = False) -> list[Case]:  # type: ignore[type-arg]
    """``(name, data, outcomes[, options])`` tuples of one category."""
    out = []
    for name, data, outcomes, *rest in items:
        options = rest[0] if rest else {}
        out.append(Case(category, name, data, outcomes, **{"needs_12": needs_12, **options}))
    return out


def req(head: bytes, body: bytes = b"") -> bytes:
    """A request from ``\\n``-separated head lines (CRLF on the wire) and a body."""
    return head.replace(b"\n", b"\r\n") + b"\r\n" + body


GET = b"GET http://{UP}/c HTTP/1.1\nHost: {UP}\n"
POST = b"POST http://{UP}/c HTTP/1.1\nHost: {UP}\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\n"


# --- checks on what the origin received --------------------------------------------------


def _named(doc: str, fn: Check) -> Check:
    fn.__doc__ = doc
    return fn


def host_is_target() -> Check:
    return _named(
        "Host is the target's authority",
        lambda s, up: s.header_values(b"host") == [up],
    )


def header_once(name: bytes, value: bytes) -> Check:
    return _named(
        f"one {name.decode()}: {value.decode('latin-1')}",
        lambda s, up: s.header_values(name) == [value],
    )


def lacks(name: bytes) -> Check:
    return _named(f"no {name.decode()} header", lambda s, up: not s.header_values(name))


def lacks_token(name: bytes, token: bytes) -> Check:
    def check(s: Seen, up: bytes) -> bool:
        values = b",".join(s.header_values(name)).lower()
        return token.lower() not in [v.strip() for v in values.split(b",")]

    return _named(f"no {token.decode()} in {name.decode()}", check)


def body_is(content: bytes) -> Check:
    return _named(f"body {content[:20]!r}", lambda s, up: dechunk(s) == content)


def line_is(line: bytes) -> Check:
    return _named(
        f"request line {line!r}",
        lambda s, up: s.head.split(b"\r\n", 1)[0] == line.replace(UP, up),
    )


def head_lacks(pattern: bytes) -> Check:
    return _named(
        f"head without {pattern!r}",
        lambda s, up: re.search(pattern, s.head) is None,
    )


def framed() -> Check:
    """The body is framed by exactly one mechanism."""

    def check(s: Seen, up: bytes) -> bool:
        te, cl = s.header_values(b"transfer-encoding"), s.header_values(b"content-length")
        return not (te and cl) and len(cl) <= 1

    return _named("framed one way (never CL with TE, never two CLs)", check)


def dechunk(seen: Seen) -> bytes:
    if not seen.header_values(b"transfer-encoding"):
        return seen.body
    out, rest = b"", seen.body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


def all_of(*groups: Iterable[Case]) -> list[Case]:
    flat = [c for group in groups for c in group]
    names = [c.name for c in flat]
    duplicates = {n for n in names if names.count(n) > 1}
    assert not duplicates, f"duplicate case names: {duplicates}"
    return flat
