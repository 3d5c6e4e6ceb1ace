"""Images in message bodies: format and dimensions from the header (``probe``), and a
preview decoded with the standard library alone: PNG (``png``), GIF (``gif``),
uncompressed BMP (``bmp``) and ICO/CUR favicons (``ico``: PNG or BMP inside) become RGBA
``Raster``s, shrunk with ``thumbnail``.

Nothing here imports Textual or Rich. JPEG and WebP are declined ("decoding JPEG needs an
image library": no dependency is added for a preview); so are images over
``MAX_PIXELS`` or bodies over ``MAX_BYTES`` (the decoders are pure Python). A corrupt
image is an ``ImageError`` saying what is wrong, never a traceback.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from inspector.images import bmp, gif, ico, png
from inspector.images.probe import ImageInfo, image_info
from inspector.images.raster import ImageError, NoPreview, Raster, thumbnail

__all__ = [
    "MAX_BYTES",
    "MAX_PIXELS",
    "ImageError",
    "ImageInfo",
    "NoPreview",
    "Raster",
    "decode",
    "describe",
    "image_info",
    "no_preview_reason",
    "thumbnail",
]

MAX_BYTES = 16 * 1024 * 1024  # bodies decoded for a preview at most
# Images decoded for a preview at most: the decoders are pure Python (Paeth-filtered PNG
# rows cost about 0.3 us a byte: 2.5 s for a 1920 x 1080 RGBA screenshot, in a worker).
MAX_PIXELS = 2_500_000

_DECODERS: dict[str, Callable[[bytes], Raster]] = {
    "PNG": png.decode,
    "GIF": lambda data: gif.decode(data, MAX_PIXELS)[0],
    "BMP": bmp.decode,
    "ICO": ico.decode,
    "CUR": ico.decode,
}
_LIBRARY_FORMATS = ("JPEG", "WebP")


def no_preview_reason(info: ImageInfo, size: int) -> str | None:
    """Why an image gets no preview, known from its header; None when it is decoded."""
    if info.format in _LIBRARY_FORMATS:
        return f"no preview: decoding {info.format} needs an image library"
    if info.format == "SVG":
        return "no preview: SVG is drawn from its XML (m shows the markup)"
    if info.format not in _DECODERS:
        return f"no preview: {info.format} images are not decoded here"
    if size > MAX_BYTES:
        return f"no preview: the body is over {MAX_BYTES // 2**20} MiB"
    pixels = (info.width or 0) * (info.height or 0)
    if pixels > MAX_PIXELS:
        limit = MAX_PIXELS / 1e6
        return f"no preview: {info.width} x {info.height} is over {limit:g} megapixels"
    return None


def decode(data: bytes) -> Raster:
    """The image as RGBA; NoPreview (why not) or ImageError (what is corrupt)."""
    info = image_info(data)
    if info is None:
        raise NoPreview("no preview: not an image format known here")
    reason = no_preview_reason(info, len(data))
    if reason is not None:
        raise NoPreview(reason)
    try:
        return _DECODERS[info.format](data)
    except (ImageError, NoPreview):
        raise
    except (ArithmeticError, IndexError, LookupError, ValueError, struct.error) as e:
        # The decoders check what they read; this is the net under a check they lack.
        raise ImageError(f"corrupt {info.format}: {type(e).__name__}: {e}") from None


def describe(data: bytes, media_type: str = "") -> str:
    """What the image viewer writes: format, dimensions, details and size, the
    Content-Type where it disagrees with the bytes, and why there is no preview (when
    the header says so already). Raises ValueError when ``data`` is no known image."""
    info = image_info(data)
    if info is None:
        raise ValueError("not a PNG, GIF, JPEG, WebP, BMP, ICO or SVG image")
    lines = [info.summary(len(data))]
    said = media_type.removeprefix("image/").removeprefix("x-").removeprefix("vnd.microsoft.")
    if media_type.startswith("image/") and said.split("+")[0] not in _names(info.format):
        lines.append(f"the Content-Type says {media_type}, the bytes are {info.format}")
    reason = no_preview_reason(info, len(data))
    if reason is not None:
        lines.append(reason)
    elif info.format == "GIF" and (frames := gif.frame_count(data)) > 1:
        lines.append(f"an animation of {frames} frames: the preview shows the first")
    return "\n".join(lines)


def _names(fmt: str) -> tuple[str, ...]:
    """Media subtypes that name ``fmt`` (``image/jpg`` and ``image/pjpeg`` are seen too)."""
    extra = {"JPEG": ("jpg", "pjpeg"), "ICO": ("icon",), "BMP": ("ms-bmp", "bitmap")}
    return (fmt.lower(), *extra.get(fmt, ()))
