"""Hop-by-hop header handling (RFC 9110 section 7.6.1): what a proxy must not forward."""

from __future__ import annotations

from protocol.headers import HeaderPairs

_ALWAYS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"proxy-authorization"}
)


def _connection_tokens(pairs: HeaderPairs) -> set[bytes]:
    tokens: set[bytes] = set()
    for name, value in pairs:
        lname = name.lower()
        if lname == b"connection" or lname == b"proxy-connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return tokens


def is_upgrade(pairs: HeaderPairs) -> bool:
    """The message asks for (or agrees to) a protocol switch: Connection: upgrade + Upgrade."""
    return b"upgrade" in _connection_tokens(pairs) and any(
        n.lower() == b"upgrade" for n, _ in pairs
    )


def strip_hop_by_hop(pairs: HeaderPairs, *, upgrade: bool = False) -> HeaderPairs:
    """The fields to forward, in original order and case.

    With ``upgrade`` the ``Upgrade`` field and ``Connection: upgrade`` survive, since
    the protocol switch must reach the other side.
    """
    drop = _connection_tokens(pairs) | _ALWAYS
    if upgrade:
        drop.discard(b"upgrade")
    else:
        drop.add(b"upgrade")
    out = [(n, v) for n, v in pairs if n.lower() not in drop]
    if upgrade:
        out.append((b"Connection", b"Upgrade"))
    return out
