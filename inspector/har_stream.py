"""A HAR file's entries, one at a time, in the memory of one entry.

A HAR saved after a long browser session runs to gigabytes, and ``json.load`` would hold
all of it (and its Python objects, several times its size). This reader walks the
document's outline itself -- the top-level object, its ``log`` object, the ``entries``
array -- over a sliding window of the file's text, and hands each entry to
``json.JSONDecoder.raw_decode`` once the window holds it. The other members (``version``,
``creator``, ``pages``, ...), before or after ``entries``, are decoded whole and dropped:
they are small. The whole document is still checked: a file cut short or with anything
after its end is a JsonSyntaxError, raised only when the reader gets there.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

from inspector.export.har import HarError

CHUNK = 1 << 16  # bytes read at a time (more while one value does not fit)
NOT_A_HAR = 'not a HAR file: the top level must be an object with a "log" object'
NO_ENTRIES = 'not a HAR file: "log.entries" is missing or not a list'
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
# raw_decode on text cut inside a value fails at most this close to its end (a cut
# "true", number or \u escape), or with an unterminated string: read more and retry.
# A number cut short can also decode as a shorter one ending there: read on, then decide.
_CUT_MARGIN = 8


class JsonSyntaxError(Exception):
    """The file is not JSON: ``msg`` at ``lineno``:``colno`` (both from 1), as json says."""

    def __init__(self, msg: str, lineno: int, colno: int) -> None:
        super().__init__(f"{msg}: line {lineno} column {colno}")
        self.msg, self.lineno, self.colno = msg, lineno, colno


class _Window:
    """The text not yet consumed (``text[pos:]``), refilled from the file as needed."""

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None] | None) -> None:
        self.raw = raw
        self.on_read = on_read
        self.decoder: codecs.IncrementalDecoder | None = None
        self.text = ""
        self.pos = 0
        self.eof = False
        self.line = 1  # the line and (0-based) column where text[0] stands in the file
        self.col = 0

    def more(self, at_least: int = 0) -> bool:
        """Append the next piece of the file; False at its end. UnicodeDecodeError."""
        if self.eof:
            return False
        self._drop_consumed()
        data = self.raw.read(max(CHUNK, at_least, 4))  # 4: enough to tell the encoding
        if self.on_read is not None:
            self.on_read(len(data))
        if self.decoder is None:  # json's own rule: UTF-8 (BOM or not), UTF-16 or UTF-32
            self.decoder = codecs.getincrementaldecoder(json.detect_encoding(data))()
        self.text += self.decoder.decode(data, final=not data)
        self.eof = not data
        return True

    def _drop_consumed(self) -> None:
        done = self.text[: self.pos]
        newlines = done.count("\n")
        if newlines:
            self.line += newlines
            self.col = len(done) - done.rfind("\n") - 1
        else:
            self.col += len(done)
        self.text, self.pos = self.text[self.pos :], 0

    def error(self, msg: str, pos: int) -> JsonSyntaxError:
        before = self.text[:pos]
        newlines = before.count("\n")
        if newlines:
            return JsonSyntaxError(msg, self.line + newlines, pos - before.rfind("\n"))
        return JsonSyntaxError(msg, self.line, self.col + pos + 1)

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end of the file)."""
        while True:
            self.pos = _WHITESPACE.match(self.text, self.pos).end()
            if self.pos < len(self.text) or not self.more():
                return self.text[self.pos : self.pos + 1]

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise self.error(f"Expecting {what}", self.pos)
        self.pos += 1

    def value(self) -> object:
        """Decode the JSON value at the cursor, reading on until the window holds all of it."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as e:
                if _maybe_cut(e, len(self.text)) and self.more(len(self.text)):
                    continue  # doubling the window: a large value costs linear time
                raise self.error(e.msg, e.pos) from None
            if end > len(self.text) - _CUT_MARGIN and self.more():
                continue  # a number cut short ("1." of "1.5") may go on in the next piece
            self.pos = end
            return value

    def members(self) -> Iterator[str]:
        """The keys of the object at the cursor; the caller consumes each one's value."""
        self.expect("{", "value")
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            if self.peek() != '"':
                raise self.error("Expecting property name enclosed in double quotes", self.pos)
            key = self.value()
            self.expect(":", "':' delimiter")
            yield str(key)
            if self.peek() == "}":
                self.pos += 1
                return
            self.expect(",", "',' delimiter")

    def items(self) -> Iterator[object]:
        """The values of the array at the cursor, decoded one at a time."""
        self.expect("[", "value")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            if self.peek() == "]":
                self.pos += 1
                return
            self.expect(",", "',' delimiter")

    def end(self) -> None:
        if self.peek():
            raise self.error("Extra data", self.pos)


def _maybe_cut(e: json.JSONDecodeError, length: int) -> bool:
    return e.msg.startswith("Unterminated string") or e.pos >= length - _CUT_MARGIN


def har_entries(raw: BinaryIO, on_read: Callable[[int], None] | None = None) -> Iterator[object]:
    """The entries of the HAR document in ``raw``, decoded one at a time.

    HarError when the outline is not a HAR's, JsonSyntaxError when the text is not JSON,
    UnicodeDecodeError when it is not text; ``on_read`` is told each number of bytes read.
    """
    window = _Window(raw, on_read)
    if window.peek() != "{":
        window.value()  # a JsonSyntaxError if it is not JSON at all
        raise HarError(NOT_A_HAR)
    seen_log = seen_entries = False
    for key in window.members():
        if key != "log":
            window.value()
            continue
        if window.peek() != "{":
            raise HarError(NOT_A_HAR)
        seen_log = True
        for name in window.members():
            if name != "entries":
                window.value()
            elif window.peek() != "[" or seen_entries:
                raise HarError(NO_ENTRIES if not seen_entries else '"log.entries" appears twice')
            else:
                seen_entries = True
                yield from window.items()
    window.end()
    if not seen_log:
        raise HarError(NOT_A_HAR)
    if not seen_entries:
        raise HarError(NO_ENTRIES)
