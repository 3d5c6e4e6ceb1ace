"""Each row says what the exchange was: scheme, HTTP version, WebSocket, gRPC status, and
markers for marked, modified and replayed flows; the header counts modified flows."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.bus import EventKind, FlowEvent
from inspector.tui.app import InspectorApp
from inspector.tui.keys import ROW_LEGEND
from inspector.tui.rows import FlowRow, short_version
from inspector.tui.session import open_saved
from inspector.tui.widgets.flow_table import cell
from tests.test_tui import SIZE, header_text, table_text, wait_for
from tests.tui_fixtures import build_session, bus_app, marker_flows

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_short_version():
    assert [short_version(v) for v in ("HTTP/1.1", "HTTP/2", "HTTP/2.0", "HTTP/1.0")] == [
        "",
        "2",
        "2",
        "1.0",
    ]


def test_cells_of_live_rows():
    grpc, old, ws, changed, replay = (FlowRow.from_flow(f, i) for i, f in enumerate(marker_flows()))
    assert cell(grpc, "host")[0] == "https://grpc.example.com:50051"
    assert cell(grpc, "version")[0] == "2"
    assert cell(grpc, "status")[0] == "200 OK grpc NOT_FOUND"
    assert cell(old, "host")[0] == "http://legacy.example.com"
    assert cell(old, "version")[0] == "1.0"
    assert cell(ws, "host")[0] == "ws://chat.example.com"
    assert cell(changed, "")[0] == "✎"
    assert cell(replay, "")[0] == "●↻"
    assert cell(old, "")[0] == ""
    shown = {glyph for glyph, _ in ROW_LEGEND}
    assert {"●", "✎", "↻"} <= shown


async def test_live_rows_and_the_modified_count(tmp_path: Path):
    app, bus, store = bus_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        for flow in marker_flows():
            bus.publish(FlowEvent(EventKind.RESPONSE, flow))
        await wait_for(pilot, lambda: len(app.state.index) == 5, "five rows")
        await pilot.pause(0.2)
        lines = table_text(app)
        assert any("POST" in x and " 2 " in x and "grpc NOT_FOUND" in x for x in lines), lines
        assert any("ws://chat.example.com" in x for x in lines)
        assert "✎ 1 modified" in header_text(app)
    store.close()


async def test_rows_loaded_from_a_session_keep_what_the_store_knows(tmp_path: Path):
    app = InspectorApp(open_saved(build_session(tmp_path / "m.db", marker_flows())))
    async with app.run_test(size=SIZE) as pilot:
        # loaded: the rows, then the header's figures
        await wait_for(pilot, lambda: app.loaded and len(app.state.index) == 5, "loaded")
        rows = [app.state.index.row_at(i) for i in range(5)]
        assert rows[0].grpc == ""  # a gRPC call (its status is in the trailers, not listed)
        assert rows[2].websocket and cell(rows[2], "host")[0] == "ws://chat.example.com"
        assert rows[3].modified and cell(rows[3], "")[0] == "✎"
        assert cell(rows[4], "")[0] == "●↻"
        await pilot.pause(0.1)
        assert "✎ 1 modified" in header_text(app)
