"""`inspector show`: the same UI over a saved session, read-only apart from replay and export."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import RadioButton, TextArea

from inspector.store import Store
from inspector.tui.app import InspectorApp, run_show
from inspector.tui.screens.export import ExportScreen
from inspector.tui.screens.flow_detail import FlowDetailScreen
from inspector.tui.screens.flow_list import FlowListScreen
from inspector.tui.screens.help import HelpScreen
from inspector.tui.session import open_saved
from inspector.tui.widgets.body_viewer import BodyViewer
from inspector.tui.widgets.flow_table import FlowTable
from tests.test_tui import SIZE, static_text, table_text, wait_for
from tests.tui_fixtures import _flow, build_session, sample_flows

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return build_session(tmp_path / "saved.db", sample_flows())


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inspector", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )


def test_show_missing_or_bad_file_is_a_clear_error(tmp_path: Path, capsys):
    assert run_show(tmp_path / "nope.db") == 2
    assert "does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    assert run_show(junk) == 2
    assert "not an http-inspector session" in capsys.readouterr().err
    assert run_show(tmp_path) == 2
    assert "is a directory" in capsys.readouterr().err


def test_show_cli_reports_a_missing_session(tmp_path: Path):
    result = run_cli("show", str(tmp_path / "missing.db"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


async def open_detail(app: InspectorApp, pilot, row: int) -> FlowDetailScreen:
    await wait_for(pilot, lambda: len(app.state.index) == 13, "the session loaded")
    table = app.screen.query_one(FlowTable)
    table.follow = False
    table.cursor = row
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, FlowDetailScreen), "the detail")
    await pilot.pause(0.1)
    return app.screen


def viewer_text(screen: FlowDetailScreen, part: str) -> tuple[str, str]:
    viewer = screen.query_one(f"#{part}-body", BodyViewer)
    return static_text(viewer.query_one(".body-viewer--notes")), viewer.query_one(TextArea).text


async def test_show_lists_every_flow_read_only(saved: Path):
    app = InspectorApp(open_saved(saved))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 13, "the session loaded")
        await pilot.pause(0.1)
        lines = table_text(app)
        assert any('404 Not Found ("Nope")' in line for line in lines)
        assert any("BadStatusLine" in line for line in lines)
        assert any(line.lstrip().startswith("●") and "/v1/login" in line for line in lines)
        assert app.state.errors == 2
        assert not app.screen.query_one("#first-run").display
        await pilot.press("home", "d")
        await pilot.pause(0.1)
        assert len(app.state.index) == 13  # read-only: nothing deleted
        await pilot.press("m")
        assert app.state.index.row_at(0).marked  # marks stay in memory for replay/export
    store = Store(saved, readonly=True)
    assert store.count() == 13
    assert not store.get(f"{1:032x}").marked
    store.close()


async def test_detail_status_line_reason_and_tabs(saved: Path):
    app = InspectorApp(open_saved(saved))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(app, pilot, 5)  # 404 with the reason "Nope"
        head = static_text(screen.query_one("#response-head"))
        assert "404 Not Found" in head and "NOT_FOUND" in head
        assert "RFC 9110, Section 15.5.5" in head
        assert 'the server sent the reason phrase "Nope"' in head
        assert screen.query_one("#tabs").active == "response"
        await pilot.press("tab")
        assert screen.query_one("#tabs").active == "timing"
        assert "waiting (first byte)" in static_text(screen.query_one("#timing-view"))
        await pilot.press("tab")
        assert "TLS_AES_256_GCM_SHA384" in static_text(screen.query_one("#tls-view"))
        await pilot.press("shift+tab", "shift+tab", "shift+tab")
        assert screen.query_one("#tabs").active == "request"
        request = static_text(screen.query_one("#request-head"))
        # headers in their original order and case
        assert request.index("Host: api.example.com") < request.index("User-Agent: curl/8.5.0")
        await pilot.press("escape")
        assert isinstance(app.screen, FlowListScreen)


async def test_body_viewers_decode_cycle_and_find(saved: Path):
    app = InspectorApp(open_saved(saved))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(app, pilot, 6)  # gzip-encoded JSON
        notes, text = viewer_text(screen, "response")
        assert "decoded Content-Encoding: gzip" in notes and "viewer: JSON" in notes
        assert text == '{\n  "rows": [\n    1,\n    2,\n    3\n  ]\n}'
        await pilot.press("m")  # auto (JSON) -> text
        notes, text = viewer_text(screen, "response")
        assert "viewer: text" in notes and text == '{"rows": [1, 2, 3]}'
        await pilot.press("m", "m", "m")  # -> JSON -> HTML/XML -> form, which does not fit
        notes, text = viewer_text(screen, "response")
        assert "form view: not URL-encoded form data" in notes
        await pilot.press("m")  # -> multipart, which does not fit either
        notes, text = viewer_text(screen, "response")
        assert "multipart parts view: no boundary in the Content-Type" in notes
        await pilot.press("m")  # -> hex of the decoded content
        notes, text = viewer_text(screen, "response")
        assert "viewer: hex" in notes and text.startswith("00000000  7b 22 72 6f 77 73")
        await pilot.press("escape")
        screen = await open_detail(app, pilot, 0)  # JSON users list
        await pilot.press("slash", *"linus", "enter")
        await pilot.pause(0.1)
        area = screen.query_one("#response-body", BodyViewer).query_one(TextArea)
        assert area.selected_text == "Linus"
        await pilot.press("slash", *"zzz", "enter")
        await pilot.pause(0.1)
        assert any("not found" in str(n.message) for n in app._notifications)


async def test_truncated_body_notice_and_hex_view(saved: Path):
    app = InspectorApp(open_saved(saved))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(app, pilot, 9)  # 1 kB recorded of 12.3 MB
        notes, text = viewer_text(screen, "response")
        assert "recorded 1.0 kB of 12.3 MB, sha256 9f86d081884c7d65" in notes
        assert "untouched by rules and addons" in notes  # over the addon limit too
        assert "viewer: hex" in notes and text.startswith("00000000  00 01 02 03")


async def test_websocket_and_image(saved: Path):
    app = InspectorApp(open_saved(saved))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(app, pilot, 12)
        ws = static_text(screen.query_one("#websocket-view"))
        assert "→ server  text" in ws and '{"hello": 1}' in ws and "← client" in ws
        await pilot.press("escape")
        screen = await open_detail(app, pilot, 4)
        viewer = screen.query_one("#response-body", BodyViewer)
        await wait_for(pilot, lambda: not viewer.previewing, "the image preview")
        shown = static_text(viewer.query_one(".body-viewer--preview"))
        assert shown.startswith("PNG image, 64 x 32 px") and "▀" in shown


async def test_replay_from_a_saved_session_stays_in_memory(tmp_path: Path, echo_server):
    flow = _flow(1, "GET", "127.0.0.1", "/echo?saved=1", scheme="http", port=echo_server.port)
    path = build_session(tmp_path / "one.db", [flow])
    app = InspectorApp(open_saved(path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 1, "loaded")
        await pilot.press("r")
        await wait_for(pilot, lambda: len(app.state.index) == 2, "the replay")
        assert app.state.index.row_at(1).replay_of == flow.id
        assert echo_server.received[0].path == "/echo?saved=1"
        # its detail comes from memory
        await pilot.press("end", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowDetailScreen), "detail")
        assert app.screen.flow.response.status_code == 200
    store = Store(path, readonly=True)
    assert store.count() == 1
    store.close()


async def test_export_curl_and_har_to_files(saved: Path, tmp_path: Path):
    app = InspectorApp(open_saved(saved))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 13, "loaded")
        await pilot.press("home", "x")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen), "export dialog")
        app.screen.query_one("#path").value = str(tmp_path / "out.sh")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowListScreen), "dialog closed")
        script = (tmp_path / "out.sh").read_text()
        # the session has a marked flow: marked flows are what gets exported
        assert "curl " in script and "https://api.example.com/v1/login" in script
        assert "/v1/users" not in script
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen), "export dialog")
        app.screen.query(RadioButton)[2].value = True  # HAR
        await pilot.pause(0.05)
        assert app.screen.query_one("#path").value.endswith(".har")
        app.screen.query_one("#path").value = str(tmp_path / "missing-dir" / "x.har")
        await pilot.press("ctrl+s")
        await pilot.pause(0.05)
        assert "does not exist" in static_text(app.screen.query_one("#export-error"))
        app.screen.query_one("#path").value = str(tmp_path / "x.har")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: (tmp_path / "x.har").exists(), "the HAR file")
        assert json.loads((tmp_path / "x.har").read_text())["log"]["entries"][0]["request"]


async def test_help_lists_every_key_and_palette_has_them(saved: Path):
    app = InspectorApp(open_saved(saved))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        from inspector.tui.screens.help import help_renderable

        console = Console(width=200, record=True, file=io.StringIO())
        console.print(help_renderable())
        text = console.export_text()
        for binding in FlowListScreen.BINDINGS + FlowDetailScreen.BINDINGS:
            assert binding.description in text, binding.description
        assert "~c CODE" in text
        await pilot.press("escape")
        assert isinstance(app.screen, FlowListScreen)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Replay", "Filter", "Intercept", "Export", "Events", "Help"} <= titles
        await asyncio.sleep(0)


async def test_sort_by_key_and_by_clicking_a_column_title(saved: Path):
    app = InspectorApp(open_saved(saved))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 13, "loaded")
        await pilot.press("o", "down", "enter")  # the chooser: time -> method
        methods = [app.state.index.row_at(i).method for i in range(13)]
        assert methods == sorted(methods)
        await pilot.press("v")
        methods = [app.state.index.row_at(i).method for i in range(13)]
        assert methods == sorted(methods, reverse=True)
        table = app.screen.query_one(FlowTable)
        header = table.render_line(0).text
        assert "Method ▼" in header
        await pilot.click(FlowTable, offset=(header.index("Status") + 1, 0))
        await pilot.pause(0.05)
        codes = [app.state.index.row_at(i).status for i in range(13)]
        assert codes[:11] == sorted(c for c in codes if c is not None)
        assert "Status ▲" in table.render_line(0).text
        await pilot.click(FlowTable, offset=(header.index("Status") + 1, 0))
        await pilot.pause(0.05)
        codes = [app.state.index.row_at(i).status for i in range(13)]  # the same title reverses
        assert codes[2:] == sorted((c for c in codes if c is not None), reverse=True)


async def test_json_body_is_coloured_and_a_huge_one_is_capped(tmp_path: Path):
    from inspector.tui.widgets.body_viewer import SHOW_LIMIT, ColouredTextArea

    rows = [{"id": i, "name": f"user {i}", "active": i % 2 == 0} for i in range(60_000)]
    big = json.dumps(rows).encode()
    assert len(big) > 2 * SHOW_LIMIT
    flows = [_flow(1, "GET", "api.example.com", "/small"), _flow(2, "GET", "a", "/big", body=big)]
    flows[0].response.body.data = b'{"ok": true, "n": 3}'
    app = InspectorApp(open_saved(build_session(tmp_path / "c.db", flows)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 2, "loaded")
        await pilot.press("g", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowDetailScreen), "detail")
        viewer = app.screen.query_one("#response-body", BodyViewer)
        await wait_for(pilot, lambda: not viewer.colouring, "coloured")
        area = viewer.query_one(ColouredTextArea)
        line = area.get_line(1)  # '  "ok": true,'
        styled = {line.plain[s.start : s.end] for s in line.spans if s.style}
        assert '"ok"' in styled and "true" in styled
        await pilot.press("space")  # the next flow: 2 MiB of JSON
        await wait_for(
            pilot, lambda: "/big" in static_text(app.screen.query_one("#summary")), "big"
        )
        await wait_for(pilot, lambda: not viewer.colouring, "coloured")
        assert len(viewer.text) <= SHOW_LIMIT
        notes = static_text(viewer.query_one(".body-viewer--notes"))
        assert "showing the first" in notes and "b saves the whole body" in notes
        assert "colours for the first" in notes
        assert area.spans and max(area.spans) < area.document.line_count - 1  # the rest is plain
