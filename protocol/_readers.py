"""Readers: receive buffer -> event, or None when more bytes are needed.

Head readers are functions; body readers are small objects holding how much of
the body is left. Nothing here does I/O or knows about connection state. Framing
is decided (and refused when ambiguous) before a head is handed out.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from protocol import _abnf
from protocol._buffer import ReceiveBuffer
from protocol.errors import (
    BadStatusLine,
    HeaderBlockTooLarge,
    HTTPException,
    IncompleteRead,
    InvalidChunk,
    LineTooLong,
    RemoteProtocolError,
    UnknownProtocol,
    UnknownTransferEncoding,
    quote,
)
from protocol.events import Data, EndOfMessage, Request, Response
from protocol.headers import HeaderPairs, Headers

_field_lines = _abnf.header_field_lines_re.findall
_request_line = _abnf.request_line_re.fullmatch
_status_line = _abnf.status_line_re.fullmatch
_chunk_size_line = _abnf.chunk_size_line_re.fullmatch
_content_length = _abnf.content_length_re.fullmatch
_long_chunk_size = re.compile(rb"([0-9A-Fa-f]{17,})(?:[ \t;].*)?", re.DOTALL).fullmatch
CONTENT_TOO_LARGE = 413
"""The hint for a size beyond any limit (a length past 10**18, a chunk past 64 bits):
refused at once, and a server answers 413 (RFC 9110 15.5.14) rather than 400."""


def _oversized_content_length(value: bytes) -> bool:
    return value.isdigit() and int(value) >= 10**18


def _oversized_chunk_size(line: bytes) -> bool:
    m = _long_chunk_size(line)
    return m is not None and int(m.group(1), 16) >= 1 << 64


FRAMING_NAMES = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade", b"host"}
)
"""The fields that decide framing and connection handling."""

# Transfer-codings in the IANA registry that we recognise but do not decode.
_KNOWN_CODINGS = frozenset({b"gzip", b"x-gzip", b"deflate", b"compress", b"x-compress"})


class Limits:
    """The caps a peer's message head must stay under."""

    __slots__ = ("max_header_bytes", "max_headers", "max_line")

    def __init__(self, max_line: int, max_headers: int, max_header_bytes: int) -> None:
        self.max_line = max_line
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes


class Framing:
    """What a head's fields say about its body and the connection."""

    __slots__ = ("chunked", "close", "content_length", "expect_continue", "keep_alive", "upgrade")

    def __init__(self) -> None:
        self.content_length: int | None = None
        self.chunked = False
        self.close = False  # "Connection: close"
        self.keep_alive = False  # "Connection: keep-alive"
        self.upgrade = False  # an Upgrade field is present
        self.expect_continue = False


# ---------------------------------------------------------------- head parsing


def parse_fields(
    head: bytes, start: int, limits: Limits, what: str, unfold: bool = False
) -> HeaderPairs:
    """The ``(name, value)`` pairs of the header lines in ``head[start:]``.

    Limits are checked as ``http.client`` does: an overlong line first (``LineTooLong``),
    then the number of lines, then the whole block. ``unfold`` (response heads) turns
    each obs-fold into one space, as RFC 9112 5.2 tells a user agent to; elsewhere an
    obs-fold is refused.
    """
    size = len(head) - start
    if size > limits.max_line:
        _check_line_lengths(head, start, limits.max_line, what)
    count = head.count(b"\n", start)
    if count > limits.max_headers:
        raise RemoteProtocolError(f"got more than {limits.max_headers} {what}s", status_hint=431)
    if size > limits.max_header_bytes:
        raise HeaderBlockTooLarge(
            f"{what} block is {size} bytes, more than the limit of {limits.max_header_bytes}",
            limits.max_header_bytes,
        )
    fields = _field_lines(head, start)
    if len(fields) != count:
        block = head[start:]
        if unfold and _obs_fold.search(block):
            block = _obs_fold.sub(b" ", block)
            fields = _field_lines(block)
            if len(fields) == block.count(b"\n"):
                return fields
        _explain_bad_fields(block, what)
    return fields


# obs-fold (RFC 9112 5.2): a line break followed by whitespace, with the whitespace around it.
_obs_fold = re.compile(rb"[ \t]*\r\n[ \t]+")


def _check_line_lengths(head: bytes, start: int, max_line: int, what: str) -> None:
    for line in head[start:].split(b"\r\n"):
        if len(line) > max_line:
            raise LineTooLong(f"{what} line", max_line)


def _explain_bad_fields(block: bytes, what: str) -> None:
    """Raise the error that says which line of a rejected header block is wrong and why."""
    for line in block.split(b"\r\n")[:-1]:
        if _abnf.header_field_lines_re.fullmatch(line + b"\r\n"):
            continue
        raise RemoteProtocolError(f"{_field_problem(line)} in {what} line {quote(line)}")
    raise RemoteProtocolError(f"malformed {what} block {quote(block)}")


def _field_problem(line: bytes) -> str:
    if b"\n" in line:
        return "bare LF line ending (HTTP/1.1 requires CRLF)"
    if line[:1] in (b" ", b"\t"):
        return "obs-fold (a continuation line starting with whitespace) is not allowed"
    name, colon, _ = line.partition(b":")
    if not colon:
        return "missing colon"
    if not name:
        return "empty field name"
    if name != name.rstrip(b" \t"):
        return "whitespace between field name and colon"
    if not _abnf.token_re.fullmatch(name):
        return "invalid character in field name"
    return "control character in field value"


def read_request_head(buf: ReceiveBuffer, limits: Limits) -> tuple[Request, Framing] | None:
    buf.skip_blank_lines()
    head = buf.take_head(_head_cap(limits), "request head", limits.max_line, limits.max_headers)
    if head is None:
        _judge_start_line_early(buf, limits, *_REQUEST_START)
        buf.refuse_bare_cr("request head")
        return None
    eol = head.index(b"\r\n")
    if eol > limits.max_line:
        raise LineTooLong("request line", limits.max_line)
    method, target, version = _request_line_parts(head, eol)
    fields = parse_fields(head, eol + 2, limits, "header")
    framing = request_framing(fields, version)
    return Request(method, target, Headers._trusted(fields), version), framing


def _request_line_parts(data: bytes, end: int) -> tuple[bytes, ...]:
    """(method, target, version) of the request line ``data[:end]``; raises if malformed."""
    m = _request_line(data, 0, end)
    if m is None:
        _explain_request_line(data[:end])
    method, target, version = m.groups()
    if version[0] != 49:  # b"1"
        raise UnknownProtocol(f"HTTP/{version.decode()}")
    return method, target, version


def _looks_like_request(start: bytes) -> bool:
    return _method_prefix(start) is not None


_method_prefix = re.compile(_abnf.TCHAR + rb"*(?: .*)?", re.DOTALL).fullmatch


def _judge_start_line_early(
    buf: ReceiveBuffer,
    limits: Limits,
    line_type: str,
    parts: Callable[[bytes, int], tuple[bytes, ...]],
    looks_right: Callable[[bytes], bool],
) -> None:
    """Refuse a bad start line as soon as it is complete (or its first bytes show it is
    not HTTP at all) rather than waiting for a head that may never end: an HTTP/0.9
    line, a TLS handshake on the plain port, binary garbage."""
    if buf.start_line_checked:
        return
    start = buf.prefix(8)
    if start and start != b"\r" and not looks_right(start):
        parts(start, len(start))
    line = buf.first_line(limits.max_line)
    if line is not None:
        parts(line, len(line))
        buf.start_line_checked = True
    elif len(buf) > limits.max_line + 1:
        raise LineTooLong(line_type, limits.max_line)


def _explain_request_line(line: bytes) -> None:
    parts = line.split(b" ")
    if len(parts) == 3 and _abnf.http_version_re.fullmatch(parts[2]):
        if not _abnf.token_re.fullmatch(parts[0]):
            raise RemoteProtocolError(f"invalid method in request line {quote(line)}")
        raise RemoteProtocolError(
            f"invalid character in request target of request line {quote(line)}"
        )
    if len(parts) == 3 and parts[2].startswith(b"HTTP/"):
        raise UnknownProtocol(parts[2].decode("latin-1"))
    raise RemoteProtocolError(
        f"malformed request line {quote(line)}: expected 'METHOD TARGET HTTP/1.1' "
        "separated by single spaces"
    )


def read_response_head(buf: ReceiveBuffer, limits: Limits) -> tuple[Response, Framing] | None:
    buf.skip_blank_lines()
    head = buf.take_head(_head_cap(limits), "response head", limits.max_line, limits.max_headers)
    if head is None:
        _judge_start_line_early(buf, limits, *_RESPONSE_START)
        buf.refuse_bare_cr("response head")
        return None
    eol = head.index(b"\r\n")
    if eol > limits.max_line:
        raise LineTooLong("status line", limits.max_line)
    version, code, reason = _status_line_parts(head, eol)
    fields = parse_fields(head, eol + 2, limits, "header", unfold=True)
    framing = response_framing(fields, version)
    return Response(int(code), Headers._trusted(fields), reason, version), framing


def _status_line_parts(data: bytes, end: int) -> tuple[bytes, ...]:
    """(version, code, reason) of the status line ``data[:end]``; raises if malformed."""
    m = _status_line(data, 0, end)
    if m is None:
        line = data[:end]
        if line.startswith(b"HTTP/") and not _abnf.http_version_re.match(line):
            raise UnknownProtocol(line.split(b" ", 1)[0].decode("latin-1"))
        raise BadStatusLine(line.decode("latin-1"))
    version, code, reason = m.groups()
    if version[0] != 49:
        raise UnknownProtocol(f"HTTP/{version.decode()}")
    return version, code, reason or b""


def _looks_like_response(start: bytes) -> bool:
    return b"HTTP/".startswith(start[:5])


_REQUEST_START = ("request line", _request_line_parts, _looks_like_request)
_RESPONSE_START = ("status line", _status_line_parts, _looks_like_response)


def _head_cap(limits: Limits) -> int:
    return limits.max_line + limits.max_header_bytes + 2


# ---------------------------------------------------------------- framing


def _scan_framing(fields: HeaderPairs, version: bytes) -> tuple[Framing, list[bytes], int]:
    """Framing fields of a head: (framing, transfer-codings, number of Host fields)."""
    framing = Framing()
    codings: list[bytes] = []
    lengths: list[bytes] = []
    hosts = 0
    for name, value in fields:
        key = name.lower()
        if key not in FRAMING_NAMES:
            continue
        if key == b"content-length":
            lengths += _split_list(value)
        elif key == b"host":
            hosts += 1
        elif key == b"transfer-encoding":
            if not value:
                raise RemoteProtocolError("empty Transfer-Encoding field")
            codings += [c for c in _split_list(value.lower()) if c]
        elif key == b"connection":
            options = _split_list(value.lower())
            framing.close = framing.close or b"close" in options
            framing.keep_alive = framing.keep_alive or b"keep-alive" in options
        elif key == b"upgrade":
            framing.upgrade = True
        elif value.lower() == b"100-continue" and version != b"1.0":  # Expect
            framing.expect_continue = True
    if lengths:
        framing.content_length = _parse_content_length(lengths)
    return framing, codings, hosts


def _split_list(value: bytes) -> list[bytes]:
    """The elements of a ``#rule`` list value (RFC 9110 5.6.1); one element needs no regex."""
    if b"," not in value:
        return [value]
    return _abnf.comma_split_re.split(value)


def _parse_content_length(values: list[bytes]) -> int:
    first = values[0]
    for value in values:
        if _content_length(value) is None:
            if _oversized_content_length(value):
                raise RemoteProtocolError(
                    f"Content-Length {quote(value)} is larger than any 64-bit length",
                    status_hint=CONTENT_TOO_LARGE,
                )
            raise RemoteProtocolError(
                f"invalid Content-Length {quote(value)}: expected decimal digits only"
            )
    length = int(first)
    for value in values:
        if value != first and int(value) != length:
            shown = b", ".join(values)
            raise RemoteProtocolError(
                f"conflicting Content-Length values {quote(shown)}: the message length is "
                "ambiguous (request smuggling risk)"
            )
    return length


def _check_codings(
    codings: list[bytes], framing: Framing, version: bytes, is_request: bool
) -> None:
    """Refuse Transfer-Encoding values we cannot frame safely; set ``framing.chunked``."""
    if framing.content_length is not None:
        raise RemoteProtocolError(
            "both Content-Length and Transfer-Encoding are present: the message length is "
            "ambiguous (request smuggling risk)"
        )
    if version == b"1.0":
        raise RemoteProtocolError(
            "Transfer-Encoding in an HTTP/1.0 message: its framing cannot be trusted "
            "(RFC 9112 section 6.1)"
        )
    # A request TE not ending in chunked must not fall back to Content-Length or to
    # no body: that is how CVE-2019-16786 smuggled requests (RFC 9112 6.3 says 400).
    if is_request and codings[-1] != b"chunked":
        raise RemoteProtocolError(
            f"request Transfer-Encoding {quote(b', '.join(codings))} does not end in chunked: "
            "its length cannot be determined"
        )
    for coding in codings:
        if coding != b"chunked" and coding not in _KNOWN_CODINGS:
            raise UnknownTransferEncoding(f"unknown transfer-coding {quote(coding)}")
    if codings.count(b"chunked") > 1:
        raise RemoteProtocolError("chunked transfer-coding applied more than once")
    if codings != [b"chunked"]:
        raise UnknownTransferEncoding(
            f"transfer-coding {quote(b', '.join(codings))} is not supported; only chunked is"
        )
    framing.chunked = True


def request_framing(fields: HeaderPairs, version: bytes) -> Framing:
    framing, codings, hosts = _scan_framing(fields, version)
    if codings:
        _check_codings(codings, framing, version, True)
    if hosts > 1:
        raise RemoteProtocolError("more than one Host field in the request")
    if hosts == 0 and version != b"1.0":
        raise RemoteProtocolError("HTTP/1.1 request without a Host field")
    return framing


def response_framing(fields: HeaderPairs, version: bytes) -> Framing:
    framing, codings, _ = _scan_framing(fields, version)
    if codings:
        _check_codings(codings, framing, version, False)
    return framing


def check_no_transfer_encoding(response: Response, framing: Framing) -> None:
    """1xx and 204 responses must not carry Transfer-Encoding (RFC 9112 6.1)."""
    if framing.chunked:
        raise RemoteProtocolError(
            f"Transfer-Encoding in a {response.status_code} response, which has no body"
        )


# ---------------------------------------------------------------- body readers


class ContentLengthReader:
    """A body of exactly ``Content-Length`` bytes."""

    __slots__ = ("expected", "remaining")

    def __init__(self, length: int) -> None:
        self.expected = length
        self.remaining = length

    def __call__(self, buf: ReceiveBuffer) -> Data | EndOfMessage | None:
        if self.remaining == 0:
            return EndOfMessage()
        if not buf:
            return None
        data = buf.take(self.remaining)
        self.remaining -= len(data)
        return Data(data)

    def read_eof(self, buf: ReceiveBuffer) -> EndOfMessage:
        raise IncompleteRead(b"", self.remaining, received=self.expected - self.remaining)

    def read_hint(self) -> int:
        return self.remaining


class ChunkedReader:
    """A chunked body (RFC 9112 7.1): sizes, extensions (ignored), data, trailers.

    Chunks already in the buffer are handed out together as one ``Data`` (up to
    ``COALESCE`` bytes): fewer events for the caller to move along.
    """

    COALESCE = 65536

    __slots__ = ("_crlf_due", "_limits", "_pending", "_trailers_due", "received", "remaining")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self.remaining = 0  # bytes left in the current chunk
        self.received = 0  # chunk data bytes so far
        self._crlf_due = False  # the CRLF after a chunk's data
        self._trailers_due = False
        # what comes after the Data being returned: the end, or an error about later bytes
        self._pending: EndOfMessage | HTTPException | None = None

    def __call__(self, buf: ReceiveBuffer) -> Data | EndOfMessage | None:
        pending = self._pending
        if pending is not None:
            self._pending = None
            if isinstance(pending, HTTPException):
                raise pending
            return pending
        piece = self._next_piece(buf)
        if type(piece) is not bytes:
            return piece  # type: ignore[return-value]
        if not buf or len(piece) >= self.COALESCE:
            return Data(piece)
        return Data(self._coalesce(buf, [piece], len(piece)))

    def _coalesce(self, buf: ReceiveBuffer, parts: list[bytes], size: int) -> bytes:
        try:
            while buf and size < self.COALESCE:
                piece = self._next_piece(buf)
                if type(piece) is not bytes:
                    self._pending = piece  # type: ignore[assignment]
                    break
                parts.append(piece)
                size += len(piece)
        except HTTPException as err:
            self._pending = err  # the valid data first; the error on the next call
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _next_piece(self, buf: ReceiveBuffer) -> bytes | EndOfMessage | None:
        """The next run of chunk data, the end of the body, or None for more bytes."""
        while True:
            if self.remaining:
                if not buf:
                    return None
                data = buf.take(self.remaining)
                self.remaining -= len(data)
                self.received += len(data)
                if not self.remaining:
                    self._crlf_due = True
                return data
            if self._crlf_due:
                ended = buf.skip_line_end()
                if ended is None:
                    return None
                if not ended:
                    raise InvalidChunk(
                        f"chunk data is longer than its size line said: {quote(buf.prefix(20))} "
                        "follows where CRLF was expected",
                        received=self.received,
                    )
                self._crlf_due = False
            if self._trailers_due:
                return self._read_trailers(buf)
            line = buf.take_line(self._limits.max_line, "chunk size")
            if line is None:
                return None
            m = _chunk_size_line(line)
            if m is None:
                error = InvalidChunk(
                    f"invalid chunk size line {quote(line)}: expected 1 to 16 hex digits, "
                    "optionally followed by ;extensions",
                    received=self.received,
                )
                if _oversized_chunk_size(line):
                    error.status_hint = CONTENT_TOO_LARGE
                raise error
            self.remaining = int(m.group(1), 16)
            self._trailers_due = not self.remaining

    def _read_trailers(self, buf: ReceiveBuffer) -> EndOfMessage | None:
        ended = buf.skip_line_end()
        if ended:
            return EndOfMessage()
        if ended is None:
            return None
        limits = self._limits
        block = buf.take_head(limits.max_header_bytes, "trailer block")
        if block is None:
            return None
        return EndOfMessage(Headers._trusted(parse_fields(block, 0, limits, "trailer")))

    def read_eof(self, buf: ReceiveBuffer) -> EndOfMessage:
        # The peer closed right after the last chunk: only the CRLF that ends the
        # (empty) trailer section is missing, and the body is whole (RFC 9112 7.1).
        if self._trailers_due and not buf:
            return EndOfMessage()
        raise IncompleteRead(b"", self.remaining or None, received=self.received)

    def read_hint(self) -> int:
        return self.remaining  # 0: a size line, a CRLF or a trailer line comes next


class UntilCloseReader:
    """A response body without framing: everything until the server closes."""

    __slots__ = ()

    def __call__(self, buf: ReceiveBuffer) -> Data | None:
        if not buf:
            return None
        return Data(buf.take(len(buf)))

    def read_eof(self, buf: ReceiveBuffer) -> EndOfMessage:
        return EndOfMessage()

    def read_hint(self) -> int:
        return -1


BodyReader = ContentLengthReader | ChunkedReader | UntilCloseReader


def body_reader(framing: Framing, limits: Limits, until_close: bool) -> BodyReader:
    """The reader for a message that has a body; ``until_close`` when nothing frames it."""
    if framing.chunked:
        return ChunkedReader(limits)
    if framing.content_length is not None:
        return ContentLengthReader(framing.content_length)
    return UntilCloseReader() if until_close else ContentLengthReader(0)
