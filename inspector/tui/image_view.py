"""An image preview as Rich text: two pixels a cell with Unicode half blocks.

Each cell is ``▀`` with the upper pixel as its truecolour foreground and the lower one as
its background, which every terminal Textual runs in can show (Textual downgrades the
colours where a terminal has fewer). Transparent pixels leave the terminal's background;
partly transparent ones are blended over a dark grey.
"""

from __future__ import annotations

from rich.color import Color
from rich.style import Style
from rich.text import Text

from inspector.images import Raster

UPPER, LOWER = "▀", "▄"
BACKDROP = (24, 24, 24)  # what a partly transparent pixel is blended over
SEEN = 32  # alpha below which a pixel counts as transparent


def _colour(raster: Raster, x: int, y: int) -> tuple[int, int, int] | None:
    if y >= raster.height:
        return None
    r, g, b, a = raster.pixel(x, y)
    if a < SEEN:
        return None
    if a == 255:
        return r, g, b
    return tuple((c * a + k * (255 - a)) // 255 for c, k in zip((r, g, b), BACKDROP, strict=True))  # type: ignore[return-value]


def half_blocks(raster: Raster) -> Text:
    """``raster`` as ceil(height / 2) lines of ``width`` cells."""
    styles: dict[tuple[object, object], Style] = {}
    text = Text(no_wrap=True, overflow="crop")
    for y in range(0, raster.height, 2):
        if y:
            text.append("\n")
        run, run_style = "", None
        for x in range(raster.width):
            char, style = _cell(_colour(raster, x, y), _colour(raster, x, y + 1), styles)
            if style is not run_style and run:
                text.append(run, run_style)
                run = ""
            run += char
            run_style = style
        if run:
            text.append(run, run_style)
    return text


def _cell(top, bottom, styles: dict) -> tuple[str, Style | None]:
    if top is None and bottom is None:
        return " ", None
    key = (top, bottom)
    style = styles.get(key)
    if style is None:
        if top is None:
            style = Style(color=Color.from_rgb(*bottom))
        else:
            below = Color.from_rgb(*bottom) if bottom is not None else None
            style = Style(color=Color.from_rgb(*top), bgcolor=below)
        styles[key] = style
    return (LOWER if top is None else UPPER), style
