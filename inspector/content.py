"""Message content: undo Content-Encoding, detect the kind of content, format it for viewers.

Raw bytes are never changed here; each function returns a new value or raises
``ContentError`` with a message fit to show the user as is.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl

from inspector.images import ImageInfo as ImageInfo  # its old home here, kept for callers
from inspector.images import describe, image_info
from inspector.markup import indent_html, indent_xml

VIEWERS = ("auto", "text", "json", "markup", "form", "multipart", "hex", "image")
VIEWER_TITLES = {
    "auto": "auto",
    "text": "text",
    "json": "JSON",
    "markup": "HTML/XML",
    "form": "form",
    "multipart": "multipart parts",
    "hex": "hex",
    "image": "image",
}
HEX_LIMIT = 64 * 1024  # bytes shown by the hex viewer; a dump of more is unreadable anyway
TEXT_LIMIT = 2 * 1024 * 1024  # characters formatted by the text viewers


class ContentError(Exception):
    """Content that cannot be decoded or formatted as asked; the message says why."""


# --- Content-Encoding ---------------------------------------------------------------------

# The most one body decodes to, at each coding layer. A body is recorded compressed (up to
# --body-limit), and 100 kB of gzip can inflate to 100 MB (zstd and br to gigabytes):
# decoding stops here instead of eating the memory of the UI, search, replay --diff or an
# export. The viewers format only TEXT_LIMIT characters of it anyway.
DECODE_LIMIT = 32 * 1024 * 1024
_DECODE_STEP = 1024 * 1024  # decoded bytes asked of a decompressor at a time


class DecodedTooLarge(ContentError):
    """A body whose decoded size passes the decode limit: the caller keeps the raw bytes."""

    def __init__(self, coding: str, limit: int) -> None:
        super().__init__(f"{coding}: decoded size exceeds {limit / 2**20:g} MiB")


def _zlib_chunks(data: bytes, wbits: int, coding: str) -> Iterator[bytes]:
    inflater = zlib.decompressobj(wbits)
    pending = data
    try:
        while pending and not inflater.eof:
            yield inflater.decompress(pending, _DECODE_STEP)
            pending = inflater.unconsumed_tail
    except zlib.error as e:
        raise ContentError(f"{coding}: {e}") from None
    if not inflater.eof:
        raise ContentError(f"{coding}: incomplete or truncated stream")


def _gunzip(data: bytes) -> Iterator[bytes]:
    return _zlib_chunks(data, 16 + zlib.MAX_WBITS, "gzip")


def _inflate(data: bytes) -> Iterator[bytes]:
    # "deflate" is meant to be zlib-wrapped, but many servers send raw deflate.
    try:
        zlib.decompressobj().decompress(data[:64], 0)
    except zlib.error:
        return _zlib_chunks(data, -zlib.MAX_WBITS, "deflate")
    return _zlib_chunks(data, zlib.MAX_WBITS, "deflate")


def _unbrotli(data: bytes) -> Iterator[bytes]:
    try:
        import brotli
    except ImportError:
        raise ContentError(
            "cannot decode Content-Encoding br: the brotli package is not installed "
            "(pip install brotli)"
        ) from None
    decompressor = brotli.Decompressor()
    try:
        # output_buffer_limit (brotli >= 1.2) hands the output out a step at a time.
        chunk = decompressor.process(data, output_buffer_limit=_DECODE_STEP)
        while chunk:
            yield chunk
            chunk = (
                b""
                if decompressor.is_finished()
                else decompressor.process(b"", output_buffer_limit=_DECODE_STEP)
            )
    except brotli.error as e:
        raise ContentError(f"br: {e}") from None
    if not decompressor.is_finished():
        raise ContentError("br: incomplete or truncated stream")


def _unzstd(data: bytes) -> Iterator[bytes]:
    try:
        import zstandard
    except ImportError:
        raise ContentError(
            "cannot decode Content-Encoding zstd: the zstandard package is not installed "
            "(pip install zstandard)"
        ) from None
    # A stream reader: frames written without a content size are common, and it hands
    # the output out a step at a time.
    reader = zstandard.ZstdDecompressor().stream_reader(data)
    try:
        while chunk := reader.read(_DECODE_STEP):
            yield chunk
    except zstandard.ZstdError as e:
        raise ContentError(f"zstd: {e}") from None


DECODERS: dict[str, Callable[[bytes], Iterator[bytes]]] = {
    "gzip": _gunzip,
    "x-gzip": _gunzip,
    "deflate": _inflate,
    "br": _unbrotli,
    "zstd": _unzstd,
}


def parse_encodings(header: str | None) -> list[str]:
    """The codings of a Content-Encoding value in the order they were applied."""
    if not header:
        return []
    codings = [c.strip().lower() for c in header.split(",")]
    return [c for c in codings if c and c != "identity"]


def decode(
    data: bytes, content_encoding: str | None, limit: int = DECODE_LIMIT
) -> tuple[bytes, list[str]]:
    """Undo every coding of ``content_encoding``; return the content and the codings undone.

    Raises ``DecodedTooLarge`` as soon as a layer's output passes ``limit`` bytes (nothing
    larger is ever held), ``ContentError`` for an unknown coding or a broken stream.
    """
    codings = parse_encodings(content_encoding)
    for coding in reversed(codings):
        decoder = DECODERS.get(coding)
        if decoder is None:
            raise ContentError(f"unknown Content-Encoding {coding!r}: showing the raw bytes")
        data = _gather(decoder(data), coding, limit)
    return data, codings


def _gather(chunks: Iterator[bytes], coding: str, limit: int) -> bytes:
    # BytesIO grows in place (with an eighth spare) and hands its buffer over without a
    # copy: the peak stays near the output's size, where joining a list would double it.
    out = io.BytesIO()
    for chunk in chunks:
        if out.tell() + len(chunk) > limit:
            raise DecodedTooLarge(coding, limit)
        out.write(chunk)
    return out.getvalue()


# --- detection ----------------------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    """``text/html; charset=utf-8`` -> ``text/html``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def charset(content_type: str | None) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return None


def detect_viewer(content_type: str | None, data: bytes) -> str:
    """The viewer that suits this content best (never ``auto``)."""
    mt = media_type(content_type)
    if mt == "application/json" or mt.endswith("+json"):
        return "json"
    if mt in ("text/html", "application/xhtml+xml") or mt.endswith("/xml") or mt.endswith("+xml"):
        return "markup"
    if mt == "application/x-www-form-urlencoded":
        return "form"
    if mt.startswith("multipart/"):
        return "multipart"
    if mt.startswith("image/") or image_info(data) is not None:
        return "image"
    head = data[:512].lstrip()
    if head[:1] in (b"{", b"[") and _is_json(data):
        return "json"
    if head[:1] == b"<" and looks_textual(data):
        return "markup"
    return "text" if looks_textual(data) else "hex"


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def looks_textual(data: bytes) -> bool:
    """True when the first bytes decode as UTF-8 with few control characters."""
    sample = data[:4096]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(sample) - 3:  # a multi-byte character cut at the sample's end is fine
            return False
        text = sample[: e.start].decode("utf-8")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t\f")
    return controls <= len(text) // 100


TEXT_MEDIA_TYPES = frozenset({
    "application/json", "application/xml", "application/javascript", "application/ecmascript",
    "application/x-www-form-urlencoded", "application/graphql", "application/x-ndjson",
})  # fmt: skip
"""Media types outside ``text/*`` (and ``+json``/``+xml``) whose bodies are text."""


def is_text_type(content_type: str | None) -> bool:
    """Whether a Content-Type says text: ``text/*``, ``TEXT_MEDIA_TYPES``, ``+json``, ``+xml``."""
    mt = media_type(content_type)
    return mt.startswith("text/") or mt in TEXT_MEDIA_TYPES or mt.endswith(("+json", "+xml"))


def is_text_body(
    data: bytes, content_type: str | None, content_encoding: str | None = None
) -> bool:
    """Whether a body is text to search, show or export as text.

    Never while it is content-encoded (compressed bytes are not its text); always when its
    Content-Type says text; otherwise (unlabelled, or labelled as something else) when its
    bytes look like UTF-8 text, as the viewers decide.
    """
    if content_encoding and content_encoding.strip().lower() != "identity":
        return False
    return is_text_type(content_type) or looks_textual(data)


# --- formatting ---------------------------------------------------------------------------


def as_text(data: bytes, content_type: str | None = None) -> str:
    """Decode with the declared charset, else UTF-8, replacing what does not decode."""
    encoding = charset(content_type) or "utf-8"
    try:
        return data[:TEXT_LIMIT].decode(encoding, errors="replace")
    except LookupError:
        return data[:TEXT_LIMIT].decode("utf-8", errors="replace")


def format_json(data: bytes) -> str:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ContentError(f"not valid JSON: {e}") from None
    return json.dumps(value, indent=2, ensure_ascii=False)


def format_form(data: bytes) -> str:
    """URL-encoded form fields as a two-column table (name, value), in their order."""
    try:
        pairs = parse_qsl(data.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (ValueError, UnicodeDecodeError) as e:
        raise ContentError(f"not URL-encoded form data: {e}") from None
    rows = [(k, v.replace("\r", "\\r").replace("\n", "\\n")) for k, v in pairs]
    width = max((len(k) for k, _ in [("name", ""), *rows]))
    lines = [f"{'name'.ljust(width)} │ value", f"{'─' * width}─┼─{'─' * 5}"]
    return "\n".join([*lines, *(f"{k.ljust(width)} │ {v}" for k, v in rows)])


MULTIPART_PREVIEW = 200  # characters of a text part shown by the multipart viewer


def boundary(content_type: str | None) -> bytes | None:
    """The ``boundary`` parameter of a multipart Content-Type."""
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary" and value.strip():
            return value.strip().strip('"').encode("latin-1")
    return None


def format_multipart(data: bytes, content_type: str | None) -> str:
    """One block per part: its name, file name, type and size, and a text part's start."""
    marker = boundary(content_type)
    if marker is None:
        raise ContentError("no boundary in the Content-Type")
    chunks = data.split(b"--" + marker)
    if len(chunks) < 3:
        raise ContentError(f"no parts delimited by --{marker.decode('latin-1')}")
    blocks = []
    for n, chunk in enumerate(chunks[1:-1], start=1):
        head, _, body = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        body = body.removesuffix(b"\r\n")
        headers = dict(_part_header(line) for line in head.split(b"\r\n") if b":" in line)
        params = _disposition(headers.get("content-disposition", ""))
        kind = headers.get("content-type", "text/plain")
        lines = [f"part {n}: {params.get('name', '?')}"]
        if "filename" in params:
            lines.append(f"  file name     {params['filename']}")
        lines += [f"  content type  {kind}", f"  size          {len(body)} bytes"]
        if looks_textual(body):
            preview = body[:MULTIPART_PREVIEW].decode("utf-8", "replace")
            more = "…" if len(body) > MULTIPART_PREVIEW else ""
            lines.append(f"  value         {' '.join(preview.split())}{more}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _part_header(line: bytes) -> tuple[str, str]:
    name, _, value = line.decode("latin-1").partition(":")
    return name.strip().lower(), value.strip()


def _disposition(value: str) -> dict[str, str]:
    """``form-data; name="a"; filename="b.txt"`` -> {"name": "a", "filename": "b.txt"}."""
    params = {}
    for param in value.split(";")[1:]:
        key, _, raw = param.partition("=")
        params[key.strip().lower()] = raw.strip().strip('"')
    return params


def format_markup(data: bytes, content_type: str | None = None) -> str:
    """Indent XML strictly; HTML (or XML that is not well-formed) one tag per line.

    Entities are never expanded nor read from anywhere (see ``inspector.markup``).
    """
    text = as_text(data, content_type)
    is_html = media_type(content_type) == "text/html" or text.lstrip()[:15].lower().startswith(
        "<!doctype html"
    )
    if not is_html and len(data) <= TEXT_LIMIT:
        pretty = indent_xml(data)
        if pretty is not None:
            return pretty
    return indent_html(text)


def hex_dump(data: bytes, limit: int = HEX_LIMIT) -> str:
    """Offset, 16 bytes in hex, and their printable ASCII, one row per 16 bytes."""
    rows = []
    for offset in range(0, min(len(data), limit), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        ascii_ = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        rows.append(f"{offset:08x}  {hexes[:23]:<23}  {hexes[24:]:<23}  {ascii_}")
    if len(data) > limit:
        rows.append(f"... {len(data) - limit} more bytes not shown")
    return "\n".join(rows)


# --- images: inspector.images (format and dimensions from the bytes, the preview) ---------


# --- the viewer entry point ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class View:
    """What a body viewer shows: the viewer used, the text, a syntax hint and notes."""

    viewer: str
    text: str
    syntax: str | None = None  # a Pygments lexer name for highlighting, when fitting
    notes: tuple[str, ...] = ()
    image: bytes | None = None  # the image viewer's (decoded) body, for its preview


def render(
    data: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    viewer: str = "auto",
) -> View:
    """Decode and format a body for display with ``viewer`` (``auto`` picks one)."""
    notes: list[str] = []
    try:
        data, codings = decode(data, content_encoding)
    except DecodedTooLarge as e:
        notes.append(f"{e}; showing raw (a compression bomb, or too large to decode here)")
    except ContentError as e:
        notes.append(str(e))
    else:
        if codings:
            notes.append(f"decoded Content-Encoding: {', '.join(codings)}")
    if not data:
        return View(viewer, "", None, (*notes, "no body"))
    chosen = detect_viewer(content_type, data) if viewer == "auto" else viewer
    try:
        text, syntax = _format(chosen, data, content_type)
    except ContentError as e:
        notes.append(f"{VIEWER_TITLES[chosen]} view: {e}; showing text")
        chosen = "text" if looks_textual(data) else "hex"
        text, syntax = _format(chosen, data, content_type)
    if chosen == "markup" and data.lstrip()[:1] == b"<":
        info = image_info(data)  # an SVG shown as its markup: its size too
        if info is not None and info.format == "SVG":
            notes.append(info.summary(len(data)))
    return View(chosen, text, syntax, tuple(notes), data if chosen == "image" else None)


def _format(viewer: str, data: bytes, content_type: str | None) -> tuple[str, str | None]:
    if viewer == "json":
        return format_json(data), "json"
    if viewer == "markup":
        syntax = "html" if "html" in media_type(content_type) else "xml"
        return format_markup(data, content_type), syntax
    if viewer == "form":
        return format_form(data), None
    if viewer == "multipart":
        return format_multipart(data, content_type), None
    if viewer == "hex":
        return hex_dump(data), None
    if viewer == "image":
        try:
            return describe(data, media_type(content_type)), None
        except ValueError as e:
            raise ContentError(str(e)) from None
    if viewer == "text":
        return as_text(data, content_type), None
    raise ContentError(f"unknown viewer {viewer!r}")
