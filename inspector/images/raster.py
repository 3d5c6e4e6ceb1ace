"""A decoded image as 8-bit RGBA rows, and its downscaling for a preview."""

from __future__ import annotations

from dataclasses import dataclass


class ImageError(ValueError):
    """A corrupt image; the message says which format and what is wrong (``corrupt PNG: ...``)."""


class NoPreview(Exception):
    """An image this module does not decode (a format, a variant or a size); the message
    says why, fit to show as is."""


@dataclass(frozen=True, slots=True)
class Raster:
    """``width`` x ``height`` pixels, 4 bytes each (R, G, B, alpha), rows top to bottom."""

    width: int
    height: int
    rgba: bytes

    def pixel(self, x: int, y: int) -> tuple[int, int, int, int]:
        i = 4 * (y * self.width + x)
        r, g, b, a = self.rgba[i : i + 4]
        return r, g, b, a


def interleave(width: int, *channels: bytes) -> bytearray:
    """One row of RGBA from separate R, G, B, A channel bytes (slicing: no per-pixel loop)."""
    out = bytearray(4 * width)
    for i, channel in enumerate(channels):
        out[i::4] = channel
    return out


SAMPLES = 4  # sample points per axis averaged into one preview pixel


def thumbnail(image: Raster, max_width: int, max_height: int) -> Raster:
    """``image`` shrunk (never enlarged) to fit ``max_width`` x ``max_height``, aspect
    kept; each pixel averages up to SAMPLES x SAMPLES points of its area, weighted by alpha."""
    scale = min(max_width / image.width, max_height / image.height, 1.0)
    width = max(1, round(image.width * scale))
    height = max(1, round(image.height * scale))
    if (width, height) == (image.width, image.height):
        return image
    xs = [_points(x, image.width, width) for x in range(width)]
    out = bytearray()
    src, stride = image.rgba, 4 * image.width
    for y in range(height):
        rows = [stride * sy for sy in _points(y, image.height, height)]
        for points in xs:
            out += _average(src, [row + 4 * sx for row in rows for sx in points])
    return Raster(width, height, bytes(out))


def _points(i: int, source: int, target: int) -> list[int]:
    """Up to SAMPLES source coordinates spread over target pixel ``i``'s span."""
    start, end = i * source / target, (i + 1) * source / target
    n = max(1, min(SAMPLES, int(end - start)))
    step = (end - start) / n
    return [min(source - 1, int(start + step * (k + 0.5))) for k in range(n)]


def _average(src: bytes, offsets: list[int]) -> bytes:
    r = g = b = a = 0
    for o in offsets:
        alpha = src[o + 3]
        r += src[o] * alpha
        g += src[o + 1] * alpha
        b += src[o + 2] * alpha
        a += alpha
    if not a:
        return b"\x00\x00\x00\x00"
    return bytes((r // a, g // a, b // a, a // len(offsets)))
