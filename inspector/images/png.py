"""A PNG decoder on the standard library (zlib): every colour type and bit depth,
palettes and tRNS transparency, plain and Adam7-interlaced images.

Chunks are checked (lengths, CRCs, order), the image data is inflated no further than the
image needs, and the five scanline filters are undone row by row. Filters None, Sub and
Up run as C-level iterator chains; Average and Paeth, which depend on the byte to their
left, are plain loops. Samples become 8-bit RGBA (16-bit keeps its high byte).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace
from itertools import accumulate
from operator import add

from inspector.images.probe import PNG_SIGNATURE
from inspector.images.raster import ImageError, Raster, interleave

_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_MASK = (255).__and__


def _corrupt(what: str) -> ImageError:
    return ImageError(f"corrupt PNG: {what}")


@dataclass(slots=True)
class _Header:
    width: int
    height: int
    depth: int
    colour: int
    interlaced: bool = False
    palette: bytes = b""
    trns: bytes | None = None

    @property
    def channels(self) -> int:
        return _CHANNELS[self.colour]

    @property
    def row_bytes(self) -> int:
        return (self.width * self.channels * self.depth + 7) // 8

    @property
    def bpp(self) -> int:
        """Bytes per complete pixel, at least 1: the distance the filters look left."""
        return max(1, self.channels * self.depth // 8)


def _chunks(data: bytes):
    """(type, body) of each chunk after the signature, checked; stops after IEND."""
    pos = 8
    while True:
        if pos + 8 > len(data):
            raise _corrupt("the data ends before the IEND chunk")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise _corrupt(f"the data ends inside the {kind.decode('latin-1')} chunk")
        body = data[pos + 8 : pos + 8 + length]
        if zlib.crc32(kind + body) != int.from_bytes(data[end - 4 : end], "big"):
            raise _corrupt(f"the {kind.decode('latin-1')} chunk's CRC does not match")
        yield kind, body
        if kind == b"IEND":
            return
        pos = end


def _header(body: bytes) -> _Header:
    if len(body) != 13:
        raise _corrupt(f"IHDR is {len(body)} bytes, not 13")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", body
    )
    if not width or not height:
        raise _corrupt(f"the image is {width} x {height} pixels")
    if depth not in _DEPTHS.get(colour, ()):
        raise _corrupt(f"bit depth {depth} with colour type {colour} is not allowed")
    if compression or filtering:
        raise _corrupt(f"unknown compression {compression} or filter method {filtering}")
    if interlace > 1:
        raise _corrupt(f"unknown interlace method {interlace}")
    return _Header(width, height, depth, colour, interlaced=interlace == 1)


def parse(data: bytes) -> tuple[_Header, bytes]:
    """The header (with palette and tRNS) and the concatenated IDAT data."""
    if data[:8] != PNG_SIGNATURE:
        raise _corrupt("no PNG signature")
    header: _Header | None = None
    idat: list[bytes] = []
    for kind, body in _chunks(data):
        if header is None and kind != b"IHDR":
            raise _corrupt(f"the first chunk is {kind.decode('latin-1')}, not IHDR")
        if kind == b"IHDR":
            header = _header(body)
        elif kind == b"PLTE":
            header.palette = body  # type: ignore[union-attr]
        elif kind == b"tRNS":
            header.trns = body  # type: ignore[union-attr]
        elif kind == b"IDAT":
            idat.append(body)
    assert header is not None  # the loop raised otherwise
    if header.colour == 3 and (not header.palette or len(header.palette) % 3):
        raise _corrupt("a palette image without a valid PLTE chunk")
    if not idat:
        raise _corrupt("no IDAT chunk")
    return header, b"".join(idat)


def _inflate(compressed: bytes, size: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, size)
    except zlib.error as e:
        raise _corrupt(f"the image data does not inflate ({e})") from None
    if len(raw) < size:
        raise _corrupt(f"the image data holds {len(raw):,} of {size:,} bytes")
    return raw


def _unfilter(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    if kind == 0:
        return row
    if kind == 2:
        return bytes(map(_MASK, map(add, row, prev)))
    if kind == 1:  # each byte adds the decoded byte bpp to its left: a running sum per channel
        out = bytearray(len(row))
        for c in range(bpp):
            out[c::bpp] = bytes(map(_MASK, accumulate(row[c::bpp])))
        return bytes(out)
    if kind in (3, 4):
        return _left_dependent(kind, row, prev, bpp)
    raise _corrupt(f"unknown filter type {kind}")


def _left_dependent(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    out = bytearray(row)
    if kind == 3:  # Average
        for i in range(len(out)):
            left = out[i - bpp] if i >= bpp else 0
            out[i] = (out[i] + ((left + prev[i]) >> 1)) & 255
        return bytes(out)
    for i in range(len(out)):  # Paeth
        up = prev[i]
        if i >= bpp:
            left, corner = out[i - bpp], prev[i - bpp]
        else:
            left = corner = 0
        p = left + up - corner
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
        if pa <= pb and pa <= pc:
            out[i] = (out[i] + left) & 255
        elif pb <= pc:
            out[i] = (out[i] + up) & 255
        else:
            out[i] = (out[i] + corner) & 255
    return bytes(out)


def _rows(h: _Header, raw: bytes, pos: int) -> list[bytes]:
    """``h.height`` rows of ``h.width`` pixels from ``raw`` at ``pos``, as RGBA."""
    stride, to_rgba = h.row_bytes, _converter(h)
    prev = bytes(stride)
    rows = []
    for y in range(h.height):
        start = pos + y * (stride + 1)
        row = _unfilter(raw[start], raw[start + 1 : start + 1 + stride], prev, h.bpp)
        rows.append(to_rgba(row))
        prev = row
    return rows


# Adam7's passes: first column and row, then the steps across and down.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))  # fmt: skip


def _passes(h: _Header) -> list[tuple[int, int, int, int, _Header]]:
    """Each non-empty pass: where it starts, its steps, and its own (smaller) header."""
    out = []
    for x0, y0, dx, dy in _ADAM7:
        width, height = (h.width - x0 + dx - 1) // dx, (h.height - y0 + dy - 1) // dy
        if width > 0 and height > 0:
            out.append((x0, y0, dx, dy, replace(h, width=width, height=height)))
    return out


def decode(data: bytes) -> Raster:
    """The PNG ``data`` as RGBA (ImageError when corrupt)."""
    h, compressed = parse(data)
    if not h.interlaced:
        raw = _inflate(compressed, h.height * (h.row_bytes + 1))
        return Raster(h.width, h.height, b"".join(_rows(h, raw, 0)))
    passes = _passes(h)
    raw = _inflate(compressed, sum(p[4].height * (p[4].row_bytes + 1) for p in passes))
    canvas, pos, line = bytearray(4 * h.width * h.height), 0, 4 * h.width
    for x0, y0, dx, dy, sub in passes:
        for i, row in enumerate(_rows(sub, raw, pos)):
            base = line * (y0 + i * dy) + 4 * x0
            for c in range(4):  # this pass's pixels of the row, channel by channel
                canvas[base + c : line * (y0 + i * dy + 1) : 4 * dx] = row[c::4]
        pos += sub.height * (sub.row_bytes + 1)
    return Raster(h.width, h.height, bytes(canvas))


def _unpack(depth: int) -> list[bytes]:
    """For depths below 8: each byte's samples, one byte each (most significant first)."""
    per, mask = 8 // depth, (1 << depth) - 1
    return [bytes((b >> (8 - depth * (k + 1))) & mask for k in range(per)) for b in range(256)]


def _converter(h: _Header):
    """A function from one unfiltered row to its RGBA bytes."""
    width = h.width
    if h.depth < 8:
        table = _unpack(h.depth)

        def samples(row: bytes) -> bytes:
            return b"".join(map(table.__getitem__, row))[:width]
    elif h.depth == 16:

        def samples(row: bytes) -> bytes:
            return row[0::2]  # the high byte of each big-endian sample
    else:

        def samples(row: bytes) -> bytes:
            return row

    if h.colour == 3:
        return _palette_rows(h, samples)
    if h.colour in (0, 2):
        return _opaque_rows(h, samples)
    alpha_at = 1 if h.colour == 4 else 3
    colours = (0, 0, 0) if h.colour == 4 else (0, 1, 2)
    n = h.channels

    def rgba(row: bytes) -> bytes:
        s = samples(row)
        return bytes(interleave(width, *(s[c::n] for c in colours), s[alpha_at::n]))

    return rgba


def _palette_rows(h: _Header, samples):
    entries = len(h.palette) // 3
    alpha = (h.trns or b"")[:entries]
    # Indices past the palette show black (decoders differ; none fails the image for it).
    reds, greens, blues = (bytes(h.palette[c::3]).ljust(256, b"\x00") for c in range(3))
    alphas = (alpha + b"\xff" * (entries - len(alpha))).ljust(256, b"\xff")

    def rgba(row: bytes) -> bytes:
        s = samples(row)
        return bytes(interleave(h.width, *(s.translate(t) for t in (reds, greens, blues, alphas))))

    return rgba


def _opaque_rows(h: _Header, samples):
    """Greyscale and RGB: opaque but for the one colour tRNS names."""
    n, width, scale = h.channels, h.width, 255 // ((1 << min(h.depth, 8)) - 1)
    level = bytes(min(255, v * scale) for v in range(256))
    key = _transparent_key(h)
    grey_key = None
    if key is not None and h.depth <= 8 and n == 1:  # one byte per sample: translate
        grey_key = bytes(0 if v == key[0] else 255 for v in range(256))

    def rgba(row: bytes) -> bytes:
        s = samples(row)
        if n == 3:
            channels = [s[c::3].translate(level) for c in range(3)]
        else:
            channels = [s.translate(level)] * 3
        if key is None:
            alpha = b"\xff" * width
        elif grey_key is not None:
            alpha = s.translate(grey_key)
        else:  # whole samples compared (16-bit ones in full)
            size = len(key)
            alpha = bytes(
                0 if row[i : i + size] == key else 255 for i in range(0, size * width, size)
            )
        return bytes(interleave(width, *channels, alpha))

    return rgba


def _transparent_key(h: _Header) -> bytes | None:
    """The transparent colour's sample bytes as they appear in a row (unpacked below 8 bits)."""
    need = 2 * h.channels
    if h.trns is None or len(h.trns) < need:
        return None
    values = struct.unpack(f">{h.channels}H", h.trns[:need])
    if h.depth == 16:
        return b"".join(v.to_bytes(2, "big") for v in values)
    return bytes(v & ((1 << h.depth) - 1) for v in values)
