"""What a proxy forwards of a message's fields (RFC 9110 7.6.1, RFC 9112 6-7).

Not forwarded: ``Connection`` and every field it names (but for the body's framing fields,
``Content-Length`` and ``Transfer-Encoding``: the body goes on framed as it came),
``Proxy-Connection`` (and what it names), ``Keep-Alive``, ``TE`` other than
``TE: trailers``, ``Proxy-Authorization`` (meant for us), and ``Upgrade`` except in a
WebSocket handshake, the one protocol switch the proxy relays and records (an ``h2c`` or
``TLS/1.2`` upgrade would turn the connection into bytes nobody reads; the origin answers
as to a plain request). ``Trailer`` is end-to-end (RFC 9110 6.6.2) and goes on with the
trailers it announces.
``Transfer-Encoding`` is the connection layer's: the sans-IO core frames what it sends
itself. A list of identical ``Content-Length`` values (``5, 5`` or two fields) goes on as
one value (RFC 9110 8.6); differing values never get here (the parser answers 400).

``TE: trailers`` is the one exception, as in Envoy: the proxy relays trailers end to end,
so a client that accepts them still does through it (gRPC over HTTP/2 requires it).

These run on every message, so each lower-cases every name once, and parses
``Connection`` tokens only when that field is present.
"""

from __future__ import annotations

from protocol.headers import HeaderPairs, Headers

_ALWAYS = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization"})
_ALWAYS_AND_UPGRADE = _ALWAYS | {b"upgrade"}
_CONNECTION_FIELDS = (b"connection", b"proxy-connection")
_CONTENT_LENGTH = b"content-length"
# Named in Connection, these would still not be dropped: they frame this message's body,
# which goes on framed the same way (the origin would get a POST without its body).
_FRAMING = frozenset({_CONTENT_LENGTH, b"transfer-encoding"})


def _connection_values(pairs: HeaderPairs, lowered: list[bytes]) -> list[bytes]:
    """The values of the Connection and Proxy-Connection fields (list scans run in C)."""
    values = []
    for name in _CONNECTION_FIELDS:
        count = lowered.count(name)
        if count == 1:
            values.append(pairs[lowered.index(name)][1])
        elif count:
            values += [v for (_, v), lname in zip(pairs, lowered) if lname == name]  # noqa: B905
    return values


def _connection_tokens(pairs: HeaderPairs, lowered: list[bytes]) -> set[bytes]:
    return {t.strip() for v in _connection_values(pairs, lowered) for t in v.lower().split(b",")}


def _drop_set(
    pairs: HeaderPairs, lowered: list[bytes], upgrade: bool
) -> frozenset[bytes] | set[bytes]:
    """The lower-case names not to forward (a new set only when Connection names more)."""
    drop = _ALWAYS if upgrade else _ALWAYS_AND_UPGRADE
    extra: set[bytes] | None = None
    for value in _connection_values(pairs, lowered):
        for token in value.lower().split(b","):
            token = token.strip()
            if (
                token not in drop
                and token not in _FRAMING
                and not (upgrade and token == b"upgrade")
            ):
                extra = extra or set(drop)
                extra.add(token)
    return drop if extra is None else extra


def _strip(
    pairs: HeaderPairs, lowered: list[bytes], drop: frozenset[bytes] | set[bytes], upgrade: bool
) -> HeaderPairs:
    if drop.isdisjoint(lowered) and b"te" not in lowered:
        out = list(pairs)  # nothing to drop
    else:
        out = [p for p, lname in zip(pairs, lowered) if _forwarded(lname, p[1], drop)]  # noqa: B905
    if _CONTENT_LENGTH in lowered:
        _one_content_length(out, pairs, lowered)
    if upgrade:
        out.append((b"Connection", b"Upgrade"))
    return out


def _forwarded(lname: bytes, value: bytes, drop: frozenset[bytes] | set[bytes]) -> bool:
    if lname == b"te":
        return value.strip().lower() == b"trailers"
    return lname not in drop


def _one_content_length(out: HeaderPairs, pairs: HeaderPairs, lowered: list[bytes]) -> None:
    """Collapse a list of (identical, parser-checked) Content-Length values into one."""
    name, value = pairs[lowered.index(_CONTENT_LENGTH)]
    if b"," not in value and lowered.count(_CONTENT_LENGTH) == 1:
        return  # the usual case: one field, one value
    single: tuple[bytes, bytes] | None = (name, str(int(value.split(b",")[0])).encode())
    kept: HeaderPairs = []
    for pair in out:
        if pair[0].lower() != _CONTENT_LENGTH:
            kept.append(pair)
        elif single is not None:  # the first one's place, the others dropped
            kept.append(single)
            single = None
    out[:] = kept


def _upgrade_asked(pairs: HeaderPairs, lowered: list[bytes]) -> bool:
    """Connection: upgrade with an Upgrade field that offers websocket."""
    if b"upgrade" not in lowered or b"upgrade" not in _connection_tokens(pairs, lowered):
        return False
    offers = b",".join(v for (_, v), lname in zip(pairs, lowered) if lname == b"upgrade")  # noqa: B905
    return any(p.strip().lower().startswith(b"websocket") for p in offers.split(b","))


def is_upgrade(pairs: HeaderPairs) -> bool:
    """The message asks for (or agrees to) a WebSocket switch: Connection: upgrade +
    Upgrade: websocket."""
    return _upgrade_asked(pairs, [n.lower() for n, _ in pairs])


def strip_hop_by_hop(pairs: HeaderPairs, *, upgrade: bool = False) -> HeaderPairs:
    """The fields to forward, in original order and case.

    With ``upgrade`` the ``Upgrade`` field and ``Connection: upgrade`` survive, since
    the protocol switch must reach the other side.
    """
    lowered = [n.lower() for n, _ in pairs]
    return _strip(pairs, lowered, _drop_set(pairs, lowered, upgrade), upgrade)


def request_fields(pairs: HeaderPairs) -> tuple[HeaderPairs, bool, bool]:
    """In one pass over a request's fields: those to forward, whether it asks for a
    WebSocket upgrade (``is_upgrade``), and whether a ``Host`` field is among those
    forwarded."""
    lowered = [n.lower() for n, _ in pairs]
    upgrade = _upgrade_asked(pairs, lowered)
    drop = _drop_set(pairs, lowered, upgrade)
    return (
        _strip(pairs, lowered, drop, upgrade),
        upgrade,
        b"host" in lowered and b"host" not in drop,
    )


def add_framing(headers: Headers, length: int | None) -> None:
    """Give a body that HTTP/2 framed itself HTTP/1.1's framing (RFC 9112 6.3): its length
    when the whole body is known, else chunked. A message framed already is left alone."""
    if b"content-length" in headers or b"transfer-encoding" in headers:
        return
    if length is not None:
        headers.set(b"Content-Length", length)
    else:
        headers.raw.append((b"Transfer-Encoding", b"chunked"))
