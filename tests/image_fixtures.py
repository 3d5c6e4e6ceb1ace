"""Real PNG, GIF and BMP files made in the test (struct and zlib, and a small LZW encoder),
from pixel grids, so that the decoders are checked against known pixels.

The encoders are written from the formats' specifications (PNG: RFC 2083 / W3C PNG;
GIF89a; BMP's BITMAPINFOHEADER) and kept apart from inspector.images on purpose: they
share no code with the decoders they check.
"""

from __future__ import annotations

import struct
import zlib

Pixel = tuple[int, ...]  # RGB or RGBA, 0..255


def gradient(width: int, height: int, alpha: bool = False) -> list[list[Pixel]]:
    """A picture whose every pixel differs: red grows left to right, green top to bottom."""
    rows = []
    for y in range(height):
        row = []
        for x in range(width):
            r, g, b = (x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x * y) % 256)
            row.append((r, g, b, (x * 37 + y * 11) % 256) if alpha else (r, g, b))
        rows.append(row)
    return rows


# --- PNG ----------------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    """PNG's forward filter ``kind`` (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth)."""
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
        out.append((x - predictor) % 256)
    return bytes(out)


def png(
    rows: list[bytes],
    width: int,
    *,
    depth: int = 8,
    colour: int = 2,
    bpp: int = 3,
    filters: tuple[int, ...] = (0, 1, 2, 3, 4),
    extra: list[tuple[bytes, bytes]] = (),
    interlace: int = 0,
) -> bytes:
    """A PNG of already packed scanlines ``rows``; row y uses ``filters[y % len]``."""
    prev = bytes(len(rows[0]))
    raw = bytearray()
    for y, row in enumerate(rows):
        kind = filters[y % len(filters)]
        raw.append(kind)
        raw += filter_row(kind, row, prev, bpp)
        prev = row
    ihdr = struct.pack(">IIBBBBB", width, len(rows), depth, colour, 0, 0, interlace)
    chunks = [png_chunk(b"IHDR", ihdr), *(png_chunk(k, v) for k, v in extra)]
    chunks += [png_chunk(b"IDAT", zlib.compress(bytes(raw), 9)), png_chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def png_adam7(pixels: list[list[Pixel]], filters: tuple[int, ...] = (4, 1, 2, 3, 0)) -> bytes:
    """An interlaced RGBA PNG: the seven passes' sub-images, each filtered on its own."""
    width, height = len(pixels[0]), len(pixels)
    raw = bytearray()
    starts = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
              (1, 0, 2, 2), (0, 1, 1, 2))  # fmt: skip
    for x0, y0, dx, dy in starts:
        rows = [
            bytes(c for x in range(x0, width, dx) for c in pixels[y][x])
            for y in range(y0, height, dy)
        ]
        rows = [r for r in rows if r]
        prev = bytes(len(rows[0])) if rows else b""
        for n, row in enumerate(rows):
            kind = filters[n % len(filters)]
            raw += bytes((kind,)) + filter_row(kind, row, prev, 4)
            prev = row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 1)
    idat = png_chunk(b"IDAT", zlib.compress(bytes(raw)))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + idat + png_chunk(b"IEND", b"")


def png_rgb(pixels: list[list[Pixel]], **kw) -> bytes:
    rows = [bytes(c for p in row for c in p[:3]) for row in pixels]
    return png(rows, len(pixels[0]), **kw)


def png_rgba(pixels: list[list[Pixel]], **kw) -> bytes:
    rows = [bytes(c for p in row for c in p) for row in pixels]
    return png(rows, len(pixels[0]), colour=6, bpp=4, **kw)


def pack(values: list[int], depth: int) -> bytes:
    """Samples of ``depth`` bits packed most significant first, the row padded to a byte."""
    bits = "".join(format(v, f"0{depth}b") for v in values)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))


# --- GIF ----------------------------------------------------------------------------------


def lzw_encode(indices: bytes, min_code: int) -> bytes:
    """GIF's LZW: codes grow from min_code+1 bits to 12, a clear code when the table fills."""
    clear, end = 1 << min_code, (1 << min_code) + 1
    codes: list[tuple[int, int]] = [(clear, min_code + 1)]
    table = {bytes((i,)): i for i in range(clear)}
    next_code, size = end + 1, min_code + 1
    current = b""
    for value in indices:
        candidate = current + bytes((value,))
        if candidate in table:
            current = candidate
            continue
        codes.append((table[current], size))
        if next_code < 4096:
            table[candidate] = next_code
            next_code += 1
            if next_code > (1 << size) and size < 12:
                size += 1
        else:
            codes.append((clear, size))
            table = {bytes((i,)): i for i in range(clear)}
            next_code, size = end + 1, min_code + 1
        current = bytes((value,))
    if current:
        codes.append((table[current], size))
    codes.append((end, size))
    out, bits, nbits = bytearray(), 0, 0
    for code, width in codes:
        bits |= code << nbits
        nbits += width
        while nbits >= 8:
            out.append(bits & 255)
            bits >>= 8
            nbits -= 8
    if nbits:
        out.append(bits & 255)
    return bytes(out)


def _sub_blocks(data: bytes) -> bytes:
    return (
        b"".join(
            bytes((len(data[i : i + 255]),)) + data[i : i + 255] for i in range(0, len(data), 255)
        )
        + b"\x00"
    )


def gif(
    width: int,
    height: int,
    palette: list[tuple[int, int, int]],
    indices: bytes,
    *,
    transparent: int | None = None,
    frames: int = 1,
    interlaced: bool = False,
) -> bytes:
    """A GIF89a with a global colour table and ``frames`` copies of one image."""
    bits = max(1, (len(palette) - 1).bit_length())
    table = b"".join(bytes(c) for c in palette).ljust(3 * (1 << bits), b"\x00")
    out = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80 | (bits - 1), 0, 0) + table
    stored = indices
    if interlaced:
        order = [y for s, st in ((0, 8), (4, 8), (2, 4), (1, 2)) for y in range(s, height, st)]
        stored = b"".join(indices[y * width : (y + 1) * width] for y in order)
    min_code = max(2, bits)
    for _ in range(frames):
        if transparent is not None:
            out += b"\x21\xf9\x04" + struct.pack("<BHB", 1, 0, transparent) + b"\x00"
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0x40 if interlaced else 0)
        out += bytes((min_code,)) + _sub_blocks(lzw_encode(stored, min_code))
    return out + b"\x3b"


# --- BMP ----------------------------------------------------------------------------------


def bmp24(pixels: list[list[Pixel]], *, top_down: bool = False) -> bytes:
    """A 24-bit BI_RGB bitmap (rows padded to 4 bytes, bottom-up unless ``top_down``)."""
    width, height = len(pixels[0]), len(pixels)
    stride = (width * 3 + 3) // 4 * 4
    ordered = pixels if top_down else pixels[::-1]
    body = b"".join(
        bytes(c for r, g, b, *_ in row for c in (b, g, r)).ljust(stride, b"\x00") for row in ordered
    )
    info = struct.pack(
        "<IiiHHIIiiII",
        40,
        width,
        -height if top_down else height,
        1,
        24,
        0,
        len(body),
        2835,
        2835,
        0,
        0,
    )
    head = b"BM" + struct.pack("<IHHI", 14 + 40 + len(body), 0, 0, 14 + 40)
    return head + info + body


def bmp8(indices: list[list[int]], palette: list[tuple[int, int, int]]) -> bytes:
    """An 8-bit palette bitmap, bottom-up."""
    width, height = len(indices[0]), len(indices)
    stride = (width + 3) // 4 * 4
    body = b"".join(bytes(row).ljust(stride, b"\x00") for row in indices[::-1])
    table = b"".join(bytes((b, g, r, 0)) for r, g, b in palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 0, len(body), 0, 0, len(palette), 0)
    offset = 14 + 40 + len(table)
    return b"BM" + struct.pack("<IHHI", offset + len(body), 0, 0, offset) + info + table + body


# --- ICO ----------------------------------------------------------------------------------


def ico(images: list[tuple[int, int, int, bytes]]) -> bytes:
    """An ICO of (width, height, bits per pixel, image bytes) entries, stored in order."""
    offset = 6 + 16 * len(images)
    directory, blobs = b"", b""
    for width, height, bpp, blob in images:
        directory += struct.pack(
            "<BBBBHHII", width % 256, height % 256, 0, 0, 1, bpp, len(blob), offset + len(blobs)
        )
        blobs += blob
    return struct.pack("<HHH", 0, 1, len(images)) + directory + blobs


def ico_dib32(pixels: list[list[Pixel]]) -> bytes:
    """A 32-bit BGRA bitmap as an ICO stores it: no file header, twice the height, then
    an all-zero AND mask (alpha says what shows)."""
    width, height = len(pixels[0]), len(pixels)
    colours = b"".join(bytes(c for r, g, b, a in row for c in (b, g, r, a)) for row in pixels[::-1])
    mask = bytes((width + 31) // 32 * 4 * height)
    info = struct.pack("<IiiHHIIiiII", 40, width, 2 * height, 1, 32, 0, 0, 0, 0, 0, 0)
    return info + colours + mask


def ico_dib8_masked(indices: list[list[int]], palette: list[tuple[int, int, int]],
                    clear: set[tuple[int, int]]) -> bytes:  # fmt: skip
    """An 8-bit bitmap as an ICO stores it, with the AND mask's 1s at ``clear`` (x, y)."""
    width, height = len(indices[0]), len(indices)
    stride = (width + 3) // 4 * 4
    colours = b"".join(bytes(row).ljust(stride, b"\x00") for row in indices[::-1])
    mask_stride = (width + 31) // 32 * 4
    mask = bytearray(mask_stride * height)
    for x, y in clear:
        mask[mask_stride * (height - 1 - y) + x // 8] |= 0x80 >> (x % 8)
    table = b"".join(bytes((b, g, r, 0)) for r, g, b in palette).ljust(4 * 256, b"\x00")
    info = struct.pack("<IiiHHIIiiII", 40, width, 2 * height, 1, 8, 0, 0, 0, 0, 0, 0)
    return info + table + colours + bytes(mask)
