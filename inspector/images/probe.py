"""An image's format (from its magic bytes) and dimensions, from its header alone.

PNG (IHDR), GIF (logical screen), JPEG (the first SOF marker), WebP (VP8, VP8L, VP8X),
BMP (core and info headers), ICO/CUR (the largest directory entry) and SVG (the root
element's width, height and viewBox, read with a regular expression: no XML parser, so
no entity is ever expanded). Nothing here raises on bad input: a header too short to say
more gives an ``ImageInfo`` without dimensions.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOURS = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA"}


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str  # "PNG", "GIF", "JPEG", "WebP", "BMP", "ICO", "SVG"
    width: int | None = None
    height: int | None = None
    details: dict[str, str] = field(default_factory=dict)

    def summary(self, size: int) -> str:
        """``PNG image, 64 x 32 px, RGB 8-bit, 1,234 bytes``."""
        if self.width is not None and self.height is not None:
            unit = "" if self.format == "SVG" else " px"
            dims = f"{self.width} x {self.height}{unit}"
        else:
            dims = "size unknown"
        extra = "".join(f", {k} {v}" if k else f", {v}" for k, v in self.details.items())
        return f"{self.format} image, {dims}{extra}, {size:,} bytes"


def _png(data: bytes) -> ImageInfo | None:
    if data[:8] != PNG_SIGNATURE:
        return None
    if len(data) < 29 or data[12:16] != b"IHDR":
        return ImageInfo("PNG")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    details = {"": f"{PNG_COLOURS.get(colour, f'colour type {colour}')} {depth}-bit"}
    if interlace:
        details["interlaced"] = "Adam7"
    return ImageInfo("PNG", width, height, details)


def _gif(data: bytes) -> ImageInfo | None:
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        return None
    if len(data) < 10:
        return ImageInfo("GIF")
    width, height = struct.unpack("<HH", data[6:10])
    return ImageInfo("GIF", width, height, {"version": data[3:6].decode()})


# JPEG start-of-frame markers that carry the dimensions (not DHT C4, JPG C8, DAC CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(data: bytes) -> ImageInfo | None:
    if data[:3] != b"\xff\xd8\xff":
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return ImageInfo("JPEG")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF_MARKERS and pos + 9 <= len(data):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return ImageInfo("JPEG", width, height)
        pos += 2 + length
    return ImageInfo("JPEG")


def _webp(data: bytes) -> ImageInfo | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return ImageInfo("WebP", width, height, {"variant": "extended"})
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return ImageInfo("WebP", width & 0x3FFF, height & 0x3FFF, {"variant": "lossy"})
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return ImageInfo("WebP", width, height, {"variant": "lossless"})
    return ImageInfo("WebP")


def _bmp(data: bytes) -> ImageInfo | None:
    if data[:2] != b"BM" or len(data) < 18:
        return None
    header = int.from_bytes(data[14:18], "little")
    if header == 12 and len(data) >= 26:
        width, height, _, bpp = struct.unpack("<HHHH", data[18:26])
    elif header >= 40 and len(data) >= 34:
        width, height, _, bpp = struct.unpack("<iiHH", data[18:30])
    else:
        return ImageInfo("BMP")
    return ImageInfo("BMP", abs(width), abs(height), {"": f"{bpp}-bit"})


def _ico(data: bytes) -> ImageInfo | None:
    kind = data[2:4]
    if data[:2] != b"\x00\x00" or kind not in (b"\x01\x00", b"\x02\x00") or len(data) < 6:
        return None
    count = int.from_bytes(data[4:6], "little")
    entries = [data[6 + 16 * i : 22 + 16 * i] for i in range(min(count, 256))]
    sizes = [(e[0] or 256, e[1] or 256) for e in entries if len(e) == 16 and e[3] == 0]
    if not 0 < count <= 256 or not sizes:
        return None  # four bytes are too common to call an icon on their own
    width, height = max(sizes, key=lambda s: s[0] * s[1])
    name = "ICO" if kind == b"\x01\x00" else "CUR"
    return ImageInfo(name, width, height, {"images": str(count)})


# The root element must be <svg>: after an XML declaration, comments and a doctype only
# (an HTML page with inline SVG icons is not an SVG image).
_SVG_ROOT = re.compile(
    rb"(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>|\s)*<svg\b[^>]*>",
    re.IGNORECASE | re.DOTALL,
)
_SVG_ATTR = re.compile(rb"""\s(width|height|viewBox)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(px)?\s*$")


def _svg(data: bytes) -> ImageInfo | None:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<"):
        return None
    root = _SVG_ROOT.match(head)
    if root is None:
        return None
    attrs = {
        k.decode().lower(): v.decode("utf-8", "replace") for k, v in _SVG_ATTR.findall(root[0])
    }
    details = {"viewBox": attrs["viewbox"]} if "viewbox" in attrs else {}
    width, height = _svg_length(attrs.get("width")), _svg_length(attrs.get("height"))
    box = attrs.get("viewbox", "").replace(",", " ").split()
    if (width is None or height is None) and len(box) == 4:
        try:
            width, height = round(float(box[2])), round(float(box[3]))
        except ValueError:
            pass
    for name in ("width", "height"):
        if name in attrs and _svg_length(attrs[name]) is None:
            details[name] = attrs[name]  # "100%", "10em": shown as written
    return ImageInfo("SVG", width, height, details)


def _svg_length(value: str | None) -> int | None:
    match = _LENGTH.match(value or "")
    return round(float(match[1])) if match else None


PROBES = (_png, _gif, _jpeg, _webp, _bmp, _ico, _svg)


def image_info(data: bytes) -> ImageInfo | None:
    """Format and dimensions from the magic bytes and header; None when not an image."""
    for probe in PROBES:
        info = probe(data)
        if info is not None:
            return info
    return None
