"""Content decoding, detection and the body viewers' formatting."""

from __future__ import annotations

import gzip
import json
import struct
import zlib

import brotli
import pytest
import zstandard

from inspector import content
from inspector.content import ContentError


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("br", brotli.compress),
        ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)),
    ],
)
def test_decode_each_coding(coding, encode):
    data, codings = content.decode(encode(b"hello world" * 50), coding)
    assert data == b"hello world" * 50
    assert codings == [coding]


def test_decode_raw_deflate_and_stacked_codings():
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = raw.compress(b"abc") + raw.flush()
    assert content.decode(body, "deflate")[0] == b"abc"
    stacked = brotli.compress(gzip.compress(b"twice"))
    assert content.decode(stacked, "gzip, br") == (b"twice", ["gzip", "br"])


def test_decode_identity_and_none_leave_bytes():
    assert content.decode(b"x", None) == (b"x", [])
    assert content.decode(b"x", "identity") == (b"x", [])


def test_decode_errors_are_clear():
    with pytest.raises(ContentError, match="gzip"):
        content.decode(b"not gzip", "gzip")
    with pytest.raises(ContentError, match="unknown Content-Encoding 'snappy'"):
        content.decode(b"x", "snappy")


def test_missing_decoder_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "brotli", None)  # makes `import brotli` fail
    with pytest.raises(ContentError, match=r"pip install brotli"):
        content.decode(b"x", "br")
    view = content.render(b"x", "text/plain", "br")
    assert any("brotli package is not installed" in n for n in view.notes)


@pytest.mark.parametrize(
    ("ctype", "data", "viewer"),
    [
        ("application/json", b'{"a": 1}', "json"),
        ("application/problem+json", b"{}", "json"),
        ("text/html; charset=utf-8", b"<p>x</p>", "markup"),
        ("application/atom+xml", b"<feed/>", "markup"),
        ("application/x-www-form-urlencoded", b"a=1&b=2", "form"),
        ("image/png", b"", "image"),
        (None, b'[1, 2, "x"]', "json"),
        (None, b"<root><a/></root>", "markup"),
        ("application/octet-stream", b"plain words", "text"),
        ("application/octet-stream", bytes(range(256)), "hex"),
        (None, _png(3, 2), "image"),
    ],
)
def test_detect_viewer(ctype, data, viewer):
    assert content.detect_viewer(ctype, data) == viewer


def test_json_is_pretty_printed():
    view = content.render(b'{"b":[1,2],"a":"\xc3\xa9"}', "application/json")
    assert view.viewer == "json"
    assert view.syntax == "json"
    assert json.loads(view.text) == {"b": [1, 2], "a": "é"}
    assert '\n  "b": [' in view.text


def test_bad_json_falls_back_to_text_with_a_note():
    view = content.render(b'{"a": ', "application/json")
    assert view.viewer == "text"
    assert view.text == '{"a": '
    assert any(n.startswith("JSON view: not valid JSON") for n in view.notes)


def test_gzip_body_is_decoded_and_noted():
    view = content.render(gzip.compress(b'{"ok":true}'), "application/json", "gzip")
    assert view.text == '{\n  "ok": true\n}'
    assert "decoded Content-Encoding: gzip" in view.notes


def test_xml_is_indented():
    text = content.format_markup(b"<a><b>x</b><c/></a>", "application/xml")
    assert text.splitlines() == ['<?xml version="1.0" ?>', "<a>", "  <b>x</b>", "  <c/>", "</a>"]


def test_html_one_tag_per_line():
    html = b"<!DOCTYPE html><html><body><p>Hi &amp; bye<br></p></body></html>"
    lines = content.format_markup(html, "text/html").splitlines()
    assert lines == [
        "<!DOCTYPE html>",
        "<html>",
        "  <body>",
        "    <p>",
        "      Hi",
        "      &amp;",
        "      bye",
        "      <br>",
        "    </p>",
        "  </body>",
        "</html>",
    ]


def test_form_view_is_a_table_and_rejects_garbage():
    assert content.format_form(b"user=bob&password=s%20t&x=&note=a%0Ab") == (
        "name     │ value\n"
        "─────────┼──────\n"
        "user     │ bob\n"
        "password │ s t\n"
        "x        │ \n"
        "note     │ a\\nb"
    )
    with pytest.raises(ContentError, match="not URL-encoded"):
        content.format_form(b"\xff\xfe")


def test_hex_dump_rows_and_limit():
    dump = content.hex_dump(b"ABCDEFGHIJKLMNOPQ\x00")
    rows = dump.splitlines()
    assert rows[0] == (
        "00000000  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  ABCDEFGHIJKLMNOP"
    )
    assert rows[1].startswith("00000010  51 00") and rows[1].endswith("Q.")
    assert content.hex_dump(b"x" * 40, limit=16).splitlines()[-1] == "... 24 more bytes not shown"


def test_image_headers_parsed():
    rgb8 = {"": "RGB 8-bit"}
    assert content.image_info(_png(640, 480)) == content.ImageInfo("PNG", 640, 480, rgb8)
    gif = b"GIF89a" + struct.pack("<HH", 32, 16) + b"\x00" * 10
    assert content.image_info(gif) == content.ImageInfo("GIF", 32, 16, {"version": "89a"})
    assert content.image_info(_jpeg(1024, 768)) == content.ImageInfo("JPEG", 1024, 768)
    assert content.image_info(b"plain text") is None


def test_webp_variants():
    vp8x = b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x0a\x00\x00\x00" + b"\x00" * 4
    vp8x += (99).to_bytes(3, "little") + (49).to_bytes(3, "little")
    assert content.image_info(vp8x) == content.ImageInfo("WebP", 100, 50, {"variant": "extended"})
    bits = (200 - 1) | ((100 - 1) << 14)
    vp8l = b"RIFF\x00\x00\x00\x00WEBPVP8L" + b"\x00" * 4 + b"\x2f" + bits.to_bytes(4, "little")
    assert content.image_info(vp8l) == content.ImageInfo("WebP", 200, 100, {"variant": "lossless"})
    lossy = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 7 + b"\x9d\x01\x2a"
    lossy += struct.pack("<HH", 320, 240)
    assert content.image_info(lossy) == content.ImageInfo("WebP", 320, 240, {"variant": "lossy"})


def test_image_view_summary_and_forced_viewers():
    png = _png(2, 2)
    view = content.render(png, "image/png")
    assert view.viewer == "image"
    assert view.text == f"PNG image, 2 x 2 px, RGB 8-bit, {len(png)} bytes"
    assert view.image == png  # the body viewer draws its preview
    assert content.render(png, "image/png", viewer="hex").text.startswith("00000000  89 50 4e 47")
    forced = content.render(b"hello", "text/plain", viewer="image")
    assert forced.viewer == "text"
    assert "image view: not a PNG, GIF, JPEG, WebP, BMP, ICO or SVG image; showing text" in (
        forced.notes
    )


def test_text_uses_declared_charset_and_empty_body_is_noted():
    assert content.render(b"caf\xe9", "text/plain; charset=latin-1").text == "café"
    assert content.render(b"caf\xe9", "text/plain; charset=bogus").text == "caf\ufffd"
    assert content.render(b"", "text/plain").notes == ("no body",)


@pytest.mark.parametrize(
    ("data", "content_type", "encoding", "expected"),
    [
        (b"\xff\xfe latin soup", "text/plain; charset=latin-1", None, True),  # labelled text
        (b'{"a": 1}', "application/problem+json", None, True),
        (b"<svg/>", "image/svg+xml", "identity", True),
        (b"a=1&b=2", "application/x-www-form-urlencoded", None, True),
        (b"plain words", None, None, True),  # unlabelled: the bytes decide
        (b"plain words", "application/octet-stream", None, True),  # as the viewers decide
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png", None, False),
        (b"\x00\x01\x02\x03" * 10, None, None, False),
        (gzip.compress(b"words"), "text/plain", "gzip", False),  # compressed is not its text
        (b"words", "text/plain", "br", False),
    ],
)
def test_is_text_body_is_the_one_rule(
    data: bytes, content_type: str | None, encoding: str | None, expected: bool
) -> None:
    assert content.is_text_body(data, content_type, encoding) is expected
