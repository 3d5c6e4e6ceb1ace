"""Snapshot tests of the main screens at a fixed size over fixed data (pytest-textual-snapshot).

Update after an intended change of looks with ``pytest tests/test_tui_snapshots.py
--snapshot-update`` and review the SVGs in tests/__snapshots__/.
"""

from __future__ import annotations

import time

import pytest

from tests.tui_fixtures import SCENES, SCREEN_SIZE, prepare_scene, scene_app


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Times in the list are local time: pin the zone so snapshots do not depend on it."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("scene", SCENES, ids=[s.name for s in SCENES])
def test_screen(scene, snap_compare, tmp_path):
    app = scene_app(scene, tmp_path)
    try:
        assert snap_compare(
            app,
            terminal_size=SCREEN_SIZE,
            run_before=lambda pilot: prepare_scene(scene, pilot),
        )
    finally:
        app.session.close()
