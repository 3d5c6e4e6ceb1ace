"""The sans-IO HTTP/1.1 connection: bytes in, events out; events in, bytes out.

One ``Connection`` serves both ends: ``CLIENT`` (sends requests, reads responses)
and ``SERVER`` (reads requests, sends responses). Each party moves through
``IDLE -> SEND_BODY -> DONE`` per message cycle. Every state change happens in
the "state" section of ``Connection`` (``_advance`` reading the ``_TRANSITIONS``
table, ``_settle``, ``_fail``, ``start_next_cycle``), so misuse errors fall out of
the table instead of scattered checks.
"""

from __future__ import annotations

from protocol._buffer import ReceiveBuffer
from protocol._readers import (
    BodyReader,
    ContentLengthReader,
    Framing,
    Limits,
    body_reader,
    check_no_transfer_encoding,
    read_request_head,
    read_response_head,
)
from protocol._writers import (
    BodyWriter,
    ContentLengthWriter,
    SentFraming,
    UntilCloseWriter,
    body_writer,
    write_request_head,
    write_response_head,
)
from protocol.errors import (
    HTTPException,
    LocalProtocolError,
    RemoteDisconnected,
    RemoteProtocolError,
)
from protocol.events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Request,
    Response,
)
from protocol.limits import MAX_HEADER_BYTES, MAX_HEADERS, MAX_LINE


class _Name:
    """A named constant (role or state) that prints as its name."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


CLIENT = _Name("CLIENT")
SERVER = _Name("SERVER")

IDLE = _Name("IDLE")
SEND_BODY = _Name("SEND_BODY")
DONE = _Name("DONE")
MUST_CLOSE = _Name("MUST_CLOSE")
CLOSED = _Name("CLOSED")
SWITCHED = _Name("SWITCHED")
ERROR = _Name("ERROR")

# What a party may do in each state, and where it leads. Event kinds: "request",
# "informational" (1xx), "response" (final), "switch" (101 or 2xx to CONNECT),
# "data", "end" (EndOfMessage), "closed" (ConnectionClosed).
_CLOSABLE = {(IDLE, "closed"): CLOSED, (DONE, "closed"): CLOSED}
_CLOSABLE |= {(MUST_CLOSE, "closed"): CLOSED, (CLOSED, "closed"): CLOSED}
_BODY = {(SEND_BODY, "data"): SEND_BODY, (SEND_BODY, "end"): DONE}
_TRANSITIONS = {
    CLIENT: {(IDLE, "request"): SEND_BODY, **_BODY, **_CLOSABLE},
    SERVER: {
        (IDLE, "informational"): IDLE,
        (IDLE, "response"): SEND_BODY,
        (IDLE, "switch"): SWITCHED,
        **_BODY,
        **_CLOSABLE,
    },
}
_NO_BODY_STATUS = frozenset({204, 304})


class Connection:
    """One HTTP/1.1 connection's protocol state, for either role, without I/O."""

    def __init__(
        self,
        role: _Name,
        *,
        max_line: int = MAX_LINE,
        max_headers: int = MAX_HEADERS,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        if role is not CLIENT and role is not SERVER:
            raise ValueError(f"role must be CLIENT or SERVER, not {role!r}")
        limits = {"max_line": max_line, "max_headers": max_headers}
        limits["max_header_bytes"] = max_header_bytes
        for name, limit in limits.items():
            if type(limit) is not int or limit < 1:
                raise ValueError(f"{name} must be a positive int, not {limit!r}")
        self.our_role = role
        self.their_role = SERVER if role is CLIENT else CLIENT
        self._limits = Limits(max_line, max_headers, max_header_bytes)
        self._buf = ReceiveBuffer(bare_lf_ok=role is CLIENT)
        self._states = {CLIENT: IDLE, SERVER: IDLE}
        self._reader: BodyReader | None = None
        self._writer: BodyWriter | None = None
        self._keep_alive = True
        self._request_method: bytes | None = None
        self._switch_proposed = False  # the request was a CONNECT or carried Upgrade
        self.they_expect_100_continue = False
        self.their_http_version: bytes | None = None

    # ---------------------------------------------------------------- state

    @property
    def our_state(self) -> _Name:
        return self._states[self.our_role]

    @property
    def their_state(self) -> _Name:
        return self._states[self.their_role]

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another message cycle after this one."""
        return self._keep_alive

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not parsed (after a protocol switch: the new protocol's),
        and whether the peer has closed."""
        return self._buf.peek(), self._buf.eof

    @property
    def has_unparsed(self) -> bool:
        """Whether received bytes wait to be parsed (``trailing_data`` without the copy)."""
        return bool(self._buf)

    @property
    def peer_closed(self) -> bool:
        """Whether the peer has closed its side (``receive_data(b"")`` was called)."""
        return self._buf.eof

    def read_hint(self) -> int:
        """How much may be read from the peer without reading past the message being
        received: ``n > 0`` at most n bytes, ``0`` one line (a head, a chunk-size line,
        a trailer), ``-1`` any amount (a body that runs until the peer closes).

        For a reader that must leave the bytes after the message where they are.
        """
        if self._states[self.their_role] is SEND_BODY:
            return self._reader.read_hint()  # type: ignore[union-attr]
        return 0

    def _advance(self, party: _Name, kind: str) -> None:
        """Move ``party`` along ``_TRANSITIONS`` for an event of ``kind``; refuse what it lacks."""
        state = self._states[party]
        new = _TRANSITIONS[party].get((state, kind))
        if new is None or (party is SERVER and kind != "closed" and self._states[CLIENT] is IDLE):
            whose = "our" if party is self.our_role else "their"
            error = LocalProtocolError if party is self.our_role else RemoteProtocolError
            raise error(f"{kind} is not allowed in {whose} state {state!r} ({party!r})")
        self._states[party] = new
        if new is SWITCHED:
            self._states[CLIENT] = SWITCHED
        self._settle()

    def _no_keep_alive(self) -> None:
        self._keep_alive = False
        self._settle()

    def _settle(self) -> None:
        """Without keep-alive, a party that is DONE can only close next."""
        if not self._keep_alive:
            for role in (CLIENT, SERVER):
                if self._states[role] is DONE:
                    self._states[role] = MUST_CLOSE

    def _fail(self, party: _Name) -> None:
        self._states[party] = ERROR

    def start_next_cycle(self) -> None:
        """Reset both parties to IDLE for the next request/response on this connection."""
        if self._states[CLIENT] is not DONE or self._states[SERVER] is not DONE:
            raise LocalProtocolError(
                f"cannot start a new cycle: our state is {self.our_state!r}, their state is "
                f"{self.their_state!r} (both must be DONE and the connection kept alive)"
            )
        self._states[CLIENT] = self._states[SERVER] = IDLE
        self._reader = self._writer = None
        self._request_method = None
        self._switch_proposed = False
        self.they_expect_100_continue = False

    # ---------------------------------------------------------------- receiving

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; ``b""`` means the peer closed its side."""
        if self._buf.eof:
            if data:
                raise LocalProtocolError("received data after the peer closed the connection")
            return
        if data:
            self._buf.feed(data)
        else:
            self._buf.eof = True

    def next_event(self) -> Event | _Name:
        """The next event parsed from the received bytes, ``NEED_DATA`` or ``PAUSED``."""
        party = self.their_role
        state = self._states[party]
        try:
            if state is SEND_BODY:
                return self._next_body_event(party)
            if state is IDLE:
                return self._next_head()
            return self._next_between_messages(party, state)
        except HTTPException:
            self._fail(party)
            raise

    def _next_body_event(self, party: _Name) -> Event | _Name:
        reader = self._reader
        event = reader(self._buf)  # type: ignore[misc]
        if event is None:
            if not self._buf.eof:
                return NEED_DATA
            event = reader.read_eof(self._buf)  # type: ignore[union-attr]
        self.they_expect_100_continue = False
        if type(event) is EndOfMessage:
            self._advance(party, "end")
        return event

    def _next_between_messages(self, party: _Name, state: _Name) -> Event | _Name:
        if state is ERROR:
            raise RemoteProtocolError(
                "cannot read more: the peer already broke the protocol on this connection"
            )
        if state is SWITCHED:
            return PAUSED
        if self._buf and state is MUST_CLOSE and not self._switch_proposed:
            raise RemoteProtocolError(
                f"peer sent {len(self._buf)} bytes after the last message of a connection that "
                "is closing (Connection: close or HTTP/1.0); they are in trailing_data"
            )
        if self._buf:
            return PAUSED  # DONE: a pipelined message waits for start_next_cycle()
        if self._buf.eof:
            self._advance(party, "closed")
            return ConnectionClosed()
        return NEED_DATA

    def _next_head(self) -> Event | _Name:
        if not self._buf:  # asked before anything came: nothing to search (most calls)
            return self._head_missing()
        if self.our_role is SERVER:
            parsed = read_request_head(self._buf, self._limits)
        elif self._states[CLIENT] is IDLE and self._buf:
            raise RemoteProtocolError(
                f"server sent {len(self._buf)} bytes before any request was sent"
            )
        else:
            parsed = read_response_head(self._buf, self._limits)
        if parsed is None:
            return self._head_missing()
        event, framing = parsed
        if type(event) is Request:
            self._got_request(event, framing)
        else:
            self._got_response(event, framing)
        return event

    def _head_missing(self) -> Event | _Name:
        if not self._buf.eof:
            return NEED_DATA
        if not self._buf:
            self._advance(self.their_role, "closed")
            return ConnectionClosed()
        if self.our_role is CLIENT:
            raise RemoteDisconnected(
                f"Remote end closed connection after {len(self._buf)} bytes of an incomplete "
                "response head"
            )
        raise RemoteProtocolError(
            f"client closed the connection after {len(self._buf)} bytes of an incomplete "
            "request head"
        )

    def _got_request(self, request: Request, framing: Framing) -> None:
        self._advance(CLIENT, "request")
        self._request_method = request.method
        self.their_http_version = request.http_version
        self._switch_proposed = request.method == b"CONNECT" or framing.upgrade
        self.they_expect_100_continue = framing.expect_continue
        if _closes(request.http_version, framing):
            self._no_keep_alive()
        self._reader = body_reader(framing, self._limits, until_close=False)

    def _got_response(self, response: Response, framing: Framing) -> None:
        code = response.status_code
        self.their_http_version = response.http_version
        if code < 200 or code == 204:
            check_no_transfer_encoding(response, framing)
        kind = self._response_kind(code)
        if kind == "switch" and not self._switch_proposed:
            raise RemoteProtocolError(
                "server sent 101 Switching Protocols to a request that asked for no upgrade"
            )
        self._advance(SERVER, kind)
        if kind != "response":
            return
        if _closes(response.http_version, framing):
            self._no_keep_alive()
        if self._request_method == b"HEAD" or code in _NO_BODY_STATUS:
            self._reader = ContentLengthReader(0)
            return
        self._reader = body_reader(framing, self._limits, until_close=True)
        if framing.content_length is None and not framing.chunked:
            self._no_keep_alive()

    def _response_kind(self, code: int) -> str:
        if code == 101 or (self._request_method == b"CONNECT" and 200 <= code < 300):
            return "switch" if code == 101 or self._switch_proposed else "response"
        return "informational" if code < 200 else "response"

    # ---------------------------------------------------------------- sending

    def send(self, event: Event) -> bytes:
        """Validate ``event`` and return its bytes; raises ``LocalProtocolError`` on misuse."""
        kind = type(event)
        if kind is Data:
            return self._send_data(event)  # type: ignore[arg-type]
        if kind is EndOfMessage:
            return self._send_end(event)  # type: ignore[arg-type]
        if kind is Request:
            return self._send_request(event)  # type: ignore[arg-type]
        if kind is Response:
            return self._send_response(event)  # type: ignore[arg-type]
        if kind is ConnectionClosed:
            self._advance(self.our_role, "closed")
            return b""
        raise LocalProtocolError(f"cannot send {event!r}: not an HTTP event")

    def _send_data(self, event: Data) -> bytes:
        self._check_state(SEND_BODY, "Data")
        out = self._writer.data(event.data)  # type: ignore[union-attr]
        self._advance(self.our_role, "data")
        return out

    def _send_end(self, event: EndOfMessage) -> bytes:
        self._check_state(SEND_BODY, "EndOfMessage")
        out = self._writer.end(event.trailers.raw)  # type: ignore[union-attr]
        self._advance(self.our_role, "end")
        return out

    def _check_state(self, wanted: _Name, what: str) -> None:
        if self.our_state is not wanted:
            raise LocalProtocolError(
                f"cannot send {what} in our state {self.our_state!r} (needs {wanted!r})"
            )

    def _send_request(self, request: Request) -> bytes:
        if self.our_role is not CLIENT:
            raise LocalProtocolError("a server connection cannot send a Request")
        self._check_state(IDLE, "a Request")
        head, framing = write_request_head(request)
        self._advance(CLIENT, "request")
        self._request_method = request.method
        self._switch_proposed = request.method == b"CONNECT" or framing.upgrade
        if _closes(request.http_version, framing):
            self._no_keep_alive()
        self._writer = body_writer(framing, until_close=False)
        return head

    def _send_response(self, response: Response) -> bytes:
        if self.our_role is not SERVER:
            raise LocalProtocolError("a client connection cannot send a Response")
        code = response.status_code
        head, framing = write_response_head(response)
        kind = self._response_kind(code) if type(code) is int else "response"
        if kind == "switch" and not self._switch_proposed:
            raise LocalProtocolError("cannot send 101: the request asked for no upgrade")
        self._advance(SERVER, kind)
        self.they_expect_100_continue = False
        if kind != "response":
            return head
        if _closes(response.http_version, framing):
            self._no_keep_alive()
        if self._request_method == b"HEAD" or code in _NO_BODY_STATUS:
            self._writer = ContentLengthWriter(0, declared=False)
        else:
            self._writer = body_writer(framing, until_close=True)
            if type(self._writer) is UntilCloseWriter:
                self._no_keep_alive()
        return head


def _closes(version: bytes, framing: Framing | SentFraming) -> bool:
    """RFC 9112 9.3: ``Connection: close``, or HTTP/1.0 without ``keep-alive``."""
    return framing.close or (version == b"1.0" and not framing.keep_alive)
