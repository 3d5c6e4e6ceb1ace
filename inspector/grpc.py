"""gRPC over HTTP/2, as the inspector reads it: the status by name and the length-prefixed messages.

gRPC puts its own status in the trailers (``grpc-status``, ``grpc-message``), or in the
response head for a "trailers-only" answer; the HTTP status is 200 either way. Message
framing (the gRPC over HTTP/2 protocol spec): a 1-byte compressed flag, a 4-byte big-endian
length, then the message bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.flow import Flow

STATUS: dict[int, tuple[str, str]] = {
    0: ("OK", "the call succeeded"),
    1: ("CANCELLED", "the call was cancelled, typically by the caller"),
    2: ("UNKNOWN", "an error the server could not classify"),
    3: ("INVALID_ARGUMENT", "the client sent an invalid argument"),
    4: ("DEADLINE_EXCEEDED", "the deadline passed before the call completed"),
    5: ("NOT_FOUND", "a requested entity was not found"),
    6: ("ALREADY_EXISTS", "the entity the client tried to create already exists"),
    7: ("PERMISSION_DENIED", "the caller may not do this"),
    8: ("RESOURCE_EXHAUSTED", "a quota or resource ran out"),
    9: ("FAILED_PRECONDITION", "the system is not in a state that allows the call"),
    10: ("ABORTED", "the call was aborted, e.g. by a concurrency conflict"),
    11: ("OUT_OF_RANGE", "an argument is past the valid range"),
    12: ("UNIMPLEMENTED", "the method is not implemented or not supported"),
    13: ("INTERNAL", "an internal error on the server"),
    14: ("UNAVAILABLE", "the service is unavailable right now (often worth a retry)"),
    15: ("DATA_LOSS", "unrecoverable data loss or corruption"),
    16: ("UNAUTHENTICATED", "the call lacks valid credentials"),
}
"""Code -> (name, one-line meaning), from grpc/doc/statuscodes.md."""


@dataclass(frozen=True, slots=True)
class GrpcStatus:
    code: int
    name: str  # "NOT_FOUND"; "UNKNOWN_STATUS_17" for codes gRPC does not define
    meaning: str
    message: str  # grpc-message, percent-decoded


@dataclass(frozen=True, slots=True)
class GrpcMessage:
    compressed: bool
    size: int  # declared length of the message
    offset: int  # where its bytes start in the body
    complete: bool  # False when the recorded body ends inside it


def is_grpc(flow: Flow) -> bool:
    """True for a request with a gRPC content type (``application/grpc``, ``+proto``...)."""
    ctype = (flow.request.header("content-type") or "").lower()
    return ctype.startswith("application/grpc")


def status(flow: Flow) -> GrpcStatus | None:
    """The call's gRPC status from the trailers, or the head for a trailers-only response."""
    resp = flow.response
    if resp is None or not is_grpc(flow):
        return None
    raw = _field(resp.trailers, b"grpc-status") or _field(resp.headers, b"grpc-status")
    if raw is None or not raw.strip().isdigit():
        return None
    code = int(raw)
    name, meaning = STATUS.get(code, (f"UNKNOWN_STATUS_{code}", "a code gRPC does not define"))
    message = _field(resp.trailers, b"grpc-message") or _field(resp.headers, b"grpc-message")
    return GrpcStatus(code, name, meaning, _percent_decode(message or b""))


def messages(body: bytes) -> list[GrpcMessage]:
    """The length-prefixed messages in a (recorded) gRPC body, in order."""
    found: list[GrpcMessage] = []
    pos = 0
    while pos + 5 <= len(body):
        size = int.from_bytes(body[pos + 1 : pos + 5], "big")
        start = pos + 5
        found.append(GrpcMessage(body[pos] == 1, size, start, start + size <= len(body)))
        pos = start + size
    return found


def _field(pairs: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for n, v in pairs:
        if n.lower() == name:
            return v
    return None


def _percent_decode(raw: bytes) -> str:
    # grpc-message is percent-encoded UTF-8 (PROTOCOL-HTTP2.md); a bad escape stays as is.
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i : i + 1] == b"%" and i + 3 <= len(raw):
            try:
                out.append(int(raw[i + 1 : i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return out.decode("utf-8", "replace")
