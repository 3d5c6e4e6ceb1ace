"""Writers: events we send -> bytes, refusing anything that would corrupt framing.

Head writers validate every byte they are given (method, target, names, values,
reason) before producing output: a CR or LF smuggled into any of them would let
the caller's data forge headers or whole messages on the wire.
"""

from __future__ import annotations

from protocol import _abnf
from protocol._readers import FRAMING_NAMES
from protocol.errors import LocalProtocolError, quote
from protocol.events import Request, Response
from protocol.headers import HeaderPairs
from protocol.status import responses

_VERSIONS = (b"1.1", b"1.0")


class SentFraming:
    """What the headers we send say about our body and the connection."""

    __slots__ = ("chunked", "close", "content_length", "keep_alive", "upgrade")

    def __init__(self) -> None:
        self.content_length: int | None = None
        self.chunked = False
        self.close = False
        self.keep_alive = False
        self.upgrade = False


def field_block(fields: HeaderPairs) -> bytes:
    """``name: value CRLF`` lines of ``fields``, after checking every name and value."""
    try:
        block = b"".join([b"%s: %s\r\n" % (name, value) for name, value in fields])
        names = [name for name, _ in fields]
    except (TypeError, ValueError):
        raise LocalProtocolError(
            f"header fields must be (bytes, bytes) pairs, got {_first_odd(fields)!r}"
        ) from None
    # A block is safe when each CR and LF is one of its line ends (no value smuggles in a
    # line break), it holds no other control character, and every name is a token (no
    # colon, space or empty name). Counting and deleting allowed bytes checks that in C;
    # anything else gets the precise check, which names what is wrong.
    n = len(fields)
    if (
        block.count(b"\n") != n
        or block.count(b"\r") != n
        or block.translate(None, _abnf.BLOCK_BYTES)
        or b"".join(names).translate(None, _abnf.TCHAR_BYTES)
        or b"" in names
    ):
        _check_fields(fields)
    return block


def _first_odd(fields: HeaderPairs) -> object:
    for field in fields:
        if not (isinstance(field, tuple) and len(field) == 2 and type(field[0]) is bytes):
            return field
        if type(field[1]) is not bytes:
            return field
    return fields


def _check_fields(fields: HeaderPairs) -> None:
    for name, value in fields:
        if not _abnf.token_re.fullmatch(name):
            raise LocalProtocolError(
                f"invalid header name {quote(name)}: names are tokens (letters, digits and "
                "!#$%&'*+-.^_`|~), with no spaces, colons or control characters"
            )
        if not _abnf.field_value_re.fullmatch(value):
            raise LocalProtocolError(
                f"invalid value {quote(value)} for header {quote(name)}: CR, LF, NUL and other "
                "control characters are not allowed (header injection)"
            )


def write_request_head(request: Request) -> tuple[bytes, SentFraming]:
    method, target, version = request.method, request.target, request.http_version
    if type(method) is not bytes or type(target) is not bytes:
        raise LocalProtocolError(f"method and target must be bytes, got {method!r} and {target!r}")
    if not _abnf.token_re.fullmatch(method):
        raise LocalProtocolError(f"invalid method {quote(method)}: a method is a token")
    if not _abnf.request_target_re.fullmatch(target):
        raise LocalProtocolError(
            f"invalid request target {quote(target)}: spaces, CR, LF and control characters "
            "must be percent-encoded"
        )
    if version not in _VERSIONS:
        raise LocalProtocolError(f"cannot send HTTP version {quote(version)}; use b'1.1'")
    fields = request.headers.raw
    block = field_block(fields)
    head = b"".join([method, b" ", target, b" HTTP/", version, b"\r\n", block, b"\r\n"])
    return head, sent_framing(fields)


def write_response_head(response: Response) -> tuple[bytes, SentFraming]:
    code, version, reason = response.status_code, response.http_version, response.reason
    if type(code) is not int or not 100 <= code <= 999:
        raise LocalProtocolError(f"invalid status code {code!r}: must be an int in 100..999")
    if version not in _VERSIONS:
        raise LocalProtocolError(f"cannot send HTTP version {quote(version)}; use b'1.1'")
    if not reason:
        reason = responses.get(code, "").encode("ascii")
    elif type(reason) is not bytes:
        raise LocalProtocolError(f"reason phrase must be bytes, got {reason!r}")
    elif not _abnf.reason_phrase_re.fullmatch(reason):
        raise LocalProtocolError(
            f"invalid reason phrase {quote(reason)}: CR, LF and control characters are not "
            "allowed (response splitting)"
        )
    fields = response.headers.raw
    block = field_block(fields)
    head = b"".join([b"HTTP/", version, b" %d " % code, reason, b"\r\n", block, b"\r\n"])
    return head, sent_framing(fields)


def sent_framing(fields: HeaderPairs) -> SentFraming:
    """Read our own framing fields; refuse combinations a peer could misread."""
    framing = SentFraming()
    lengths: list[bytes] = []
    codings: list[bytes] = []
    for name, value in fields:
        key = name.lower()
        if key not in FRAMING_NAMES:
            continue
        value = value.strip(b" \t")
        if key == b"content-length":
            lengths.extend(_abnf.comma_split_re.split(value))
        elif key == b"transfer-encoding":
            codings.extend(c.lower() for c in _abnf.comma_split_re.split(value))
        elif key == b"connection":
            options = _abnf.comma_split_re.split(value.lower())
            framing.close = framing.close or b"close" in options
            framing.keep_alive = framing.keep_alive or b"keep-alive" in options
        elif key == b"upgrade":
            framing.upgrade = True
    if codings:
        if lengths:
            raise LocalProtocolError("cannot send both Content-Length and Transfer-Encoding")
        # Codings the caller applied itself (gzip, ...) may come first; chunked, which
        # frames the message, must be last and only once (RFC 9112 6.1).
        if codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
            raise LocalProtocolError(
                f"cannot send Transfer-Encoding {quote(b', '.join(codings))}: it must end in "
                "chunked, applied once"
            )
        framing.chunked = True
    elif lengths:
        if len(set(lengths)) != 1 or not _abnf.content_length_re.fullmatch(lengths[0]):
            raise LocalProtocolError(
                f"invalid Content-Length {quote(b', '.join(lengths))} to send: one decimal number"
            )
        framing.content_length = int(lengths[0])
    return framing


class ContentLengthWriter:
    """A body of exactly the declared length: no more, no less."""

    __slots__ = ("_declared", "remaining")

    def __init__(self, length: int, declared: bool = True) -> None:
        self.remaining = length
        self._declared = declared  # False: the message has no body at all

    def data(self, data: bytes) -> bytes:
        size = len(data)
        if size > self.remaining:
            if not self._declared:
                raise LocalProtocolError(
                    "this message has no body (no Content-Length or Transfer-Encoding: chunked, "
                    "or a HEAD/1xx/204/304 response); add one of them to send data"
                )
            raise LocalProtocolError(
                f"{size} bytes of data but only {self.remaining} left of the declared "
                "Content-Length"
            )
        self.remaining -= size
        return data if type(data) is bytes else bytes(data)

    def end(self, trailers: HeaderPairs) -> bytes:
        if self.remaining:
            raise LocalProtocolError(
                f"message ended {self.remaining} bytes short of its declared Content-Length"
            )
        if trailers:
            raise LocalProtocolError("trailers need Transfer-Encoding: chunked")
        return b""


class ChunkedWriter:
    __slots__ = ()

    def data(self, data: bytes) -> bytes:
        if not data:
            return b""  # an empty chunk would end the body
        return b"".join([b"%x\r\n" % len(data), data, b"\r\n"])

    def end(self, trailers: HeaderPairs) -> bytes:
        if trailers:
            return b"0\r\n" + field_block(trailers) + b"\r\n"
        return b"0\r\n\r\n"


class UntilCloseWriter:
    """A response body delimited by closing the connection."""

    __slots__ = ()

    def data(self, data: bytes) -> bytes:
        return data if type(data) is bytes else bytes(data)

    def end(self, trailers: HeaderPairs) -> bytes:
        if trailers:
            raise LocalProtocolError("trailers need Transfer-Encoding: chunked")
        return b""


BodyWriter = ContentLengthWriter | ChunkedWriter | UntilCloseWriter


def body_writer(framing: SentFraming, until_close: bool) -> BodyWriter:
    if framing.chunked:
        return ChunkedWriter()
    if framing.content_length is not None:
        return ContentLengthWriter(framing.content_length)
    return UntilCloseWriter() if until_close else ContentLengthWriter(0, declared=False)
