"""What a replay sends: the recorded request, checked whole, with its headers as they go out.

Shared by the replay engine and the pytest export, which prepares requests the same way.
"""

from __future__ import annotations

from inspector.config import Endpoint
from inspector.flow import Flow, FlowRequest, Phase
from inspector.render import human_size
from protocol.authority import format_authority
from protocol.headers import HeaderPairs, Headers

# Hop-by-hop fields (RFC 9110 section 7.6.1) and the framing we rebuild from the body.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)


class ReplayError(Exception):
    """A recorded request that cannot be replayed faithfully; the message says why."""


def skip_reason(flow: Flow) -> str | None:
    """Why a flow is not an HTTP request/response to replay at all, or None."""
    if flow.request.method.upper() == "CONNECT":
        return "CONNECT tunnels are not replayed"
    if flow.websocket or (flow.response is not None and flow.response.status_code == 101):
        return "WebSocket and other protocol upgrades are not replayed"
    return None


def check_replayable(flow: Flow) -> None:
    """Raise ReplayError when the recording does not hold the whole request."""
    reason = skip_reason(flow)
    if reason is not None:
        raise ReplayError(reason)
    body = flow.request.body
    if body.truncated:
        raise ReplayError(
            f"the request body was cut at capture ({human_size(len(body.data))} of "
            f"{human_size(body.size)} recorded); capture again with a larger --body-limit"
        )
    if flow.error is not None and flow.error.phase == Phase.CLIENT:
        raise ReplayError("the client's request was not received whole at capture")


def authority(endpoint: Endpoint) -> str:
    """``host[:port]`` for the Host header (IPv6 in brackets, IDNs in their ASCII form)."""
    host = endpoint.host if endpoint.host.isascii() else endpoint.host.encode("idna").decode()
    return format_authority(endpoint.scheme, host, endpoint.port)


def outgoing_headers(request: FlowRequest, host: str | None) -> HeaderPairs:
    """The recorded headers as they go out on replay.

    Order and case are kept; hop-by-hop fields are dropped; ``Content-Length`` is rebuilt
    from the body where the recording had a length, chunked framing or a body; ``Host``
    becomes ``host`` (at its recorded place) unless ``host`` is None.
    """
    named_by_connection = {
        token.strip().lower()
        for value in Headers(request.headers).get_all("connection")
        for token in value.split(b",")
    }
    body = request.body.data
    framed = any(
        name.lower() in (b"content-length", b"transfer-encoding") for name, _ in request.headers
    )
    out: HeaderPairs = []
    length_placed = False
    for name, value in request.headers:
        key = name.lower()
        if key in (b"content-length", b"transfer-encoding"):
            if not length_placed:
                out.append((b"Content-Length", str(len(body)).encode()))
                length_placed = True
            continue
        if key in HOP_BY_HOP or key in named_by_connection:
            continue
        if key == b"host" and host is not None:
            value = host.encode("ascii")
        out.append((name, value))
    if body and not framed:
        out.append((b"Content-Length", str(len(body)).encode()))
    if host is not None and not any(name.lower() == b"host" for name, _ in out):
        out.insert(0, (b"Host", host.encode("ascii")))
    return out
