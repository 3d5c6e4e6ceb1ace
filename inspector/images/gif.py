"""A GIF decoder on the standard library: the first frame (LZW, local or global colour
table, transparency, interlacing) drawn on the logical screen; later frames are counted."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from inspector.images.raster import ImageError, NoPreview, Raster

MAX_CODE_BITS = 12


def _corrupt(what: str) -> ImageError:
    return ImageError(f"corrupt GIF: {what}")


@dataclass(slots=True)
class _Frame:
    left: int
    top: int
    width: int
    height: int
    interlaced: bool
    colours: bytes
    transparent: int | None
    min_code: int
    data: bytes


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise _corrupt(f"the data ends inside {what}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def blocks(self, what: str) -> bytes:
        """The data sub-blocks up to the zero-length terminator, joined."""
        parts = []
        while size := self.take(1, what)[0]:
            parts.append(self.take(size, what))
        return b"".join(parts)


def _table(packed: int, reader: _Reader, what: str) -> bytes:
    return reader.take(3 * (2 << (packed & 7)), what) if packed & 0x80 else b""


def _frames(data: bytes) -> tuple[int, int, list[_Frame]]:
    """The logical screen's size and the frames; raises for a stream broken before the
    first frame is whole."""
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise _corrupt("no GIF signature")
    reader = _Reader(data)
    reader.pos = 6
    width, height, packed, _, _ = struct.unpack("<HHBBB", reader.take(7, "the screen"))
    colours = _table(packed, reader, "the global colour table")
    frames: list[_Frame] = []
    try:
        _walk(reader, colours, frames)
    except ImageError:
        if not frames:
            raise
        # A frame is whole: the first frame shows although a later one is cut or broken.
    return width, height, frames


def frame_count(data: bytes) -> int:
    """How many frames a GIF has (those before any damage); 0 when it cannot say."""
    try:
        return len(_frames(data)[2])
    except ImageError:
        return 0


def _walk(reader: _Reader, colours: bytes, frames: list[_Frame]) -> None:
    transparent: int | None = None
    while True:
        introducer = reader.take(1, "the block list (no trailer)")[0]
        if introducer == 0x3B:  # trailer
            return
        if introducer == 0x21:
            label = reader.take(1, "an extension")[0]
            body = reader.blocks("an extension")
            if label == 0xF9 and len(body) >= 4 and body[0] & 1:
                transparent = body[3]
        elif introducer == 0x2C:
            frames.append(_frame(reader, colours, transparent))
            transparent = None
        else:
            raise _corrupt(f"unknown block 0x{introducer:02x} at byte {reader.pos - 1}")


def _frame(reader: _Reader, colours: bytes, transparent: int | None) -> _Frame:
    left, top, w, h, packed = struct.unpack("<HHHHB", reader.take(9, "an image descriptor"))
    local = _table(packed, reader, "a local colour table")
    min_code = reader.take(1, "the image data")[0]
    if not 2 <= min_code <= 8:  # indices are bytes
        raise _corrupt(f"LZW minimum code size {min_code}")
    data = reader.blocks("the image data")
    return _Frame(
        left, top, w, h, bool(packed & 0x40), local or colours, transparent, min_code, data
    )


def lzw_decode(data: bytes, min_code: int, limit: int) -> bytes:
    """GIF's variable-width LZW (codes packed least significant bit first), at most
    ``limit`` bytes out."""
    clear, end = 1 << min_code, (1 << min_code) + 1
    table = [bytes((i,)) for i in range(clear)] + [b"", b""]
    out = bytearray()
    size, mask = min_code + 1, (1 << (min_code + 1)) - 1
    bits = nbits = 0
    prev: bytes | None = None
    for byte in data:
        bits |= byte << nbits
        nbits += 8
        while nbits >= size:
            code = bits & mask
            bits >>= size
            nbits -= size
            if code == clear:
                del table[clear + 2 :]
                size, mask, prev = min_code + 1, (1 << (min_code + 1)) - 1, None
                continue
            if code == end or len(out) >= limit:
                return bytes(out[:limit])
            if code < len(table):
                entry = table[code]
                if prev is not None and len(table) < 1 << MAX_CODE_BITS:
                    table.append(prev + entry[:1])
            elif code == len(table) and prev is not None:
                entry = prev + prev[:1]
                table.append(entry)
            else:
                raise _corrupt(f"LZW code {code} before it was defined")
            out += entry
            prev = entry
            if len(table) == mask + 1 and size < MAX_CODE_BITS:
                size += 1
                mask = (1 << size) - 1
    return bytes(out[:limit])


def _row_order(height: int, interlaced: bool) -> list[int]:
    """The image row each stored row belongs to (interlaced: passes of 8, 8, 4, 2)."""
    if not interlaced:
        return list(range(height))
    return [
        y for start, step in ((0, 8), (4, 8), (2, 4), (1, 2)) for y in range(start, height, step)
    ]


def decode(data: bytes, max_pixels: int = 1 << 24) -> tuple[Raster, int]:
    """The first frame on the logical screen as RGBA (a frame reaching past the screen is
    cut at its edge), and how many frames there are."""
    width, height, frames = _frames(data)
    if not frames:
        raise _corrupt("no image in the file")
    f = frames[0]
    if not f.colours:
        raise _corrupt("no colour table")
    if not width or not height:  # no screen size given: the frame's
        width, height = f.left + f.width, f.top + f.height
    if f.width * f.height > max_pixels or width * height > max_pixels:
        raise NoPreview(
            f"no preview: a {f.width} x {f.height} frame on a {width} x {height} screen"
        )
    indices = lzw_decode(f.data, f.min_code, f.width * f.height)
    palette = [b"\x00\x00\x00\x00"] * 256  # index -> RGBA; past the table: transparent
    for i in range(min(256, len(f.colours) // 3)):
        palette[i] = f.colours[3 * i : 3 * i + 3] + b"\xff"
    if f.transparent is not None:
        palette[f.transparent] = b"\x00\x00\x00\x00"
    canvas = bytearray(4 * width * height)
    shown = max(0, min(f.width, width - f.left))  # columns inside the screen
    for stored, y in enumerate(_row_order(f.height, f.interlaced)):
        if f.top + y >= height:
            continue
        row = indices[stored * f.width : stored * f.width + shown]  # short: the data ran out
        at = 4 * ((f.top + y) * width + f.left)
        canvas[at : at + 4 * len(row)] = b"".join(map(palette.__getitem__, row))
    return Raster(width, height, bytes(canvas)), len(frames)
