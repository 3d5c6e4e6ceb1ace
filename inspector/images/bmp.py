"""A BMP decoder for uncompressed bitmaps: 1, 4 and 8 bits with a palette, 16, 24 and 32
bits (BI_RGB, or BI_BITFIELDS masks), bottom-up or top-down. RLE and embedded JPEG/PNG
bitmaps are declined, saying so."""

from __future__ import annotations

import struct

from inspector.images.raster import ImageError, NoPreview, Raster, interleave

_COMPRESSIONS = {1: "RLE8", 2: "RLE4", 4: "JPEG", 5: "PNG"}
_DEFAULT_MASKS = {16: (0x7C00, 0x03E0, 0x001F, 0), 32: (0xFF0000, 0xFF00, 0xFF, 0)}


def _corrupt(what: str) -> ImageError:
    return ImageError(f"corrupt BMP: {what}")


def _masks(data: bytes, header: int, compression: int, bpp: int) -> tuple[int, ...]:
    if compression in (3, 6):  # BI_BITFIELDS, BI_ALPHABITFIELDS: after a 40-byte header
        count = 4 if compression == 6 or header >= 56 else 3
        if len(data) < 54 + 4 * count:
            raise _corrupt("the colour masks are missing")
        masks = struct.unpack(f"<{count}I", data[54 : 54 + 4 * count])
        return (*masks, 0)[:4]
    return _DEFAULT_MASKS.get(bpp, (0, 0, 0, 0))


def _header(data: bytes) -> tuple[int, int, bool, int, int, int]:
    """width, height, top-down, bits per pixel, compression, header size."""
    if data[:2] != b"BM" or len(data) < 26:
        raise _corrupt("no BMP header")
    header = int.from_bytes(data[14:18], "little")
    if header == 12:
        width, height, _, bpp = struct.unpack("<HHHH", data[18:26])
        return width, height, False, bpp, 0, header
    if header < 40 or len(data) < 54:
        raise _corrupt(f"a {header}-byte info header")
    width, height, _, bpp, compression = struct.unpack("<iiHHI", data[18:34])
    if compression in _COMPRESSIONS:
        raise NoPreview(
            f"no preview: {_COMPRESSIONS[compression]}-compressed BMPs are not decoded here"
        )
    if compression not in (0, 3, 6):
        raise _corrupt(f"unknown compression {compression}")
    if width <= 0 or height == 0 or bpp not in (1, 4, 8, 16, 24, 32):
        raise _corrupt(f"{width} x {height} pixels of {bpp} bits")
    return width, abs(height), height < 0, bpp, compression, header


def decode(data: bytes) -> Raster:
    """The BMP ``data`` as RGBA; ImageError when corrupt, NoPreview for RLE/JPEG/PNG."""
    width, height, top_down, bpp, compression, header = _header(data)
    offset = int.from_bytes(data[10:14], "little")
    stride = (width * bpp + 31) // 32 * 4
    if offset + stride * height > len(data):
        raise _corrupt(
            f"the pixels need {offset + stride * height:,} bytes, the file has {len(data):,}"
        )
    if bpp <= 8:
        to_rgba = _palette_rows(data, header, bpp, width)
    elif bpp == 24:

        def to_rgba(row: bytes) -> bytes:
            end = 3 * width  # rows are padded to 4 bytes
            channels = (row[2:end:3], row[1:end:3], row[0:end:3], b"\xff" * width)
            return bytes(interleave(width, *channels))
    else:
        to_rgba = _masked_rows(_masks(data, header, compression, bpp), bpp, width)
    rows = [to_rgba(data[offset + y * stride : offset + (y + 1) * stride]) for y in range(height)]
    if not top_down:
        rows.reverse()
    return Raster(width, height, b"".join(rows))


def _palette_rows(data: bytes, header: int, bpp: int, width: int):
    entry = 3 if header == 12 else 4
    start = 14 + header
    count = 1 << bpp
    if header >= 40:
        used = int.from_bytes(data[46:50], "little")
        count = used if 0 < used <= count else count
    table = data[start : start + entry * count]
    colours = [b"\x00\x00\x00\xff"] * 256  # indices past the table show black
    for i in range(len(table) // entry):
        b, g, r = table[i * entry : i * entry + 3]
        colours[i] = bytes((r, g, b, 255))
    per, mask = 8 // bpp, (1 << bpp) - 1
    unpack = [bytes((v >> (8 - bpp * (k + 1))) & mask for k in range(per)) for v in range(256)]

    def rgba(row: bytes) -> bytes:
        indices = row if bpp == 8 else b"".join(map(unpack.__getitem__, row))
        return b"".join(map(colours.__getitem__, indices[:width]))

    return rgba


def _masked_rows(masks: tuple[int, ...], bpp: int, width: int):
    """16- and 32-bit pixels through their channel masks; alpha only when a mask gives it."""
    size = bpp // 8
    shifts = [(m & -m).bit_length() - 1 if m else 0 for m in masks]
    maxima = [m >> s if m else 0 for m, s in zip(masks, shifts, strict=True)]
    if size == 4 and masks[:3] == (0xFF0000, 0xFF00, 0xFF):  # the usual BGRA: slicing

        def fast(row: bytes) -> bytes:
            end = 4 * width
            alpha = row[3:end:4] if masks[3] == 0xFF000000 else b"\xff" * width
            return bytes(interleave(width, row[2:end:4], row[1:end:4], row[0:end:4], alpha))

        return fast

    def rgba(row: bytes) -> bytes:
        out = bytearray()
        for x in range(width):
            value = int.from_bytes(row[x * size : x * size + size], "little")
            for c in range(4):
                if maxima[c]:
                    out.append(((value & masks[c]) >> shifts[c]) * 255 // maxima[c])
                else:
                    out.append(255 if c == 3 else 0)
        return bytes(out)

    return rgba
