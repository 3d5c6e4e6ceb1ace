"""Header fields between HTTP/1.1 and HTTP/2 (RFC 9113 section 8): pure functions, no I/O.

HTTP/2 carries the request line and status in pseudo-header fields, wants field names in
lower case and forbids the connection-specific fields of HTTP/1.1 (section 8.2.2).
"""

from __future__ import annotations

from protocol.events import Request, Response
from protocol.headers import HeaderPairs, Headers

CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
"""Fields RFC 9113 section 8.2.2 forbids in HTTP/2 (``te`` is allowed as ``trailers``)."""


def to_http2(headers: Headers) -> Headers:
    """``headers`` as HTTP/2 allows them: names lowercased, connection-specific ones dropped.

    ``Host`` is dropped too (it becomes ``:authority``), and so are the fields a
    ``Connection`` header names; ``TE`` survives only as ``trailers``.
    """
    named = {
        token.strip().lower()
        for value in headers.get_all(b"connection")
        for token in value.split(b",")
    }
    kept: HeaderPairs = []
    for name, value in headers.raw:
        key = name.lower()
        if key in CONNECTION_SPECIFIC or key in named or key == b"host":
            continue
        if key == b"te" and value.strip().lower() != b"trailers":
            continue
        kept.append((key, value))
    return Headers._trusted(kept)


def split_pseudo(fields: HeaderPairs) -> tuple[dict[bytes, bytes], Headers]:
    """Pseudo-header fields (``:name`` -> value) apart from the regular ones, order kept."""
    pseudo: dict[bytes, bytes] = {}
    regular: HeaderPairs = []
    for name, value in fields:
        if name.startswith(b":"):
            pseudo[name] = value
        else:
            regular.append((name, value))
    return pseudo, Headers._trusted(regular)


def response_head(fields: HeaderPairs) -> Response:
    """A response head from HTTP/2 fields (``:status`` plus the regular fields)."""
    pseudo, headers = split_pseudo(list(fields))
    return Response(int(pseudo[b":status"]), headers, http_version=b"2")


def request_head(fields: HeaderPairs) -> tuple[Request, bytes, bytes]:
    """A request from HTTP/2 fields, with its ``:scheme`` and ``:authority``.

    The target is ``:path`` (``authority`` for CONNECT); when the client sent no ``Host``,
    one is added from ``:authority`` first, so HTTP/1.1 upstreams get the same request.
    """
    pseudo, headers = split_pseudo(list(fields))
    method = pseudo.get(b":method", b"")
    authority = pseudo.get(b":authority", b"")
    target = authority if method == b"CONNECT" else pseudo.get(b":path", b"")
    if authority and headers.get(b"host") is None:
        headers.raw.insert(0, (b"host", authority))
    return (
        Request(method, target, headers, http_version=b"2"),
        pseudo.get(b":scheme", b""),
        authority,
    )
