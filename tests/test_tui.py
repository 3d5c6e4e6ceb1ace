"""The TUI driven by Pilot over real traffic: a real proxy thread, real upstream, urllib clients."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import OptionList, TextArea

from inspector.config import Config
from inspector.tui.app import InspectorApp
from inspector.tui.screens.flow_detail import FlowDetailScreen
from inspector.tui.screens.flow_list import FlowListScreen
from inspector.tui.screens.intercept_editor import InterceptEditorScreen
from inspector.tui.session import Session, open_live
from inspector.tui.widgets.events_pane import EventsPane
from inspector.tui.widgets.filter_bar import FilterBar
from inspector.tui.widgets.flow_table import FlowTable
from inspector.tui.widgets.status_bar import HeaderBar
from tests.servers import EchoServer
from tests.tui_fixtures import WAIT, wait_for

pytestmark = pytest.mark.anyio

SIZE = (150, 40)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def live(tmp_path: Path):
    """A real proxy on a free loopback port, recording to a session in tmp_path."""
    config = Config(listen_port=0, confdir=tmp_path / "conf", session=tmp_path / "s.db")
    session = open_live(config)
    yield session
    session.close()


def proxy_opener(session: Session) -> urllib.request.OpenerDirector:
    address = session.info.address
    return urllib.request.build_opener(urllib.request.ProxyHandler({"http": address}))


def fetch(session: Session, url: str, **kwargs) -> tuple[int, bytes]:
    """GET/POST ``url`` through the proxy; HTTP errors are answers too."""
    request = urllib.request.Request(url, **kwargs)
    try:
        with proxy_opener(session).open(request, timeout=WAIT) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def in_thread(func: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run a blocking client call beside the app; the result (or exception) lands in the list."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(func())
        except Exception as e:
            out.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def table_text(app: InspectorApp) -> list[str]:
    table = app.screen.query_one(FlowTable)
    return [table.render_line(y).text for y in range(table.size.height)]


def static_text(widget) -> str:
    """What a Static shows, as plain text (Rich renderables included)."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def header_text(app: InspectorApp) -> str:
    return str(app.screen.query_one(HeaderBar).render())


async def test_rows_appear_live_with_status_names(live, echo_server: EchoServer):
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        assert "Waiting for traffic" in static_text(app.screen.query_one("#first-run"))
        await asyncio.to_thread(fetch, live, f"{echo_server.url}/status/404")
        await asyncio.to_thread(fetch, live, f"{echo_server.url}/echo")
        await wait_for(pilot, lambda: len(app.state.index) == 2, "two rows")
        await wait_for(
            pilot, lambda: all(r.finished for r in app.state.index.rows.values()), "done"
        )
        await pilot.pause(0.2)
        lines = table_text(app)
        assert any("/status/404" in line and "404 Not Found" in line for line in lines)
        assert any("/echo" in line and "200 OK" in line for line in lines)
        assert not app.screen.query_one("#first-run").display
        assert "2 exchanges" in header_text(app)
        # follow mode keeps the cursor on the newest flow
        assert app.screen.query_one(FlowTable).cursor_row.path == "/echo"


def refused_port() -> int:
    """A loopback port nothing listens on (bound, never listened, closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_upstream_failure_shows_in_events_pane_and_jumps(live):
    port = refused_port()
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        status, body = await asyncio.to_thread(fetch, live, f"http://127.0.0.1:{port}/x")
        assert status == 502
        assert b"ConnectionRefusedError" in body
        await wait_for(pilot, lambda: app.state.errors == 1, "the error event")
        await pilot.pause(0.2)
        assert "1 errors" in header_text(app)
        assert any("ConnectionRefusedError" in line for line in table_text(app))
        await pilot.press("E")
        pane = app.screen.query_one(EventsPane)
        assert pane.display and pane.option_count == 1
        line = str(pane.get_option_at_index(0).prompt)
        assert "ConnectionRefusedError" in line and "connect" in line and f":{port}/x" in line
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowDetailScreen), "the detail")
        assert app.screen.flow_id == pane.flow_ids[0]
        assert app.screen.query_one("#tabs").active == "error"
        assert "ConnectionRefusedError" in static_text(app.screen.query_one("#error-view"))


async def test_filter_narrows_rows_toggles_and_rejects_bad_input(live, echo_server):
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        for path in ("/status/404", "/a", "/b"):
            await asyncio.to_thread(fetch, live, echo_server.url + path)
        await wait_for(pilot, lambda: len(app.state.index) == 3, "three rows")
        await pilot.press("f")
        bar = app.screen.query_one(FilterBar)
        await pilot.press(*"~c 4O4")
        await pilot.pause(0.1)
        error = str(bar.query_one(".filter-bar--error").render())
        assert "position" in error
        for _ in range(3):
            await pilot.press("backspace")
        await pilot.press(*"404", "enter")
        await wait_for(pilot, lambda: len(app.state.index) == 1, "the filter")
        assert app.state.index.row_at(0).path == "/status/404"
        assert not app.screen.query(FilterBar)
        # live: a new matching flow appears, a new other one does not
        await asyncio.to_thread(fetch, live, echo_server.url + "/status/404?again")
        await asyncio.to_thread(fetch, live, echo_server.url + "/c")
        await wait_for(pilot, lambda: len(app.state.index.rows) == 5, "five flows")
        await pilot.pause(0.2)
        assert [r.path for r in map(app.state.index.row_at, range(len(app.state.index)))] == [
            "/status/404",
            "/status/404?again",
        ]
        await pilot.press("t")
        await wait_for(pilot, lambda: len(app.state.index) == 5, "filter off")
        await pilot.press("t")
        await wait_for(pilot, lambda: len(app.state.index) == 2, "filter on again")
        # history: the last filter comes back with up
        await pilot.press("f", "ctrl+u")
        await pilot.press("up")
        assert app.screen.query_one(FilterBar).query_one("HistoryInput").value == "~c 404"


async def test_intercept_edit_reaches_upstream_after_resume(live, echo_server, monkeypatch):
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i", *"~u /echo", "enter")
        assert live.interceptor.expr == "~u /echo"
        thread, out = in_thread(lambda: fetch(live, f"{echo_server.url}/echo"))
        await wait_for(pilot, lambda: app.state.held_ids, "a held flow")
        await pilot.pause(0.2)
        assert "⏸ 1 held" in header_text(app)
        assert any("⏸ held" in line for line in table_text(app))
        # held flows never block other traffic
        status, _ = await asyncio.to_thread(fetch, live, f"{echo_server.url}/other")
        assert status == 200
        await wait_for(pilot, lambda: len(app.state.index) == 2, "the other flow")
        await pilot.press("home")  # the held flow is the first row
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, InterceptEditorScreen), "editor")
        area = app.screen.query_one(TextArea)
        text = area.text.replace("/echo HTTP/1.1", "/echo?edited=1 HTTP/1.1", 1)
        head, sep, body = text.partition("\n\n")
        area.load_text(head + "\nX-Edited: yes" + sep + body)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowListScreen), "back to list")
        await pilot.press("a")
        # the edited request reached the upstream...
        received = lambda: [r for r in echo_server.received if r.path == "/echo?edited=1"]  # noqa: E731
        await wait_for(pilot, received, "the edited request upstream")
        assert ("X-Edited", "yes") in received()[0].headers
        # ...and the filter holds its response too, until resumed
        await wait_for(pilot, lambda: app.state.held_ids, "the response held")
        assert live.interceptor.stage_of(app.state.index.row_at(0).id) == "response"
        await pilot.press("a")
        await asyncio.to_thread(thread.join, WAIT)
        assert out and out[0][0] == 200, out
        await wait_for(pilot, lambda: not app.state.held_ids, "nothing held")


async def test_kill_gives_the_client_an_error(live, echo_server):
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        app.set_intercept("~m POST")
        thread, out = in_thread(lambda: fetch(live, f"{echo_server.url}/echo", data=b"x=1"))
        await wait_for(pilot, lambda: app.state.held_ids, "a held flow")
        await pilot.press("X")
        await asyncio.to_thread(thread.join, WAIT)
        assert out, "the client never got an answer"
        result = out[0]
        assert isinstance(result, Exception) or result[0] >= 400, result
        assert echo_server.received == []
        await wait_for(pilot, lambda: app.state.errors == 1, "the kill recorded as an error")


async def test_replay_adds_a_linked_flow(live, echo_server):
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.to_thread(fetch, live, f"{echo_server.url}/echo?n=1")
        await wait_for(pilot, lambda: len(app.state.index) == 1, "one row")
        await wait_for(pilot, lambda: app.state.index.row_at(0).finished, "finished")
        original = app.state.index.row_at(0).id
        await pilot.press("r")
        await wait_for(pilot, lambda: len(app.state.index) == 2, "the replay")
        replay = app.state.index.row_at(1)
        assert replay.replay_of == original
        assert replay.status == 200
        assert len(echo_server.received) == 2
        await pilot.pause(0.1)
        assert table_text(app)[2].lstrip().startswith("↻")
        # the replay is recorded in the session too
        await asyncio.to_thread(live.store.flush)
        assert live.store.get(replay.id).replay_of == original


async def test_follow_mark_delete_and_clear(live, echo_server):
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        for i in range(3):
            await asyncio.to_thread(fetch, live, f"{echo_server.url}/n{i}")
        await wait_for(pilot, lambda: len(app.state.index) == 3, "three rows")
        table = app.screen.query_one(FlowTable)
        await pilot.press("up")
        assert not table.follow and table.cursor == 1
        await asyncio.to_thread(fetch, live, f"{echo_server.url}/n3")
        await wait_for(pilot, lambda: len(app.state.index) == 4, "four rows")
        assert table.cursor == 1  # not following: the cursor stays put
        await pilot.press("end")
        assert table.follow and table.cursor == 3
        await pilot.press("home", "m")  # mark the first and move down
        assert app.state.index.row_at(0).marked and table.cursor == 1
        await pilot.press("m")
        await pilot.press("d")  # deletes both marked flows
        await wait_for(pilot, lambda: len(app.state.index) == 2, "deleted")
        assert [app.state.index.row_at(i).path for i in range(2)] == ["/n2", "/n3"]
        await wait_for(pilot, lambda: live.store.count() == 2, "deleted from the session")
        await pilot.press("z", "y")
        await wait_for(pilot, lambda: len(app.state.index) == 0, "cleared")
        await wait_for(pilot, lambda: live.store.count() == 0, "cleared from the session")


async def test_global_search_lists_and_opens_flows(live, echo_server):
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.to_thread(fetch, live, f"{echo_server.url}/echo", data=b"needle=haystack")
        await asyncio.to_thread(fetch, live, f"{echo_server.url}/plain")
        await wait_for(pilot, lambda: len(app.state.index) == 2, "two rows")
        await pilot.press("slash", *"haystack", "enter")
        await wait_for(pilot, lambda: app.screen.query("#results"), "results screen")
        results = app.screen.query_one(OptionList)
        await wait_for(pilot, lambda: results.option_count == 1, "one result")
        assert "/echo" in str(results.get_option_at_index(0).prompt)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowDetailScreen), "the detail")
        assert app.screen.flow.request.path == "/echo"


async def test_quit_asks_first(live):
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        assert "Quit?" in str(app.screen.query_one(".question").render())
        await pilot.press("n")
        assert isinstance(app.screen, FlowListScreen)
        await pilot.press("q", "y")
        await pilot.pause(0.1)
    assert app.return_code == 0


async def test_insecure_warning_and_first_run_help(tmp_path: Path):
    config = Config(
        listen_port=0, confdir=tmp_path / "conf", session=tmp_path / "s.db", insecure=True
    )
    session = open_live(config)
    try:
        app = InspectorApp(session)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.1)
            status = str(app.screen.query_one("#status").render())
            assert "⚠ --insecure: upstream certificates are NOT verified" in status
            first_run = static_text(app.screen.query_one("#first-run"))
            address = session.info.address
            ca = str(tmp_path / "conf" / "ca.pem")
            assert f"curl -x {address} --cacert {ca} https://example.com" in first_run
            # the shell line for this proxy (its port is not the default one)
            assert f'eval "$(inspector env --proxy {address})"' in first_run
            assert Path(ca).is_file()  # the CA the text points at exists
    finally:
        session.close()
