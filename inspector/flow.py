"""The flow model: one exchange as wire bytes with thin text views.

Raw content (never raises) is kept apart from decoded content (may raise,
see ``inspector.content``). A flow is serialised by the store; ``FORMAT_VERSION``
is bumped whenever a field changes meaning, and the store migrates old records.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from protocol.authority import format_authority, host_port
from protocol.headers import HeaderPairs, Headers

FORMAT_VERSION = 2  # 2: original_request/original_response/modified_by/comment


class Phase(StrEnum):
    """Where in an exchange an exception happened."""

    CLIENT = "client"  # reading the client's request (bad input, client went away)
    CONNECT = "connect"  # TCP connect to the upstream (or to the upstream proxy)
    TLS = "tls"  # TLS handshake with the upstream
    SEND = "send"  # sending the request head or body upstream
    STATUS_LINE = "status line"  # waiting for / parsing the response status line
    HEADERS = "headers"  # parsing the response header block
    BODY = "body"  # reading the response body
    INTERCEPT = "intercept"  # killed by the user while held
    RULE = "rule"  # a rule failed on the flow, or a --block-list 444 closed the connection
    ADDON = "addon"  # an addon's hook raised (the exchange went on), or its flow.kill()


@dataclass(slots=True)
class FlowBody:
    """What was recorded of a message body (content after de-chunking, before decoding)."""

    data: bytes = b""  # the first ``body_limit`` bytes
    size: int = 0  # the full size seen on the wire
    truncated: bool = False  # data holds fewer bytes than size
    sha256: str | None = None  # hex digest of the full content, when it was hashed


@dataclass(slots=True)
class FlowRequest:
    method: str
    scheme: str  # "http" or "https"
    host: str  # upstream host (no brackets for IPv6)
    port: int
    path: str  # origin-form target as sent upstream: "/a?b=c"; "*" or "host:port" where fitting
    http_version: str = "HTTP/1.1"
    headers: HeaderPairs = field(default_factory=list)
    body: FlowBody = field(default_factory=FlowBody)
    trailers: HeaderPairs = field(default_factory=list)
    timestamp: float = 0.0  # when the head was complete (epoch seconds)

    @property
    def authority(self) -> str:
        return format_authority(self.scheme, self.host, self.port)

    @property
    def url(self) -> str:
        if self.method == "CONNECT":
            return host_port(self.host, self.port)
        return f"{self.scheme}://{self.authority}{self.path}"

    def header(self, name: str, default: str | None = None) -> str | None:
        value = Headers._trusted(self.headers).get(name)
        return default if value is None else value.decode("latin-1")


@dataclass(slots=True)
class FlowResponse:
    status_code: int
    reason: str = ""  # the phrase the server actually sent
    http_version: str = "HTTP/1.1"
    headers: HeaderPairs = field(default_factory=list)
    body: FlowBody = field(default_factory=FlowBody)
    trailers: HeaderPairs = field(default_factory=list)
    timestamp: float = 0.0  # when the head was received

    def header(self, name: str, default: str | None = None) -> str | None:
        value = Headers._trusted(self.headers).get(name)
        return default if value is None else value.decode("latin-1")


@dataclass(slots=True)
class Timings:
    """Epoch seconds of each step; None where the step did not happen (e.g. a reused connection)."""

    start: float = 0.0  # first byte of the request received from the client
    connect_start: float | None = None
    connect_end: float | None = None
    tls_end: float | None = None
    request_sent: float | None = None
    response_start: float | None = None  # first byte of the response head
    end: float | None = None  # response complete, or the error

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


@dataclass(slots=True)
class TLSInfo:
    sni: str | None = None  # the name the client asked for
    client_alpn: str | None = None
    client_version: str | None = None
    upstream_version: str | None = None
    upstream_cipher: str | None = None
    upstream_alpn: str | None = None
    upstream_cert_subject: str | None = None
    upstream_cert_issuer: str | None = None


@dataclass(slots=True)
class WebSocketMessage:
    timestamp: float
    from_client: bool
    opcode: int  # 1 text, 2 binary, 8 close, 9 ping, 10 pong
    size: int
    head: bytes  # the first bytes of the payload (unmasked)
    # Set when an addon's websocket_message hook changed or dropped the message: size and
    # first bytes are what was sent on (nothing, when dropped), these what was received.
    dropped: bool = False
    original_size: int | None = None
    original_head: bytes | None = None

    @property
    def modified(self) -> bool:
        return self.original_size is not None


@dataclass(slots=True)
class FlowError:
    exc_class: str  # "ConnectionRefusedError", "BadStatusLine", "SSLCertVerificationError", ...
    message: str
    phase: Phase
    timestamp: float = 0.0


def new_flow_id() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True)
class Flow:
    request: FlowRequest
    id: str = field(default_factory=new_flow_id)
    client_addr: tuple[str, int] = ("", 0)
    mode: str = "regular"  # "regular", "reverse:URL", "upstream:URL", "replay"
    response: FlowResponse | None = None
    timings: Timings = field(default_factory=lambda: Timings(start=time.time()))
    tls: TLSInfo | None = None
    websocket: list[WebSocketMessage] = field(default_factory=list)
    error: FlowError | None = None
    replay_of: str | None = None  # id of the flow this one replays
    marked: bool = False
    intercepted: bool = False  # was held and possibly edited by the user
    comment: str = ""  # set by the user or an addon
    # What a rule or an addon changed (see inspector.rules and inspector.addons): the
    # request as the client sent it and the response as the upstream sent it, kept only
    # when changed, and what changed the flow ("--map-remote |a|b", "addon.py:request").
    original_request: FlowRequest | None = None
    original_response: FlowResponse | None = None
    modified_by: list[str] = field(default_factory=list)
    format_version: int = FORMAT_VERSION

    @property
    def finished(self) -> bool:
        return self.timings.end is not None

    @property
    def modified(self) -> bool:
        """Changed by a rule or an addon."""
        return bool(self.modified_by)
