"""Ordered raw header fields with a case-insensitive view.

A proxy must forward headers exactly as received, so the raw ``(name, value)``
byte pairs are kept in order and never re-cased; lookups fold case.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

HeaderPairs = list[tuple[bytes, bytes]]


def _key(name: bytes | str) -> bytes:
    if isinstance(name, str):
        name = name.encode("latin-1")
    return name.lower()


def _bytes(value: bytes | str | int) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, int):
        return str(value).encode("ascii")
    return value.encode("latin-1")


class Headers:
    """Header fields as received: ordered ``(name, value)`` byte pairs, case kept."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[bytes | str, bytes | str]] = ()) -> None:
        self._fields: HeaderPairs = [(_bytes(n), _bytes(v)) for n, v in fields]

    @classmethod
    def _trusted(cls, fields: HeaderPairs) -> Headers:
        """Wrap a list the parser already validated, without copying it."""
        obj = cls.__new__(cls)
        obj._fields = fields
        return obj

    @property
    def raw(self) -> HeaderPairs:
        """The underlying ordered list of raw byte pairs (mutable: the proxy edits in place)."""
        return self._fields

    def get(self, name: bytes | str, default: bytes | None = None) -> bytes | None:
        """First value of ``name`` (case-insensitive), or ``default``."""
        key = _key(name)
        for n, v in self._fields:
            if n.lower() == key:
                return v
        return default

    def get_all(self, name: bytes | str) -> list[bytes]:
        key = _key(name)
        return [v for n, v in self._fields if n.lower() == key]

    def get_combined(self, name: bytes | str) -> bytes | None:
        """All values of ``name`` joined with ``, `` as RFC 9110 section 5.3 allows."""
        values = self.get_all(name)
        return b", ".join(values) if values else None

    def add(self, name: bytes | str, value: bytes | str | int) -> None:
        self._fields.append((_bytes(name), _bytes(value)))

    def set(self, name: bytes | str, value: bytes | str | int) -> None:
        """Replace every ``name`` field by one, kept at the first one's position."""
        key = _key(name)
        new = (_bytes(name), _bytes(value))
        out: HeaderPairs = []
        placed = False
        for pair in self._fields:
            if pair[0].lower() == key:
                if not placed:
                    out.append((pair[0], new[1]))
                    placed = True
            else:
                out.append(pair)
        if not placed:
            out.append(new)
        self._fields[:] = out

    def remove(self, name: bytes | str) -> None:
        key = _key(name)
        self._fields[:] = [p for p in self._fields if p[0].lower() != key]

    def copy(self) -> Headers:
        return Headers._trusted(list(self._fields))

    def text_items(self) -> list[tuple[str, str]]:
        """The fields decoded as latin-1 text (never raises)."""
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self._fields]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, bytes | str):
            return False
        key = _key(name)
        return any(n.lower() == key for n, _ in self._fields)

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._fields == other._fields
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"
