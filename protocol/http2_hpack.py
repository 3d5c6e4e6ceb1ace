"""HPACK (RFC 7541) header compression for ``h2`` connections, cheaper per header.

``h2`` compresses header blocks through its connection's ``encoder`` and ``decoder``
objects (the ``hpack`` package's). Those spend several microseconds per header field
(a function call per field and integer, a tuple subclass per field, logging calls), which
made HPACK about a fifth of the proxy's CPU on small HTTP/2 requests. ``install(conn)``
gives a connection this module's ``Encoder`` and ``Decoder``: the same interface and
errors (``hpack``'s exception classes, which ``h2`` turns into protocol errors), one loop
per header block with table lookups by dict and list.

Differences in what is sent, all allowed by RFC 7541: literals are not Huffman-coded
(Huffman coding in Python costs more than the bytes it saves on the proxy's links), and
the field names ``h2`` treats as sensitive (``authorization``, short ``cookie`` values,
anything it marks never-indexed) are never indexed, as ``hpack`` does. Received
Huffman-coded strings are decoded by ``hpack``'s decoder.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from hpack.exceptions import (
    HPACKDecodingError,
    InvalidTableIndex,
    InvalidTableSizeError,
    OversizedHeaderListError,
)
from hpack.huffman_table import decode_huffman
from hpack.struct import NeverIndexedHeaderTuple
from hpack.table import HeaderTable

STATIC: tuple[tuple[bytes, bytes], ...] = tuple(HeaderTable.STATIC_TABLE)
"""RFC 7541 Appendix A: index 1 is ``STATIC[0]``."""

_STATIC_FIELD = {field: i + 1 for i, field in reversed(list(enumerate(STATIC)))}
_STATIC_NAME = {name: i + 1 for i, (name, _value) in reversed(list(enumerate(STATIC)))}
_DYNAMIC_BASE = len(STATIC) + 1  # the first dynamic table index (62)
ENTRY_OVERHEAD = 32  # RFC 7541 section 4.1: an entry's size is name + value + 32
DEFAULT_TABLE_SIZE = 4096
MAX_INTEGER_BYTES = 5  # continuation bytes past the prefix: up to 2**35, plenty for any size


class DecodeState:
    """A header block being decoded: the bytes and the position (errors say it ran short)."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def integer(self, prefix_bits: int) -> int:
        """RFC 7541 section 5.1: the integer whose prefix is the current byte's low bits."""
        data, pos = self.data, self.pos
        limit = (1 << prefix_bits) - 1
        value = data[pos] & limit
        pos += 1
        if value == limit:
            end = min(pos + MAX_INTEGER_BYTES, len(data))
            shift = 0
            while True:
                if pos >= end:
                    raise HPACKDecodingError("Truncated or oversized integer in a header block")
                byte = data[pos]
                pos += 1
                value += (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
        self.pos = pos
        return value

    def string(self) -> bytes:
        """RFC 7541 section 5.2: a length-prefixed string, Huffman-decoded if marked so."""
        if self.pos >= len(self.data):
            raise HPACKDecodingError("Truncated header block")
        huffman = self.data[self.pos] & 0x80
        length = self.integer(7)
        start, end = self.pos, self.pos + length
        if end > len(self.data):
            raise HPACKDecodingError("Truncated header block")
        self.pos = end
        value = self.data[start:end]
        return decode_huffman(value) if huffman else value


class DynamicTable:
    """The dynamic table of one direction: newest entry first, evicted by size."""

    def __init__(self, maxsize: int = DEFAULT_TABLE_SIZE) -> None:
        self.entries: deque[tuple[bytes, bytes]] = deque()
        self.size = 0
        self.maxsize = maxsize

    def add(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + ENTRY_OVERHEAD
        if size > self.maxsize:  # RFC 7541 section 4.4: empties the table, adds nothing
            self.entries.clear()
            self.size = 0
            return
        self.entries.appendleft((name, value))
        self.size += size
        self.shrink(self.maxsize)

    def shrink(self, maxsize: int) -> None:
        entries = self.entries
        while self.size > maxsize:
            name, value = entries.pop()
            self.size -= len(name) + len(value) + ENTRY_OVERHEAD

    def get(self, index: int) -> tuple[bytes, bytes]:
        """The field at HPACK ``index`` (static or dynamic)."""
        if 0 < index < _DYNAMIC_BASE:
            return STATIC[index - 1]
        position = index - _DYNAMIC_BASE
        if 0 <= position < len(self.entries):
            return self.entries[position]
        raise InvalidTableIndex(f"Invalid table index {index}")


class Decoder:
    """Decodes header blocks for one ``h2`` connection (the ``hpack.Decoder`` interface)."""

    def __init__(self, max_header_list_size: int = 1 << 16) -> None:
        self.max_header_list_size = max_header_list_size
        self.max_allowed_table_size = DEFAULT_TABLE_SIZE  # what our SETTINGS allow the peer
        self.table = DynamicTable()

    @property
    def header_table_size(self) -> int:
        return self.table.maxsize

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        self.table.maxsize = value
        self.table.shrink(value)

    def decode(self, data: bytes, raw: bool = True) -> list[tuple[bytes, bytes]]:
        """The fields of one complete header block, as ``(name, value)`` bytes pairs."""
        state = DecodeState(bytes(data))
        headers: list[tuple[bytes, bytes]] = []
        size, limit, table = 0, self.max_header_list_size, self.table
        end = len(state.data)
        while state.pos < end:
            first = state.data[state.pos]
            if first & 0x80:  # an indexed field
                field = table.get(state.integer(7))
            elif first & 0x40:  # a literal, added to the table
                field = self._literal(state, 6)
                table.add(*field)
            elif first & 0x20:  # a table size update: only before the first field
                if headers:
                    raise HPACKDecodingError("Table size update not at the start of the block")
                self._resize(state.integer(5))
                continue
            else:  # a literal not added (0x00), or never to be added anywhere (0x10)
                field = self._literal(state, 4)
                if first & 0x10:
                    field = NeverIndexedHeaderTuple(*field)
            headers.append(field)
            size += len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
            if size > limit:
                raise OversizedHeaderListError(
                    f"A header list larger than {limit} has been received"
                )
        if table.maxsize > self.max_allowed_table_size:
            raise InvalidTableSizeError("Encoder did not shrink table size to within the max")
        return headers

    def _literal(self, state: DecodeState, prefix_bits: int) -> tuple[bytes, bytes]:
        index = state.integer(prefix_bits)
        name = self.table.get(index)[0] if index else state.string()
        return name, state.string()

    def _resize(self, size: int) -> None:
        if size > self.max_allowed_table_size:
            raise InvalidTableSizeError("Encoder exceeded max allowable table size")
        self.header_table_size = size


def encode_integer(value: int, prefix_bits: int, flags: int) -> bytes:
    """RFC 7541 section 5.1, with ``flags`` in the first byte's high bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((flags | value,))
    out = bytearray((flags | limit,))
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_string(value: bytes) -> bytes:
    """A string literal, not Huffman-coded."""
    length = len(value)
    return (bytes((length,)) if length < 0x7F else encode_integer(length, 7, 0)) + value


class Encoder:
    """Encodes header blocks for one ``h2`` connection (the ``hpack.Encoder`` interface).

    Besides the entries, it maps each field and name in the dynamic table to the number
    of the insertion that added it, so a lookup is a dict access, not a scan.
    """

    def __init__(self) -> None:
        self.table = DynamicTable()
        self._inserted = 0  # insertions so far; entry k (0-based) has index 62 + last - k
        self._fields: dict[tuple[bytes, bytes], int] = {}
        self._names: dict[bytes, int] = {}
        self._resizes: list[int] = []  # table size updates to signal in the next block

    @property
    def header_table_size(self) -> int:
        return self.table.maxsize

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        if value != self.table.maxsize or self._resizes:
            self.table.maxsize = value
            self.table.shrink(value)
            self._resizes.append(value)

    def encode(self, headers: Iterable[tuple[bytes, bytes]], huffman: bool = True) -> bytes:
        """One header block; ``huffman`` is accepted and ignored (see the module doc)."""
        out: list[bytes] = []
        if self._resizes:  # RFC 7541 section 4.2: the smallest size reached, then the last
            smallest, last = min(self._resizes), self._resizes[-1]
            out.append(encode_integer(smallest, 5, 0x20))
            if last != smallest:
                out.append(encode_integer(last, 5, 0x20))
            self._resizes.clear()
        for header in headers:
            name, value = header[0], header[1]
            if type(header) is not tuple and not getattr(header, "indexable", True):
                out.append(self._never_indexed(name, value))
            else:
                out.append(self._field(name, value))
        return b"".join(out)

    def _live(self, inserted: int | None) -> int:
        """The dynamic index of insertion ``inserted``, 0 when evicted (or None)."""
        if inserted is None:
            return 0
        position = self._inserted - 1 - inserted
        return _DYNAMIC_BASE + position if position < len(self.table.entries) else 0

    def _field(self, name: bytes, value: bytes) -> bytes:
        index = _STATIC_FIELD.get((name, value)) or self._live(self._fields.get((name, value)))
        if index:
            return encode_integer(index, 7, 0x80)
        name_index = _STATIC_NAME.get(name) or self._live(self._names.get(name))
        if len(name) + len(value) + ENTRY_OVERHEAD > self.table.maxsize:
            flags, prefix = 0x00, 4  # too big for the table: a literal it does not keep
        else:
            flags, prefix = 0x40, 6
            self._add(name, value)
        if name_index:
            return encode_integer(name_index, prefix, flags) + encode_string(value)
        return bytes((flags,)) + encode_string(name) + encode_string(value)

    def _never_indexed(self, name: bytes, value: bytes) -> bytes:
        name_index = _STATIC_NAME.get(name) or self._live(self._names.get(name))
        if name_index:
            return encode_integer(name_index, 4, 0x10) + encode_string(value)
        return b"\x10" + encode_string(name) + encode_string(value)

    def _add(self, name: bytes, value: bytes) -> None:
        """Add a field that fits the table (evicting the oldest as needed)."""
        self.table.add(name, value)
        self._fields[name, value] = self._names[name] = self._inserted
        self._inserted += 1
        if len(self._fields) > 4 * len(self.table.entries) + 64:
            self._forget_evicted()

    def _forget_evicted(self) -> None:
        """Drop the maps' entries for fields evicted from the table (kept bounded)."""
        oldest = self._inserted - len(self.table.entries)
        self._fields = {k: v for k, v in self._fields.items() if v >= oldest}
        self._names = {k: v for k, v in self._names.items() if v >= oldest}


def install(conn: object) -> None:
    """Give an ``h2`` connection this module's encoder and decoder, keeping its limits."""
    old = conn.decoder  # type: ignore[attr-defined]
    decoder = Decoder(old.max_header_list_size)
    decoder.max_allowed_table_size = old.max_allowed_table_size
    conn.decoder = decoder  # type: ignore[attr-defined]
    conn.encoder = Encoder()  # type: ignore[attr-defined]
