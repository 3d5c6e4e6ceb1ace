"""The receive buffer: bytes in, heads/lines/body slices out, with size caps.

Consuming only moves an offset, so a body that arrives in its own ``recv()``
passes through without a copy. Searches remember how far they got and never
rescan bytes they already searched. Line endings are CRLF; a buffer made with
``bare_lf_ok`` (the client side, reading responses) also takes bare LF and hands
heads out normalised to CRLF.
"""

from __future__ import annotations

import re

from protocol.errors import HeaderBlockTooLarge, LineTooLong, RemoteProtocolError, quote

# A head end where some line ends in a bare LF: "\n\n" or "\n\r\n".
_LF_HEAD_END = re.compile(rb"\n\r?\n")
_ANY_EOL = re.compile(rb"\r?\n")


class ReceiveBuffer:
    __slots__ = (
        "_buf",
        "_line_at",
        "_line_scanned",
        "_lines",
        "_pos",
        "_scanned",
        "bare_cr_seen",
        "bare_lf_ok",
        "eof",
        "start_line_checked",
    )

    def __init__(self, bare_lf_ok: bool = False) -> None:
        # Bare LF line endings: refused in requests (a smuggling vector), accepted in
        # responses, whose heads we re-serialise with CRLF before anyone else sees them.
        self.bare_lf_ok = bare_lf_ok
        self._buf: bytes | bytearray = b""
        self._pos = 0  # start of the unconsumed bytes in _buf
        self._scanned = 0  # bytes after _pos already searched by the pending search
        self._line_scanned = 0  # same, for the first line of a pending head
        self._lines = 0  # line ends in the pending head (valid while _scanned > 0)
        self._line_at = 0  # where the pending head's unfinished line starts, after _pos
        self.start_line_checked = False  # the pending head's first line was validated
        self.bare_cr_seen = False  # the pending head's last-scanned bytes hold a bare CR
        self.eof = False  # the peer closed its side

    def _consume_to(self, pos: int) -> None:
        self._pos = pos
        self._scanned = self._line_scanned = 0

    def __len__(self) -> int:
        return len(self._buf) - self._pos

    def __bool__(self) -> bool:
        return len(self._buf) > self._pos

    def feed(self, data: bytes) -> None:
        """Append ``data`` (keeping a lone ``bytes`` object as is, without copying)."""
        buf = self._buf
        if type(data) is not bytes:
            data = bytes(data)  # never alias a caller's reusable buffer
        if self._pos >= len(buf):
            self._buf = data
            self._pos = 0
        elif isinstance(buf, bytearray):
            if self._pos > 65536 and self._pos * 2 > len(buf):
                del buf[: self._pos]  # compact now and then; cheap on CPython
                self._pos = 0
            buf += data
        else:
            rest = bytearray(memoryview(buf)[self._pos :])
            rest += data
            self._buf = rest
            self._pos = 0

    def peek(self) -> bytes:
        """All unconsumed bytes (a copy), for ``trailing_data`` and error messages."""
        return bytes(self._buf[self._pos :])

    def take(self, n: int) -> bytes:
        """Consume and return up to ``n`` bytes (the very object received when it can)."""
        buf, pos = self._buf, self._pos
        end = min(pos + n, len(buf))
        if pos == 0 and end == len(buf) and type(buf) is bytes:
            out = buf
        elif type(buf) is bytes:
            out = buf[pos:end]
        else:
            with memoryview(buf) as view:
                out = view[pos:end].tobytes()
        self._consume_to(end)
        return out

    def skip(self, n: int) -> None:
        self._consume_to(self._pos + n)

    def first_line(self, max_line: int) -> bytes | None:
        """The first line without its ``CRLF`` if it is complete (nothing is consumed).

        Lets a head's start line be judged before the whole head has arrived.
        """
        buf, pos = self._buf, self._pos
        stop = min(len(buf), pos + max_line + 2)
        nl = buf.find(b"\n", pos + self._line_scanned, stop)
        if nl < 0:
            self._line_scanned = stop - pos
            return None
        if nl > pos and buf[nl - 1] == 13:  # 13 is CR
            return bytes(buf[pos : nl - 1])
        if not self.bare_lf_ok:
            raise RemoteProtocolError(
                f"peer ended its first line {quote(buf[pos : nl + 1])} with a bare LF; HTTP/1.1 "
                "requires CRLF line endings"
            )
        return bytes(buf[pos:nl])

    def prefix(self, n: int) -> bytes:
        """Up to ``n`` unconsumed bytes (a copy), nothing consumed."""
        return bytes(self._buf[self._pos : self._pos + n])

    def startswith(self, prefix: bytes) -> bool:
        return self._buf.startswith(prefix, self._pos)

    def skip_blank_lines(self) -> None:
        """Drop empty lines before a message (RFC 9112 2.2 lets us ignore them)."""
        while True:
            if self._buf.startswith(b"\r\n", self._pos):
                self.skip(2)
            elif self.bare_lf_ok and self._buf.startswith(b"\n", self._pos):
                self.skip(1)
            else:
                return

    def skip_line_end(self) -> bool | None:
        """Consume the CRLF (or allowed bare LF) at the front: True, False if something
        else is there, None if too few bytes have come to tell."""
        if self.startswith(b"\r\n"):
            self.skip(2)
            return True
        if self.bare_lf_ok and self.startswith(b"\n"):
            self.skip(1)
            return True
        if len(self) < 2:
            return None if not self or self.startswith(b"\r") else False
        return False

    def take_head(
        self, max_bytes: int, what: str, max_line: int = 0, max_headers: int = 0
    ) -> bytes | None:
        """Consume a head up to and including its blank line; return it without the
        final ``CRLF`` (so every line, the last too, ends in ``CRLF``), or None.

        Raises ``HeaderBlockTooLarge`` (431) when the head grows past ``max_bytes``
        and at once when a bare LF shows up where its end should be. With
        ``max_headers``, a head still arriving is refused as soon as its header lines
        outnumber it or its unfinished line is longer than ``max_line``.
        """
        buf, pos = self._buf, self._pos
        start = pos + self._scanned - 3 if self._scanned > 3 else pos
        end = buf.find(b"\r\n\r\n", start)
        if end >= 0 and not (self.bare_lf_ok and _has_bare_lf(buf, pos, end)):
            self._consume_to(end + 4)
            self.start_line_checked = False
            head = buf[pos : end + 2]
            return head if type(head) is bytes else bytes(head)
        if self.bare_lf_ok:
            m = _LF_HEAD_END.search(buf, start)
            if m is not None:
                self._consume_to(m.end())
                self.start_line_checked = False
                return _ANY_EOL.sub(b"\r\n", bytes(buf[pos : m.start() + 1]))
        size = len(buf) - pos
        if max_headers:
            self._check_growing_head(size, max_line, max_headers)
        self._scanned = size
        if not self.bare_lf_ok and buf.find(b"\n\n", start) >= 0:
            raise RemoteProtocolError(
                f"peer ended a line of its {what} with a bare LF; HTTP/1.1 requires CRLF "
                "line endings"
            )
        self.bare_cr_seen = _has_bare_cr(buf, start, len(buf) - 1)
        if size > max_bytes:
            raise HeaderBlockTooLarge(f"peer's {what} is larger than {max_bytes} bytes", max_bytes)
        return None

    def refuse_bare_cr(self, what: str) -> None:
        """Raise if the pending head has a CR without its LF: such a head never ends for
        us while its sender waits for an answer, so refuse it now, not at a timeout."""
        if self.bare_cr_seen:
            raise RemoteProtocolError(
                f"peer's {what} has a CR not followed by LF; HTTP/1.1 lines end in CRLF"
            )

    def _check_growing_head(self, size: int, max_line: int, max_headers: int) -> None:
        """Count the lines of an unfinished head as they come (only bytes not yet seen),
        as ``http.client`` does: the 101st header line is refused when it arrives."""
        buf, pos, seen = self._buf, self._pos, self._scanned
        if not seen:
            self._lines = self._line_at = 0
        new = buf.count(b"\n", pos + seen)
        if new:
            self._lines += new
            self._line_at = buf.rfind(b"\n", pos + seen) + 1 - pos
        if self._lines > max_headers + 1:  # the start line, then the header lines
            raise RemoteProtocolError(f"got more than {max_headers} headers", status_hint=431)
        if self._lines and size - self._line_at > max_line:
            raise LineTooLong("header line", max_line)

    def take_line(self, max_line: int, line_type: str) -> bytes | None:
        """Consume one line and return it without its ``CRLF``, or None if incomplete."""
        buf, pos = self._buf, self._pos
        start = pos + self._scanned - 1 if self._scanned > 1 else pos
        if self.bare_lf_ok:
            nl = buf.find(b"\n", start)
            end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
        else:
            end = nl = buf.find(b"\r\n", start)
            nl += 1
        if end >= 0:
            if end - pos > max_line:
                raise LineTooLong(line_type, max_line)
            self._consume_to(nl + 1)
            return bytes(buf[pos:end])
        size = len(buf) - pos
        self._scanned = size
        lf = -1 if self.bare_lf_ok else buf.find(b"\n", start)
        if lf >= 0:
            raise RemoteProtocolError(
                f"peer ended a {line_type} line {quote(buf[pos : lf + 1])} with a bare LF; "
                "HTTP/1.1 requires CRLF line endings"
            )
        if size > max_line:
            raise LineTooLong(line_type, max_line)
        return None


def _has_bare_lf(buf: bytes | bytearray, start: int, end: int) -> bool:
    """Whether some LF in ``buf[start:end]`` has no CR before it."""
    return buf.count(b"\n", start, end) != buf.count(b"\r\n", start, end)


def _has_bare_cr(buf: bytes | bytearray, start: int, end: int) -> bool:
    """Whether some CR in ``buf[start:end]`` is followed by a byte other than LF (a CR
    at ``end`` may yet be followed by its LF)."""
    return buf.count(b"\r", start, end) != buf.count(b"\r\n", start, end + 1)
