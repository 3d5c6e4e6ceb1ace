"""inspector.images: formats and dimensions from the bytes, and the standard-library
decoders checked pixel by pixel against real files made in the test."""

from __future__ import annotations

import random
import struct
import zlib

import pytest

from inspector import images
from inspector.images import ImageError, NoPreview, Raster, image_info, thumbnail
from inspector.images.gif import lzw_decode
from tests.image_fixtures import (
    bmp8,
    bmp24,
    gif,
    gradient,
    ico,
    ico_dib8_masked,
    ico_dib32,
    lzw_encode,
    pack,
    png,
    png_adam7,
    png_chunk,
    png_rgb,
    png_rgba,
)

PALETTE = [(255, 0, 0), (0, 200, 0), (0, 0, 255), (250, 250, 250), (10, 20, 30)]


def assert_pixels(raster: Raster, expected: list[list[tuple[int, ...]]]) -> None:
    assert (raster.width, raster.height) == (len(expected[0]), len(expected))
    for y, row in enumerate(expected):
        for x, pixel in enumerate(row):
            want = pixel if len(pixel) == 4 else (*pixel, 255)
            assert raster.pixel(x, y) == want, (x, y)


# --- PNG ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [0, 1, 2, 3, 4], ids=["none", "sub", "up", "avg", "paeth"])
def test_png_each_filter_rgb_and_rgba(kind):
    pixels = gradient(29, 17)
    assert_pixels(images.decode(png_rgb(pixels, filters=(kind,))), pixels)
    pixels = gradient(13, 9, alpha=True)
    assert_pixels(images.decode(png_rgba(pixels, filters=(kind,))), pixels)


def test_png_mixed_filters_and_dimensions():
    pixels = gradient(101, 57)
    data = png_rgb(pixels, filters=(4, 0, 3, 1, 2))
    info = image_info(data)
    assert (info.format, info.width, info.height) == ("PNG", 101, 57)
    assert info.details == {"": "RGB 8-bit"}
    assert_pixels(images.decode(data), pixels)


@pytest.mark.parametrize("depth", [1, 2, 4, 8])
def test_png_palette_at_each_depth_with_trns(depth):
    colours = PALETTE[: 1 << depth] if depth < 4 else PALETTE
    width, height = 11, 5
    values = [[(x * 3 + y) % len(colours) for x in range(width)] for y in range(height)]
    rows = [pack(row, depth) for row in values]
    plte = b"".join(bytes(c) for c in colours)
    trns = bytes([0, 128])  # index 0 transparent, index 1 half, the rest opaque
    data = png(rows, width, depth=depth, colour=3, bpp=1, extra=[(b"PLTE", plte), (b"tRNS", trns)])
    alpha = {0: 0, 1: 128}
    expected = [[(*colours[v], alpha.get(v, 255)) for v in row] for row in values]
    assert_pixels(images.decode(data), expected)


@pytest.mark.parametrize("depth", [1, 2, 4, 8, 16])
def test_png_greyscale_at_each_depth_with_a_transparent_level(depth):
    width, height, top = 9, 4, (1 << depth) - 1
    values = [[(x + y * 2) % (top + 1) for x in range(width)] for y in range(height)]
    if depth == 16:
        values = [[v * 4099 % 65536 for v in row] for row in values]
        rows = [b"".join(struct.pack(">H", v) for v in row) for row in values]
        bpp = 2
    else:
        rows = [pack(row, depth) for row in values]
        bpp = 1
    key = values[0][1]
    data = png(
        rows, width, depth=depth, colour=0, bpp=bpp, extra=[(b"tRNS", struct.pack(">H", key))]
    )
    level = (lambda v: v >> 8) if depth == 16 else (lambda v: v * 255 // top)
    expected = [[(level(v),) * 3 + (0 if v == key else 255,) for v in row] for row in values]
    assert_pixels(images.decode(data), expected)


def test_png_16_bit_rgba_grey_alpha_and_rgb_trns():
    pixels = gradient(7, 6, alpha=True)
    rows = [b"".join(struct.pack(">4H", *(c * 257 for c in p)) for p in row) for row in pixels]
    assert_pixels(images.decode(png(rows, 7, depth=16, colour=6, bpp=8)), pixels)
    grey = [[(x * 40, 255 - x * 30) for x in range(6)] for _ in range(3)]
    rows = [bytes(c for p in row for c in p) for row in grey]
    expected = [[(g, g, g, a) for g, a in row] for row in grey]
    assert_pixels(images.decode(png(rows, 6, colour=4, bpp=2)), expected)
    rgb = gradient(5, 4)
    trns = struct.pack(">3H", *rgb[1][2])
    data = png_rgb(rgb, extra=[(b"tRNS", trns)])
    expected = [[(*p, 0 if p == rgb[1][2] else 255) for p in row] for row in rgb]
    assert_pixels(images.decode(data), expected)


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (9, 9), (17, 11)])
def test_png_adam7_interlaced(size):
    pixels = gradient(*size, alpha=True)
    data = png_adam7(pixels)
    assert image_info(data).details["interlaced"] == "Adam7"
    assert_pixels(images.decode(data), pixels)


def _corrupted(data: bytes, what: str) -> bytes:
    ihdr_end = 8 + 12 + 13
    if what == "crc":
        return data[: ihdr_end - 1] + bytes([data[ihdr_end - 1] ^ 1]) + data[ihdr_end:]
    if what == "truncated":
        return data[: len(data) - 30]
    if what == "idat":  # valid chunk framing, but the deflate stream is garbage
        return data[:ihdr_end] + png_chunk(b"IDAT", b"\x78\x9c garbage") + png_chunk(b"IEND", b"")
    if what == "short":
        raw = zlib.compress(b"\x00" + b"\x00" * 9)
        return data[:ihdr_end] + png_chunk(b"IDAT", raw) + png_chunk(b"IEND", b"")
    if what == "filter":
        raw = zlib.compress(b"".join(b"\x07" + b"\x00" * 9 for _ in range(3)))
        return data[:ihdr_end] + png_chunk(b"IDAT", raw) + png_chunk(b"IEND", b"")
    raise AssertionError(what)


@pytest.mark.parametrize(
    "what, message",
    [
        ("crc", "corrupt PNG: the IHDR chunk's CRC does not match"),
        ("truncated", "corrupt PNG: the data ends inside the IDAT chunk"),
        ("idat", "corrupt PNG: the image data does not inflate"),
        ("short", "corrupt PNG: the image data holds 10 of 30 bytes"),
        ("filter", "corrupt PNG: unknown filter type 7"),
    ],
)
def test_corrupt_pngs_say_what_is_wrong(what, message):
    data = _corrupted(png_rgb(gradient(3, 3), filters=(0,)), what)
    with pytest.raises(ImageError, match=message):
        images.decode(data)


def test_bad_png_headers():
    ihdr = struct.pack(">IIBBBBB", 4, 4, 3, 2, 0, 0, 0)  # RGB cannot be 3-bit
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")
    with pytest.raises(ImageError, match="bit depth 3 with colour type 2 is not allowed"):
        images.decode(data)
    no_plte = png([b"\x00\x01"], 2, colour=3, bpp=1)
    with pytest.raises(ImageError, match="palette image without a valid PLTE"):
        images.decode(no_plte)


def test_random_damage_never_escapes_as_another_exception():
    """Bytes flipped, cut or inserted anywhere: an image, NoPreview or ImageError."""
    rng = random.Random(1234)
    sources = [
        png_rgb(gradient(12, 7), filters=(0, 1, 2, 3, 4)),
        png_adam7(gradient(9, 9, alpha=True)),
        png(([pack([1, 2, 3, 0] * 3, 2)] * 4), 12, depth=2, colour=3, bpp=1,
            extra=[(b"PLTE", b"".join(bytes(c) for c in PALETTE[:4]))]),
        gif(10, 6, PALETTE, bytes(i % 5 for i in range(60)), transparent=2, interlaced=True),
        bmp24(gradient(5, 3)),
        bmp8([[0, 1, 2], [3, 4, 0]], PALETTE),
        ico([(3, 2, 8, ico_dib8_masked([[0, 1, 2], [2, 1, 0]], PALETTE[:3], {(1, 1)})),
             (5, 4, 32, ico_dib32(gradient(5, 4, alpha=True)))]),
    ]  # fmt: skip
    for source in sources:
        for _ in range(300):
            data = bytearray(source)
            for _ in range(rng.randint(1, 4)):
                if not data:
                    break
                i = rng.randrange(len(data))
                action = rng.random()
                if action < 0.6:
                    data[i] = rng.randrange(256)
                elif action < 0.8:
                    del data[i:]
                else:
                    data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 9)))
            try:
                images.decode(bytes(data))
            except (NoPreview, ImageError):
                pass


# --- GIF ----------------------------------------------------------------------------------


def test_gif_first_frame_with_transparency_and_frame_count():
    width, height = 23, 11
    indices = bytes((x * y + x) % 5 for y in range(height) for x in range(width))
    data = gif(width, height, PALETTE, indices, transparent=4, frames=3)
    info = image_info(data)
    assert (info.format, info.width, info.height) == ("GIF", 23, 11)
    raster, frames = __import__("inspector.images.gif", fromlist=["decode"]).decode(data)
    assert frames == 3
    expected = [
        [
            (*PALETTE[v], 255) if v != 4 else (0, 0, 0, 0)
            for v in indices[y * width : (y + 1) * width]
        ]
        for y in range(height)
    ]
    assert_pixels(raster, expected)
    assert_pixels(images.decode(data), expected)
    assert images.describe(data, "image/gif").splitlines()[1] == (
        "an animation of 3 frames: the preview shows the first"
    )


def test_gif_interlaced_rows_come_back_in_order():
    width, height = 5, 19
    indices = bytes((y % 5) for y in range(height) for _ in range(width))
    raster = images.decode(gif(width, height, PALETTE, indices, interlaced=True))
    assert [raster.pixel(0, y)[:3] for y in range(height)] == [
        PALETTE[y % 5] for y in range(height)
    ]


def test_lzw_round_trips_through_table_resets():
    rng = random.Random(7)
    data = bytes(rng.choice(b"\x00\x01\x02\x03\x04\x05\x06\x07") for _ in range(60_000))
    assert lzw_decode(lzw_encode(data, 3), 3, len(data)) == data
    noisy = bytes(rng.randrange(256) for _ in range(20_000))  # fills the 4096-entry table
    assert lzw_decode(lzw_encode(noisy, 8), 8, len(noisy)) == noisy


def test_corrupt_gifs():
    data = gif(4, 4, PALETTE, bytes(16))
    with pytest.raises(ImageError, match="corrupt GIF: the data ends inside"):
        images.decode(data[:20])
    bad_block = data[: 13 + 3 * 8] + b"\x99" + data[13 + 3 * 8 + 1 :]
    with pytest.raises(ImageError, match="corrupt GIF: unknown block 0x99"):
        images.decode(bad_block)
    with pytest.raises(ImageError, match="LZW code"):
        lzw_decode(bytes([0b11111100, 0xFF]), 2, 100)


# --- BMP ----------------------------------------------------------------------------------


def test_bmp_24_bit_both_row_orders_and_8_bit_palette():
    pixels = gradient(7, 5)  # 21 bytes a row: padded to 24
    assert_pixels(images.decode(bmp24(pixels)), pixels)
    assert_pixels(images.decode(bmp24(pixels, top_down=True)), pixels)
    info = image_info(bmp24(pixels))
    assert (info.format, info.width, info.height, info.details) == ("BMP", 7, 5, {"": "24-bit"})
    values = [[0, 1, 2], [3, 4, 0]]
    assert_pixels(
        images.decode(bmp8(values, PALETTE)), [[PALETTE[v] for v in row] for row in values]
    )


def test_bmp_rle_is_declined_and_a_short_file_is_corrupt():
    data = bytearray(bmp24(gradient(4, 4)))
    data[30:34] = (1).to_bytes(4, "little")  # BI_RLE8
    with pytest.raises(NoPreview, match="RLE8-compressed BMPs are not decoded here"):
        images.decode(bytes(data))
    with pytest.raises(ImageError, match="corrupt BMP: the pixels need"):
        images.decode(bmp24(gradient(4, 4))[:60])


# --- the other formats: what the header says ----------------------------------------------


def test_jpeg_webp_ico_svg_dimensions_and_why_no_preview():
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    jpeg += b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 480, 640) + b"\x03" + b"\x00" * 9
    info = image_info(jpeg)
    assert (info.format, info.width, info.height) == ("JPEG", 640, 480)
    with pytest.raises(NoPreview, match="no preview: decoding JPEG needs an image library"):
        images.decode(jpeg)
    ico = b"\x00\x00\x01\x00\x02\x00" + bytes([16, 16, 0, 0]) + b"\x00" * 12
    ico += bytes([0, 0, 0, 0]) + b"\x00" * 12  # 0 means 256
    info = image_info(ico)
    assert (info.format, info.width, info.height, info.details) == (
        "ICO",
        256,
        256,
        {"images": "2"},
    )
    svg = b'<?xml version="1.0"?>\n<!-- logo -->\n<svg xmlns="http://www.w3.org/2000/svg" '
    svg += b'width="120px" height="80" viewBox="0 0 240 160"><rect/></svg>'
    info = image_info(svg)
    assert (info.format, info.width, info.height) == ("SVG", 120, 80)
    assert info.details == {"viewBox": "0 0 240 160"}
    only_box = image_info(b"<svg viewBox='0 0 24 12' width='100%'/>")
    assert (only_box.width, only_box.height, only_box.details["width"]) == (24, 12, "100%")
    assert image_info(b"<!DOCTYPE html><html><body><svg width='9'/></body></html>") is None
    with pytest.raises(NoPreview, match="SVG is drawn from its XML"):
        images.decode(svg)


def test_description_names_the_bytes_format_and_the_caps():
    data = png_rgb(gradient(4, 3))
    text = images.describe(data, "image/jpeg")
    assert text.splitlines() == [
        f"PNG image, 4 x 3 px, RGB 8-bit, {len(data):,} bytes",
        "the Content-Type says image/jpeg, the bytes are PNG",
    ]
    assert images.describe(data, "image/png").count("\n") == 0
    huge = b"\x89PNG\r\n\x1a\n" + png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", 4000, 3000, 8, 6, 0, 0, 0)
    )
    assert "no preview: 4000 x 3000 is over 2.5 megapixels" in images.describe(huge)
    with pytest.raises(NoPreview, match=r"over 2\.5 megapixels"):
        images.decode(huge)


def test_thumbnail_keeps_aspect_and_averages():
    stripes = [[(255, 0, 0) if x % 2 else (0, 0, 255) for x in range(40)] for _ in range(20)]
    small = thumbnail(images.decode(png_rgb(stripes)), 10, 100)
    assert (small.width, small.height) == (10, 5)
    r, g, b, a = small.pixel(3, 2)
    assert a == 255 and 100 < r < 160 and g == 0 and 100 < b < 160  # red and blue, mixed
    tiny = images.decode(png_rgb(gradient(3, 2)))
    assert thumbnail(tiny, 80, 80) is tiny  # never enlarged


def test_an_svg_shown_as_markup_notes_its_size():
    from inspector import content

    svg = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 24"><path d="M0 0"/></svg>'
    view = content.render(svg, "image/svg+xml")
    assert view.viewer == "markup" and view.image is None
    assert f"SVG image, 48 x 24, viewBox 0 0 48 24, {len(svg)} bytes" in view.notes
    forced = content.render(svg, "image/svg+xml", viewer="image")
    assert (
        forced.text.splitlines()[1] == "no preview: SVG is drawn from its XML (m shows the markup)"
    )


def test_ico_largest_entry_as_png_or_bitmap_with_alpha_or_mask():
    small = gradient(4, 4, alpha=True)
    big = gradient(24, 16, alpha=True)
    data = ico([(4, 4, 32, ico_dib32(small)), (24, 16, 32, png_rgba(big))])
    assert (image_info(data).width, image_info(data).height) == (24, 16)
    assert_pixels(images.decode(data), big)  # the PNG inside, the largest
    assert_pixels(images.decode(ico([(4, 4, 32, ico_dib32(small))])), small)
    values = [[x % 3 for x in range(6)] for _ in range(3)]
    clear = {(0, 0), (5, 2)}
    data = ico([(6, 3, 8, ico_dib8_masked(values, PALETTE[:3], clear))])
    expected = [
        [(*PALETTE[v], 0 if (x, y) in clear else 255) for x, v in enumerate(row)]
        for y, row in enumerate(values)
    ]
    assert_pixels(images.decode(data), expected)
    with pytest.raises(ImageError, match="corrupt ICO: an image of"):
        images.decode(data[:60])
