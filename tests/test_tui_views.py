"""What the detail tabs show: the timing waterfall to scale, and multipart bodies part by part."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from inspector import content
from inspector.tui.app import InspectorApp
from inspector.tui.screens.flow_detail import FlowDetailScreen
from inspector.tui.session import open_saved
from inspector.tui.views import WATERFALL_WIDTH, timing_table, waterfall_bar
from inspector.tui.widgets.body_viewer import BodyViewer
from tests.test_tui import SIZE, wait_for
from tests.tui_fixtures import _flow, build_session

pytestmark = pytest.mark.anyio

MULTIPART = (
    b'--XyZ\r\nContent-Disposition: form-data; name="user"\r\n\r\nada\r\n'
    b'--XyZ\r\nContent-Disposition: form-data; name="avatar"; filename="a.png"\r\n'
    b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\x00\x00\r\n--XyZ--\r\n"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_waterfall_bars_are_to_scale():
    assert waterfall_bar((0.0, 1.0), 0.0, 1.0, "").plain == "█" * WATERFALL_WIDTH
    half = waterfall_bar((0.5, 1.0), 0.0, 1.0, "").plain
    assert half == " " * (WATERFALL_WIDTH // 2) + "█" * (WATERFALL_WIDTH // 2)
    assert waterfall_bar((0.0, 0.000001), 0.0, 1.0, "").plain == "█"  # never invisible


def test_timing_table_draws_each_phase():
    flow = _flow(1, "GET", "api.example.com", "/", duration=0.1)
    console = Console(width=120, record=True, file=None)
    with console.capture() as capture:
        console.print(timing_table(flow))
    lines = {line.split("  ")[0].strip(): line for line in capture.get().splitlines()}
    bars = {step: line.count("█") for step, line in lines.items()}
    assert bars["receiving"] > bars["connect"] > 0
    assert bars["TLS handshake"] > 0 and bars["waiting (first byte)"] > 0


def test_multipart_parts_are_listed():
    view = content.render(MULTIPART, "multipart/form-data; boundary=XyZ")
    assert view.viewer == "multipart"
    assert "part 1: user" in view.text and "value         ada" in view.text
    assert "file name     a.png" in view.text and "image/png" in view.text
    with pytest.raises(content.ContentError, match="no boundary"):
        content.format_multipart(MULTIPART, "multipart/form-data")


async def test_the_request_tab_lists_multipart_parts(tmp_path: Path):
    flow = _flow(1, "POST", "api.example.com", "/upload", req_body=MULTIPART)
    flow.request.headers = [(b"Content-Type", b"multipart/form-data; boundary=XyZ")]
    app = InspectorApp(open_saved(build_session(tmp_path / "m.db", [flow])))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 1, "loaded")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowDetailScreen), "detail")
        viewer = app.screen.query_one("#request-body", BodyViewer)
        assert "part 2: avatar" in viewer.text
