"""Addon reports in the UI: failures made before it started, and reloads while it runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inspector.config import Config
from inspector.tui.app import InspectorApp
from inspector.tui.session import open_live
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
