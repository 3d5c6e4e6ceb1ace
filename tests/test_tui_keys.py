"""mitmproxy 11's keys (its defaultkeys) do what a mitmproxy user expects, driven by Pilot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import TextArea

from inspector.store import Store
from inspector.tui.app import InspectorApp
from inspector.tui.keys import SECTIONS
from inspector.tui.screens.choose import ChoiceScreen
from inspector.tui.screens.export import ExportScreen
from inspector.tui.screens.flow_detail import FlowDetailScreen
from inspector.tui.screens.flow_list import FlowListScreen
from inspector.tui.screens.intercept_editor import InterceptEditorScreen
from inspector.tui.session import open_saved
from inspector.tui.widgets.flow_table import FlowTable
from tests.test_tui import SIZE, fetch, live, wait_for  # noqa: F401 (live is a fixture)
from tests.tui_fixtures import build_session, sample_flows

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return build_session(tmp_path / "saved.db", sample_flows())


def notes(app: InspectorApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def paths(app: InspectorApp) -> list[str]:
    index = app.state.index
    return [index.row_at(i).path for i in range(len(index))]


@pytest.fixture
def no_editor(monkeypatch):
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)


def test_every_key_is_listed_once_per_screen():
    """The help screen lists SECTIONS; no key does two things on one screen."""
    for title, bindings in SECTIONS:
        seen: dict[str, str] = {}
        for binding in bindings:
            for key in binding.key.split(","):
                if title == "Flow list" and key == "enter":
                    continue  # the list and its table both open the flow
                assert key not in seen or seen[key] == binding.action, (title, key)
                seen[key] = binding.action


async def test_navigation_keys(saved: Path):
    app = InspectorApp(open_saved(saved))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 13, "loaded")
        table = app.screen.query_one(FlowTable)
        await pilot.press("g")
        assert table.cursor == 0 and not table.follow
        await pilot.press("j", "j", "k")
        assert table.cursor == 1
        await pilot.press("G")
        assert table.cursor == 12 and table.follow
        await pilot.press("g", "ctrl+f")
        assert table.cursor > 1
        await pilot.press("ctrl+b")
        assert table.cursor == 0
        await pilot.press("space")
        assert table.cursor > 1
        await pilot.press("g", "F")  # follow on: the cursor jumps to the newest flow
        assert table.follow and table.cursor == 12
        await pilot.press("v")  # reverse
        assert paths(app)[0] == sample_flows()[-1].request.path
        await pilot.press("colon")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")


async def test_mark_unmark_all_and_marked_only(saved: Path):
    app = InspectorApp(open_saved(saved))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 13, "loaded")
        await pilot.press("g", "m")  # marks the first (and moves down)
        marked = {r.id for r in app.state.index.rows.values() if r.marked}
        assert len(marked) == 2  # the sample session has one marked already
        await pilot.press("M")
        assert len(app.state.index) == 2
        assert "marked only" in str(app.screen.query_one("#status").render())
        await pilot.press("U")
        assert not any(r.marked for r in app.state.index.rows.values())
        assert len(app.state.index) == 0  # marked only, and nothing is marked
        await pilot.press("M")
        assert len(app.state.index) == 13


async def test_duplicate_edit_revert_and_replay_keys(saved: Path, no_editor):
    app = InspectorApp(open_saved(saved))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 13, "loaded")
        await pilot.press("U", "g", "D")  # nothing marked: D duplicates the current flow
        await wait_for(pilot, lambda: len(app.state.index) == 14, "the duplicate")
        twin_id = app.state.index.row_at(13).id
        first = app.state.index.row_at(0)
        assert twin_id != first.id and app.state.index.row_at(13).path == first.path
        await pilot.press("G", "e")
        await wait_for(pilot, lambda: isinstance(app.screen, InterceptEditorScreen), "editor")
        area = app.screen.query_one(TextArea)
        area.load_text(area.text.replace("/v1/users?page=1", "/v1/users?page=2", 1))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowListScreen), "back")
        assert app.state.index.rows[twin_id].path == "/v1/users?page=2"
        assert app.state.load_flow(twin_id).request.path == "/v1/users?page=2"
        assert app.state.load_flow(first.id).request.path == "/v1/users?page=1"
        await pilot.press("V")
        await wait_for(
            pilot, lambda: app.state.index.rows[twin_id].path == "/v1/users?page=1", "reverted"
        )
        await pilot.press("V")
        assert any("nothing to revert" in n for n in notes(app))


async def test_export_is_x_and_copy_says_osc52(saved: Path):
    app = InspectorApp(open_saved(saved))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 13, "loaded")
        await pilot.press("g", "x")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen), "export dialog")
        await pilot.press("ctrl+y")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowListScreen), "closed")
        assert any("sent to the terminal clipboard (OSC 52)" in n for n in notes(app))
        await pilot.press("c")
        assert app.clipboard == "https://api.example.com/v1/users?page=1"
        assert any(n.startswith("URL sent to the terminal clipboard") for n in notes(app))


async def test_w_saves_listed_flows_and_b_saves_the_body(saved: Path, tmp_path: Path):
    app = InspectorApp(open_saved(saved))
    out = tmp_path / "subset.db"
    body = tmp_path / "users.json"
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 13, "loaded")
        await pilot.press("f", *"~d api", "enter")
        await wait_for(pilot, lambda: len(app.state.index) < 13, "filtered")
        shown = len(app.state.index)
        # one flow of the sample is marked: w saves the marked flows when there are any
        await pilot.press("w", "ctrl+u", *str(tmp_path / "missing" / "x.db"), "enter")
        await wait_for(pilot, lambda: any("does not exist" in n for n in notes(app)), "error")
        await pilot.press("U", "w", "ctrl+u", *str(out), "enter")
        await wait_for(pilot, lambda: any("saved" in n for n in notes(app)), "saved")
        await pilot.press("g", "b", *str(body), "enter")
        await wait_for(pilot, body.exists, "the body written")
    store = Store(out, readonly=True)
    assert store.count() == shown
    store.close()
    assert body.read_bytes() == sample_flows()[0].response.body.data


async def test_drop_not_shown_and_clear(live, echo_server):  # noqa: F811
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        for name in ("keep", "drop", "drop2"):
            await asyncio.to_thread(fetch, live, f"{echo_server.url}/{name}")
        await wait_for(pilot, lambda: len(app.state.index.rows) == 3, "three rows")
        await pilot.press("f", *"~u keep", "enter")
        await wait_for(pilot, lambda: len(app.state.index) == 1, "filtered")
        await pilot.press("Z", "y")
        await wait_for(pilot, lambda: len(app.state.index.rows) == 1, "dropped")
        await wait_for(pilot, lambda: live.store.count() == 1, "dropped from the session")
        await pilot.press("z", "y")
        await wait_for(pilot, lambda: live.store.count() == 0, "cleared")


async def test_detail_keys_step_view_mode_and_copy_header(saved: Path):
    app = InspectorApp(open_saved(saved))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 13, "loaded")
        await pilot.press("g", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowDetailScreen), "detail")
        screen = app.screen
        first = screen.flow_id
        await pilot.press("space")
        assert screen.flow_id == app.state.index.row_at(1).id
        await pilot.press("p")
        assert screen.flow_id == first
        tabs = screen.query_one("#tabs")
        start = tabs.active
        await pilot.press("l")
        assert tabs.active != start
        await pilot.press("h")
        assert tabs.active == start
        await pilot.press("slash", "a", "space", "b")  # space types into the find prompt
        assert screen.flow_id == first
        assert screen.query_one("FilterBar Input").value == "a b"
        await pilot.press("escape")
        screen.query_one("#tabs").active = "response"
        await pilot.pause(0.05)
        before = screen.viewers["response"]
        await pilot.press("m")
        assert screen.viewers["response"] != before
        await pilot.press("C")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen), "header chooser")
        labels = [label for label, _ in app.screen.choices]
        pick = next(i for i, label in enumerate(labels) if "Content-Type" in label)
        for _ in range(pick):
            await pilot.press("down")
        await pilot.press("enter")
        assert app.clipboard == "application/json"
        await pilot.press("c")
        assert app.clipboard == "https://api.example.com/v1/users?page=1"


def test_readme_key_table_is_the_help_screens():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("<!-- keys: generated by inspector.tui.keys.markdown() -->\n")
    end = readme.index("<!-- /keys -->")
    from inspector.tui.keys import markdown

    assert readme[start:end].split("\n", 1)[1] == markdown()


async def test_an_exchange_in_progress_is_not_edited(tmp_path: Path, no_editor):
    from inspector.bus import EventKind, FlowEvent
    from tests.tui_fixtures import bus_app, numbered_flow

    app, bus, store = bus_app(tmp_path)
    flow = numbered_flow(1)
    flow.response, flow.timings.end = None, None  # the upstream has not answered yet
    async with app.run_test(size=SIZE) as pilot:
        bus.publish(FlowEvent(EventKind.STARTED, flow))
        await wait_for(pilot, lambda: len(app.state.index) == 1, "the row")
        await pilot.press("e")
        await wait_for(pilot, lambda: any("in progress" in n for n in notes(app)), "refused")
        assert isinstance(app.screen, FlowListScreen)
    store.close()
