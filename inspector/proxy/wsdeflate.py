"""permessage-deflate (RFC 7692) for the WebSocket message relay, one codec per direction.

When an addon reads and rewrites messages, compressed ones (RSV1) are inflated for it
and deflated again toward the receiver. Every compressed message of a direction goes
through the proxy's own compressor, changed or not: with context takeover a message
refers back to the earlier ones, so the receiver's window must hold exactly what the
proxy sent. The compressor keeps to what the receiver agreed to in the 101
(``*_max_window_bits``, ``*_no_context_takeover``); the inflater accepts any window.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from inspector.proxy.wsframes import INVALID_DATA, FrameError, MessageTooBig

NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"  # what a sync flush ends with, left off on the wire (7.2.1)


class UnsupportedExtension(ValueError):
    """The 101 agreed to an extension this relay cannot decode."""


@dataclass(frozen=True, slots=True)
class Agreement:
    """What the server's ``Sec-WebSocket-Extensions`` agreed to for permessage-deflate."""

    client_bits: int = 15
    server_bits: int = 15
    client_no_takeover: bool = False
    server_no_takeover: bool = False


def parse_agreement(value: str | None) -> Agreement | None:
    """The permessage-deflate terms of a 101's extension header (None: not negotiated);
    UnsupportedExtension for another extension or a malformed parameter."""
    if not value or not value.strip():
        return None
    offers = [part.strip() for part in value.split(",") if part.strip()]
    if len(offers) != 1 or offers[0].split(";")[0].strip().lower() != NAME:
        raise UnsupportedExtension(f"extensions {value!r} (only {NAME} is decoded)")
    terms: dict[str, str | None] = {}
    for param in offers[0].split(";")[1:]:
        key, _, raw = param.strip().partition("=")
        terms[key.strip().lower()] = raw.strip().strip('"') or None
    try:
        return Agreement(
            client_bits=_bits(terms.get("client_max_window_bits", "15")),
            server_bits=_bits(terms.get("server_max_window_bits", "15")),
            client_no_takeover="client_no_context_takeover" in terms,
            server_no_takeover="server_no_context_takeover" in terms,
        )
    except ValueError:
        raise UnsupportedExtension(f"{NAME} parameters {value!r}") from None


def _bits(value: str | None) -> int:
    bits = int(value or "15")
    if not 8 <= bits <= 15:
        raise ValueError(bits)
    return bits


class DeflateCodec:
    """One direction: ``inflate`` what its sender compressed, ``deflate`` for its receiver."""

    __slots__ = ("_bits", "_compressor", "_inflater", "_reset_each")

    def __init__(self, bits: int, reset_each: bool) -> None:
        # zlib cannot write raw deflate with an 8-bit window; 9 is the nearest it offers.
        self._bits = max(bits, 9)
        self._reset_each = reset_each
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._compressor = self._new_compressor()

    @classmethod
    def for_direction(cls, terms: Agreement, from_client: bool) -> DeflateCodec:
        if from_client:  # the proxy compresses toward the server as the client agreed to
            return cls(terms.client_bits, terms.client_no_takeover)
        return cls(terms.server_bits, terms.server_no_takeover)

    def _new_compressor(self) -> zlib._Compress:
        return zlib.compressobj(6, zlib.DEFLATED, -self._bits)

    def inflate(self, payload: bytes, limit: int) -> bytes:
        """The message's content; FrameError past ``limit`` bytes (1009) or corrupt (1007)."""
        try:
            data = self._inflater.decompress(payload + _TAIL, limit + 1)
        except zlib.error as e:
            raise FrameError(
                INVALID_DATA, f"a compressed message that does not inflate: {e}"
            ) from None
        if len(data) > limit:
            raise MessageTooBig(
                f"a message inflating to more than {limit} bytes (the addon limit, --body-limit)"
            )
        return data

    def deflate(self, data: bytes) -> bytes:
        if self._reset_each:
            self._compressor = self._new_compressor()
        out = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        return out[: -len(_TAIL)] if out.endswith(_TAIL) else out
