"""What a caller hands the synchronous client, made into bytes as ``http.client`` does.

Header values (ISO-8859-1, no CR/LF or controls), text bodies, host names (IDNA)
and body types are coerced or refused here before anything is sent.
"""

from __future__ import annotations

import collections.abc
from typing import Any

from protocol._abnf import field_value_re


def encode_latin1(data: str, name: str = "data") -> bytes:
    """``data`` as ISO-8859-1, with http.client's advice when it does not fit."""
    try:
        return data.encode("latin-1")
    except UnicodeEncodeError as err:
        raise UnicodeEncodeError(
            err.encoding,
            err.object,
            err.start,
            err.end,
            f"{name.title()} ({data[err.start : err.end]!r:.20}) is not valid Latin-1. "
            f"Use {name}.encode('utf-8') if you want to send it encoded in UTF-8.",
        ) from None


is_field_value = field_value_re.fullmatch


def field_value(value: str | bytes | int) -> bytes:
    """A header value as bytes (str as ISO-8859-1), refused if it holds CR, LF or controls."""
    if isinstance(value, str):
        raw = value.encode("latin-1")
    elif isinstance(value, int):
        raw = str(value).encode("ascii")
    else:
        raw = bytes(value)  # type: ignore[arg-type]
    if not is_field_value(raw):
        raise ValueError(f"Invalid header value {raw!r}")
    return raw


def idna_host(host: str) -> bytes:
    try:
        return host.encode("ascii")
    except UnicodeEncodeError:
        return host.encode("idna")


def check_body_type(body: Any) -> None:
    if hasattr(body, "read") or isinstance(body, bytes | bytearray | memoryview):
        return
    if isinstance(body, str) or not isinstance(body, collections.abc.Iterable):
        try:
            memoryview(body)
        except TypeError:
            raise TypeError(
                f"message_body should be a bytes-like object or an iterable, got {type(body)!r}"
            ) from None
