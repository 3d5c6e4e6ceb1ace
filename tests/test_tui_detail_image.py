"""The body view of an image response, driven by Pilot: the flow recorded through the real
proxy from a real local server; its size/type line and a half-block preview in colour."""

from __future__ import annotations

import asyncio

import pytest
from rich.console import Console
from rich.text import Text
from textual.widgets import TabbedContent

from inspector.tui.app import InspectorApp
from inspector.tui.screens.flow_detail import FlowDetailScreen
from inspector.tui.widgets.body_viewer import BodyViewer
from tests.image_fixtures import gif, png_rgba
from tests.servers import answers
from tests.test_tui import SIZE, fetch, live  # noqa: F401 (live is a fixture)
from tests.tui_fixtures import wait_for

pytestmark = pytest.mark.anyio

RED, BLUE = (220, 30, 30, 255), (20, 40, 230, 255)
CLEAR = (0, 0, 0, 0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def quadrants() -> list[list[tuple[int, ...]]]:
    """20 x 10: red left, blue right on the top five rows; transparent below."""
    return [[(RED if x < 10 else BLUE) if y < 5 else CLEAR for x in range(20)] for y in range(10)]


def serving(raw_server, body: bytes, ctype: bytes) -> str:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype
    head += b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
    return raw_server(answers(head + body)).url


async def open_response(app: InspectorApp, pilot, url: str) -> BodyViewer:
    status, _ = await asyncio.to_thread(fetch, app.session, url)
    assert status == 200
    await wait_for(pilot, lambda: any(r.finished for r in app.state.index.rows.values()), "done")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, FlowDetailScreen), "the detail")
    assert app.screen.active_tab == "response"
    viewer = app.screen.query_one("#response-body", BodyViewer)
    await wait_for(pilot, lambda: not viewer.previewing, "the preview")
    return viewer


def preview_of(viewer: BodyViewer) -> Text:
    content = viewer.query_one(".body-viewer--preview").content
    assert isinstance(content, Text)
    return content


def cell(text: Text, line: int, column: int) -> tuple[str, object, object]:
    """The character and its colours at a cell of the preview's lines (after the summary)."""
    row = text.split("\n")[line]
    style = row.get_style_at_offset(Console(), column)
    rgb = lambda c: c.get_truecolor() if c is not None else None  # noqa: E731
    return row.plain[column], rgb(style.color), rgb(style.bgcolor)


async def test_a_png_response_shows_its_size_type_and_a_colour_preview(live, raw_server):  # noqa: F811
    url = serving(raw_server, png_rgba(quadrants()), b"image/png") + "/logo.png"
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        viewer = await open_response(app, pilot, url)
        text = preview_of(viewer)
        lines = text.plain.split("\n")
        assert lines[0].startswith("PNG image, 20 x 10 px, RGBA 8-bit, ")
        assert "viewer: image" in str(viewer.query_one(".body-viewer--notes").content)
        art = lines[2:]  # two pixels a line: 5 lines of 20 cells, nothing scaled
        assert len(art) == 5 and all(len(line) == 20 for line in art)
        assert cell(text, 2, 0) == ("▀", RED[:3], RED[:3])
        assert cell(text, 2, 19) == ("▀", BLUE[:3], BLUE[:3])
        assert cell(text, 4, 5) == ("▀", RED[:3], None)  # rows 4 and 5: red over clear
        assert cell(text, 5, 12)[0] == " "  # all clear: the terminal's own background
        # m cycles the viewer: the same body as text
        await pilot.press("m")
        assert "viewer: text" in str(viewer.query_one(".body-viewer--notes").content)


async def test_a_gif_wider_than_the_pane_is_scaled_down(live, raw_server):  # noqa: F811
    width, height = 600, 40
    indices = bytes(0 if x < 300 else 1 for _ in range(height) for x in range(width))
    body = gif(width, height, [(255, 255, 0), (0, 128, 0)], indices)
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        viewer = await open_response(app, pilot, serving(raw_server, body, b"image/gif"))
        text = preview_of(viewer)
        art = text.plain.split("\n")[2:]
        assert text.plain.startswith(f"GIF image, 600 x 40 px, version 89a, {len(body):,} bytes")
        shown = len(art[0])
        assert 20 < shown < SIZE[0]
        assert len(art) == -(-round(40 * shown / 600) // 2)  # the aspect kept
        assert cell(text, 2, 0)[1] == (255, 255, 0) and cell(text, 2, shown - 1)[1] == (0, 128, 0)


@pytest.mark.parametrize(
    "body, ctype, says",
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xc0\x00"
         b"\x11\x08\x00\x30\x00\x40\x03" + bytes(9),
         b"image/jpeg",
         ["JPEG image, 64 x 48 px", "no preview: decoding JPEG needs an image library"]),
        (png_rgba(quadrants())[:-30], b"image/png",
         ["PNG image, 20 x 10 px", "corrupt PNG: the data ends inside the IDAT chunk"]),
        (png_rgba(quadrants()), b"image/jpeg",
         ["the Content-Type says image/jpeg, the bytes are PNG", "▀"]),
    ],
    ids=["jpeg", "corrupt-png", "mislabelled"],
)  # fmt: skip
async def test_no_preview_says_why(live, raw_server, body, ctype, says):  # noqa: F811
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        viewer = await open_response(app, pilot, serving(raw_server, body, ctype))
        shown = preview_of(viewer).plain
        assert all(s in shown for s in says), shown
        assert "Traceback" not in shown


async def test_an_uploaded_image_is_drawn_when_its_tab_is_shown(live, raw_server):  # noqa: F811
    """The request tab is hidden when the detail opens: its preview waits for the layout."""
    url = serving(raw_server, b"stored", b"text/plain")
    body = png_rgba(quadrants())
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        status, _ = await asyncio.to_thread(
            fetch, live, url, data=body, headers={"Content-Type": "image/png"}
        )
        assert status == 200
        await wait_for(
            pilot, lambda: any(r.finished for r in app.state.index.rows.values()), "done"
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowDetailScreen), "the detail")
        viewer = app.screen.query_one("#request-body", BodyViewer)
        assert app.screen.active_tab == "response"
        app.screen.query_one(TabbedContent).active = "request"
        await wait_for(pilot, lambda: "▀" in preview_of(viewer).plain, "the preview drawn")
        assert not viewer.previewing
        assert cell(preview_of(viewer), 2, 0) == ("▀", RED[:3], RED[:3])


async def test_an_image_recorded_in_part_says_so(tmp_path):
    from inspector.flow import FlowBody
    from inspector.tui.session import open_saved
    from tests.tui_fixtures import _flow, build_session

    whole = png_rgba(quadrants())
    flow = _flow(1, "GET", "cdn.example.com", "/big.png", ctype="image/png", body=whole)
    flow.response.body = FlowBody(whole[:60], len(whole), True, None)
    app = InspectorApp(open_saved(build_session(tmp_path / "s.db", [flow])))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 1, "loaded")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowDetailScreen), "the detail")
        viewer = app.screen.query_one("#response-body", BodyViewer)
        shown = preview_of(viewer).plain
        assert shown.startswith("PNG image, 20 x 10 px, RGBA 8-bit, 60 bytes")
        assert "only the start of this image was recorded" in shown and not viewer.previewing
