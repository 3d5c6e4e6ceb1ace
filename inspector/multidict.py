"""The mappings addons edit messages through (mitmproxy's shapes, our own code).

``Headers``: a case-insensitive, order-keeping mapping of str to str over a message's
raw ``(bytes, bytes)`` header pairs, edited in place, so what an addon changes is what
the proxy forwards and records. ``MultiDictView``: an ordered multi-mapping over a list
of ``(str, str)`` pairs read and written through two functions (the query string, a
form body, the Cookie header).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping

from protocol import is_token

Pairs = list[tuple[bytes, bytes]]

# Values must not hold CR, LF or NUL (RFC 9110 5.5): an addon could smuggle a second
# header or request with them.
_BAD_VALUE = re.compile(r"[\r\n\x00]")


def _encode(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def header_name(name: str | bytes) -> bytes:
    """``name`` as a field name, or ValueError saying why it cannot be one."""
    text = name.decode("latin-1") if isinstance(name, bytes) else name
    if not isinstance(text, str) or not is_token(text):
        raise ValueError(f"bad header name {name!r}: letters, digits and !#$%&'*+-.^_`|~ only")
    return text.encode("ascii")


def header_value(name: str | bytes, value: str | bytes | int) -> bytes:
    """``value`` as a field value, or ValueError when it holds CR, LF or NUL."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    raw = value if isinstance(value, bytes) else _encode(value)
    if _BAD_VALUE.search(raw.decode("latin-1")):
        raise ValueError(f"bad value for header {name!r}: CR, LF and NUL are not allowed")
    return raw.strip(b" \t")


class Headers(MutableMapping[str, str]):
    """Header fields as a case-insensitive, ordered mapping of str to str.

    ``h["X"]`` joins several fields of one name with ``", "``; ``h["X"] = v`` replaces
    them all by one (at the first one's place); ``del h["X"]`` removes them all;
    ``get_all``/``set_all``/``add``/``insert`` work on single fields. Text is latin-1,
    so every byte survives; a value that is not latin-1 is sent as UTF-8.
    """

    __slots__ = ("fields",)

    def __init__(
        self, fields: Pairs | Iterable[tuple[str | bytes, str | bytes]] | None = None, **kw: str
    ) -> None:
        if isinstance(fields, list) and (not fields or isinstance(fields[0][0], bytes)):
            self.fields: Pairs = fields  # a message's own list: edits go to the message
        else:
            self.fields = [(header_name(n), header_value(n, v)) for n, v in fields or ()]
        for key, value in kw.items():  # Headers(content_type="x") as in mitmproxy
            self.add(key.replace("_", "-"), value)

    def get_all(self, name: str) -> list[str]:
        key = name.lower().encode("latin-1")
        return [v.decode("latin-1") for n, v in self.fields if n.lower() == key]

    def set_all(self, name: str, values: Iterable[str]) -> None:
        """Replace every field ``name`` by one field per value (at the first one's place)."""
        raw = header_name(name)
        new = [(raw, header_value(name, v)) for v in values]
        key = raw.lower()
        out: Pairs = []
        for pair in self.fields:
            if pair[0].lower() != key:
                out.append(pair)
            elif new:
                out.extend((pair[0], v) for _, v in new)
                new = []
        self.fields[:] = out + new

    def add(self, name: str, value: str) -> None:
        """Append one field, keeping the fields of that name already there."""
        self.fields.append((header_name(name), header_value(name, value)))

    def insert(self, index: int, name: str, value: str) -> None:
        self.fields.insert(index, (header_name(name), header_value(name, value)))

    def items(self, multi: bool = False):  # type: ignore[override]
        """``(name, value)`` per name; with ``multi=True`` one per field."""
        if multi:
            return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.fields]
        return super().items()

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __setitem__(self, name: str, value: str) -> None:
        self.set_all(name, [value])

    def __delitem__(self, name: str) -> None:
        key = name.lower().encode("latin-1")
        kept = [p for p in self.fields if p[0].lower() != key]
        if len(kept) == len(self.fields):
            raise KeyError(name)
        self.fields[:] = kept

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower().encode("latin-1", "replace")
        return any(n.lower() == key for n, _ in self.fields)

    def __iter__(self) -> Iterator[str]:
        seen: set[bytes] = set()
        for n, _ in self.fields:
            key = n.lower()
            if key not in seen:
                seen.add(key)
                yield n.decode("latin-1")

    def __len__(self) -> int:
        return len({n.lower() for n, _ in self.fields})

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self.fields == other.fields
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items(multi=True)!r})"


StrPairs = list[tuple[str, str]]


class MultiDictView(MutableMapping[str, str]):
    """An ordered multi-mapping read with ``getter()`` and written back with ``setter(pairs)``.

    ``d["a"]`` is the first value of ``a``; ``d["a"] = v`` replaces every ``a`` by one;
    ``get_all``/``set_all``/``add``/``insert`` and ``fields`` as in mitmproxy.
    """

    __slots__ = ("_getter", "_setter")

    def __init__(self, getter: Callable[[], StrPairs], setter: Callable[[StrPairs], None]) -> None:
        self._getter = getter
        self._setter = setter

    @property
    def fields(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._getter())

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self._getter() if k == key]

    def set_all(self, key: str, values: Iterable[str]) -> None:
        new = [(key, str(v)) for v in values]
        out: StrPairs = []
        for pair in self._getter():
            if pair[0] != key:
                out.append(pair)
            elif new:
                out.extend(new)
                new = []
        self._setter(out + new)

    def add(self, key: str, value: str) -> None:
        self._setter([*self._getter(), (key, str(value))])

    def insert(self, index: int, key: str, value: str) -> None:
        pairs = self._getter()
        pairs.insert(index, (key, str(value)))
        self._setter(pairs)

    def items(self, multi: bool = False):  # type: ignore[override]
        return list(self._getter()) if multi else super().items()

    def __getitem__(self, key: str) -> str:
        for k, v in self._getter():
            if k == key:
                return v
        raise KeyError(key)

    def __setitem__(self, key: str, value: str) -> None:
        self.set_all(key, [value])

    def __delitem__(self, key: str) -> None:
        pairs = self._getter()
        kept = [p for p in pairs if p[0] != key]
        if len(kept) == len(pairs):
            raise KeyError(key)
        self._setter(kept)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self._getter()))

    def __len__(self) -> int:
        return len({k for k, _ in self._getter()})

    def __repr__(self) -> str:
        return f"MultiDictView({self._getter()!r})"


def as_pairs(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> StrPairs:
    """A mapping (a MultiDictView keeps its repeated keys) or pairs, as a list of pairs."""
    if isinstance(value, MultiDictView):
        return list(value.fields)
    if isinstance(value, Mapping):
        return [(str(k), str(v)) for k, v in value.items()]
    return [(str(k), str(v)) for k, v in value]
