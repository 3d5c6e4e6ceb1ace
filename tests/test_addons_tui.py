"""Addon reports in the UI: failures made before it started, and reloads while it runs."""

from __future__ import annotations

import asyncio
import os
import urllib.request
from pathlib import Path

import pytest

from inspector.config import Config
from inspector.tui.app import InspectorApp
from inspector.tui.screens.flow_detail import FlowDetailScreen
from inspector.tui.session import open_live
from tests.servers import EchoServer
from tests.tui_fixtures import wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def messages(app: InspectorApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_a_broken_script_is_a_notification_until_it_loads(tmp_path: Path) -> None:
    script = tmp_path / "addon.py"
    script.write_text("def request(flow)\n")
    config = Config(
        listen_port=0, confdir=tmp_path / "conf", session=tmp_path / "s.db", scripts=(script,)
    )
    session = open_live(config)
    try:
        app = InspectorApp(session)
        async with app.run_test(size=(150, 40)) as pilot:
            await pilot.pause()
            first = messages(app)
            assert any("addon addon.py is off until it loads cleanly" in m for m in first)
            before = script.stat().st_mtime_ns
            script.write_text("def request(flow):\n    pass\n")
            os.utime(script, ns=(before + 10_000_000, before + 10_000_000))
            await wait_for(pilot, lambda: "addon addon.py reloaded" in messages(app), "reload")
    finally:
        session.close()


async def test_the_changes_tab_shows_original_against_changed(
    tmp_path: Path, echo_server: EchoServer
) -> None:
    config = Config(
        listen_port=0,
        confdir=tmp_path / "conf",
        session=tmp_path / "s.db",
        modify_headers=("/~q/X-Added/yes", "/~s/Server/"),
        map_remote=("|/from/|/echo/",),
    )
    session = open_live(config)
    try:
        app = InspectorApp(session)
        async with app.run_test(size=(150, 40)) as pilot:
            opener = urllib.request.build_opener(
                urllib.request.ProxyHandler({"http": session.info.address})
            )
            url = f"{echo_server.url}/from/x"
            await asyncio.to_thread(lambda: opener.open(url, timeout=10).read())
            await wait_for(pilot, lambda: app.state.index.rows, "the flow")
            flow_id = next(iter(app.state.index.rows))
            app.push_screen(FlowDetailScreen(flow_id))
            await wait_for(pilot, lambda: isinstance(app.screen, FlowDetailScreen), "detail")
            await wait_for(pilot, lambda: app.screen.flow is not None, "the flow loaded")
            app.screen.query_one("#tabs").active = "changes"
            await pilot.pause()
            shown = str(app.screen.query_one("#changes-view").render())
    finally:
        session.close()
    assert "1. --map-remote |/from/|/echo/" in shown
    assert f"- GET {echo_server.url}/from/x" in shown and f"+ GET {echo_server.url}/echo/x" in shown
    assert "header + X-Added: yes" in shown
    assert "header - Server: TestEcho/1.0" in shown
