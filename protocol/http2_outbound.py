"""Header fields on their way out through ``h2``: its outbound checks in one cheap pass.

``h2`` normalises and validates every header block it sends through a chain of seven
generators (lower-case names, strip whitespace, drop connection-specific fields, keep
credentials out of HPACK's tables, refuse ``te`` other than ``trailers``, pseudo-header
fields out of place, a ``host`` differing from ``:authority``, an empty ``:path``),
about a fifth of the cost of sending a small request or response. Our connections turn
those two options off (``OUTBOUND_OFF``) and pass every block through ``sendable``
instead, which does the same in one loop and raises the same ``ProtocolError``.
"""

from __future__ import annotations

from collections.abc import Iterable

from h2.exceptions import ProtocolError
from hpack import NeverIndexedHeaderTuple

OUTBOUND_OFF = {"validate_outbound_headers": False, "normalize_outbound_headers": False}
"""``H2Configuration`` options for connections whose blocks go through ``sendable``."""

DROPPED = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"}
)
"""Connection-specific fields (RFC 9113 section 8.2.2), dropped as ``h2`` drops them."""

NEVER_INDEXED = frozenset({b"authorization", b"proxy-authorization"})
"""Fields kept out of HPACK's tables, as ``h2`` keeps them (and cookies under 20 bytes)."""

_WHITESPACE = frozenset(b" \t\r\n\x0b\x0c")

Field = tuple[bytes, bytes]


def sendable(
    pseudo: list[Field], fields: Iterable[Field], authority: bytes | None = None
) -> list[Field]:
    """``pseudo`` then the regular ``fields`` as ``h2`` would send them with its checks on.

    ``authority``, for a request, is what a ``host`` field must equal. Raises
    ``h2.exceptions.ProtocolError`` where ``h2`` would: a field named like a
    pseudo-header (or not at all), ``te`` other than ``trailers``, a ``host`` that
    differs from ``:authority``.
    """
    out = list(pseudo)
    append = out.append
    host_seen = False
    for name, value in fields:
        if not name.islower():
            name = name.lower()
        if name and (name[0] in _WHITESPACE or name[-1] in _WHITESPACE):
            name = name.strip()
        if value and (value[0] in _WHITESPACE or value[-1] in _WHITESPACE):
            value = value.strip()
        if not name or name[0] == 0x3A:  # b":"
            raise ProtocolError(f"Received pseudo-header field out of sequence: {name!r}")
        if name in DROPPED:
            continue
        if name == b"te" and value.lower() != b"trailers":
            raise ProtocolError(f"Invalid value for TE header: {value!r}")
        if name == b"host" and authority is not None:
            _check_host(value, authority, host_seen)
            host_seen = True
        if name in NEVER_INDEXED or (name == b"cookie" and len(value) < 20):
            append(NeverIndexedHeaderTuple(name, value))
        else:
            append((name, value))
    return out


def _check_host(host: bytes, authority: bytes, seen: bool) -> None:
    if seen:
        raise ProtocolError("Request header block has multiple Host headers.")
    if host != authority:
        raise ProtocolError(
            f"Request header block has mismatched :authority and Host headers: "
            f"{authority!r} / {host!r}"
        )


def request_pseudo(method: bytes, scheme: bytes, authority: bytes, path: bytes) -> list[Field]:
    """A request's pseudo-header fields; ProtocolError where ``h2`` refuses them."""
    if not path:
        raise ProtocolError("An empty :path header is forbidden")
    if method == b"CONNECT":
        raise ProtocolError("Ordinary CONNECT MUST NOT include :scheme or :path")
    return [
        (b":method", method),
        (b":scheme", scheme),
        (b":authority", authority),
        (b":path", path),
    ]
