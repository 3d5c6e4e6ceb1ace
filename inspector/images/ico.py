"""ICO and CUR files (favicons): the largest image of the directory, which is either a
whole PNG or a headerless BMP (a DIB of twice the height: the colours, then a 1-bit AND
mask where 1 is transparent; 32-bit colours carry their own alpha)."""

from __future__ import annotations

import struct

from inspector.images import bmp, png
from inspector.images.probe import PNG_SIGNATURE
from inspector.images.raster import ImageError, Raster


def _corrupt(what: str) -> ImageError:
    return ImageError(f"corrupt ICO: {what}")


def _largest(data: bytes) -> bytes:
    """The bytes of the directory's largest image (the deepest of equal sizes)."""
    count = int.from_bytes(data[4:6], "little")
    best: tuple[int, int, int, int] | None = None
    for i in range(count):
        entry = data[6 + 16 * i : 22 + 16 * i]
        if len(entry) < 16:
            raise _corrupt(f"the directory ends at entry {i + 1} of {count}")
        width, height = entry[0] or 256, entry[1] or 256
        bpp, size, offset = struct.unpack("<HII", entry[6:16])
        if best is None or (width * height, bpp) > best[:2]:
            best = (width * height, bpp, size, offset)
    if best is None:
        raise _corrupt("no image in the directory")
    _, _, size, offset = best
    if offset + size > len(data) or size < 40:
        raise _corrupt(f"an image of {size:,} bytes at {offset:,} in {len(data):,} bytes")
    return data[offset : offset + size]


def decode(data: bytes) -> Raster:
    """The largest image of an ICO/CUR file as RGBA."""
    image = _largest(data)
    if image.startswith(PNG_SIGNATURE):
        return png.decode(image)
    header, width, height, _, bpp = struct.unpack("<IiiHH", image[:16])
    if header < 40:
        raise _corrupt(f"a {header}-byte bitmap header")
    height //= 2  # the colours and the mask
    colours = (width * bpp + 31) // 32 * 4 * height
    used = int.from_bytes(image[32:36], "little")
    palette = 4 * (used if 0 < used <= 1 << bpp else 1 << bpp) if bpp <= 8 else 0
    start = 14 + header + palette  # where the pixels are in the file made below
    fixed = image[:8] + struct.pack("<i", height) + image[12:]
    raster = bmp.decode(b"BM" + struct.pack("<IHHI", 14 + len(fixed), 0, 0, start) + fixed)
    pixels = bytearray(raster.rgba)
    if bpp == 32 and _has_alpha(image[header + palette : header + palette + colours]):
        _copy_alpha(pixels, image[header + palette :], width, height)
    else:
        _apply_mask(pixels, image[header + palette + colours :], width, height)
    return Raster(raster.width, raster.height, bytes(pixels))


def _has_alpha(bgra: bytes) -> bool:
    return any(bgra[3::4])


def _copy_alpha(pixels: bytearray, bgra: bytes, width: int, height: int) -> None:
    for y in range(height):  # stored bottom-up
        row = bgra[4 * width * (height - 1 - y) : 4 * width * (height - y)]
        pixels[4 * width * y + 3 : 4 * width * (y + 1) : 4] = row[3::4]


def _apply_mask(pixels: bytearray, mask: bytes, width: int, height: int) -> None:
    stride = (width + 31) // 32 * 4
    if len(mask) < stride * height:
        return  # no mask (some writers leave it out): opaque
    for y in range(height):
        row = mask[stride * (height - 1 - y) : stride * (height - y)]
        for x in range(width):
            if row[x >> 3] & (0x80 >> (x & 7)):
                pixels[4 * (width * y + x) + 3] = 0
