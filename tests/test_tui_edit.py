"""An edit made in the UI is a recorded change like a rule's: the original kept beside it,
"edited in the UI" named, the ✎ marker, ~modified, [modified], HAR _original; V reverts it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import TabbedContent, TextArea

from inspector.export.har import har_document
from inspector.filters import parse
from inspector.render import flow_line
from inspector.store import Store
from inspector.tui.app import InspectorApp
from inspector.tui.editing import message_text
from inspector.tui.edits import UI_EDIT, EditLog
from inspector.tui.screens.flow_detail import FlowDetailScreen
from inspector.tui.screens.flow_list import FlowListScreen
from inspector.tui.screens.intercept_editor import InterceptEditorScreen
from inspector.tui.session import open_saved
from tests.test_rules_store import changed_flow as rule_changed_flow
from tests.test_tui import (  # noqa: F401 (live is a fixture)
    SIZE,
    fetch,
    header_text,
    in_thread,
    live,
    static_text,
    table_text,
)
from tests.tui_fixtures import WAIT, build_session, sample_flows, wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def no_editor(monkeypatch):
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)


def edited_text(flow, old: str, new: str, stage: str = "request") -> str:
    text = message_text(flow, stage)
    assert old in text
    return text.replace(old, new, 1)


# --- the record, without a UI -------------------------------------------------------------


def test_an_edit_keeps_the_original_and_names_the_ui(tmp_path: Path):
    flow = sample_flows()[0]
    log = EditLog(body_limit=1024)
    assert log.apply(flow, edited_text(flow, "page=1", "page=2"), "request")
    assert flow.request.path == "/v1/users?page=2"
    assert flow.original_request.path == "/v1/users?page=1"
    assert flow.original_response is None and flow.modified_by == [UI_EDIT]
    assert flow_line(flow).endswith("  [modified]") and parse("~modified")(flow)
    # a second edit keeps the first original; the response's edit keeps the upstream's
    log.apply(flow, edited_text(flow, "page=2", "page=3"), "request")
    log.apply(flow, edited_text(flow, '"Ada"', '"Grace"', "response"), "response")
    assert flow.original_request.path == "/v1/users?page=1"
    assert b"Ada" in flow.original_response.body.data and b"Grace" in flow.response.body.data
    assert flow.modified_by == [UI_EDIT]
    with Store(tmp_path / "s.db") as store:
        store.put(flow)
        store.flush()
        assert store.count("~modified") == 1
        back = store.get(flow.id)
        assert back.modified_by == [UI_EDIT]
        assert back.original_request.path == "/v1/users?page=1"
        assert b"Ada" in back.original_response.body.data
    entry = har_document([flow])["log"]["entries"][0]
    assert entry["_original"]["modifiedBy"] == [UI_EDIT]
    assert entry["_original"]["request"]["url"].endswith("page=1")
    assert entry["request"]["url"].endswith("page=3")
    # V: both messages as they were, the change record gone
    assert log.revert(flow) == ["request", "response"]
    assert flow.request.path == "/v1/users?page=1" and b"Ada" in flow.response.body.data
    assert (flow.original_request, flow.original_response, flow.modified_by) == (None, None, [])
    assert not log.edited(flow.id) and log.revert(flow) == []


def test_unchanged_and_undone_edits_record_nothing():
    flow = sample_flows()[0]
    log = EditLog(body_limit=1024)
    assert not log.apply(flow, message_text(flow, "request"), "request")  # saved as it was
    assert flow.modified_by == [] and flow.original_request is None
    log.apply(flow, edited_text(flow, "page=1", "page=9"), "request")
    assert flow.modified_by == [UI_EDIT]
    log.apply(flow, edited_text(flow, "page=9", "page=1"), "request")  # edited back: a revert
    assert flow.modified_by == [] and flow.original_request is None
    assert not log.edited(flow.id)


def test_an_edit_of_a_flow_a_rule_changed_keeps_the_clients_original():
    flow = rule_changed_flow()
    rule_labels = list(flow.modified_by)
    client_sent = flow.original_request
    log = EditLog(body_limit=1024)
    log.apply(flow, edited_text(flow, "/login", "/login?by=hand"), "request")
    assert flow.original_request is client_sent  # what the client sent, not the rule's result
    assert flow.modified_by == [*rule_labels, UI_EDIT]
    assert log.revert(flow) == ["request"]
    assert flow.request.path == "/login" and flow.original_request is client_sent
    assert flow.modified_by == rule_labels  # the rule's change stays recorded


def test_a_held_responses_revert_leaves_the_request_that_went_upstream():
    flow = sample_flows()[0]
    log = EditLog(body_limit=1024)
    log.apply(flow, edited_text(flow, "page=1", "page=2"), "request")
    log.apply(flow, edited_text(flow, "200 OK", "203 Edited", "response"), "response")
    assert log.revert(flow, ("response",)) == ["response"]
    assert flow.response.status_code == 200 and flow.original_response is None
    assert flow.request.path == "/v1/users?page=2" and flow.modified_by == [UI_EDIT]
    assert log.edited(flow.id)


def test_a_big_bodys_original_is_kept_as_the_store_keeps_bodies():
    flow = sample_flows()[1]  # POST with a JSON body
    log = EditLog(body_limit=8)
    log.apply(flow, edited_text(flow, "hunter2", "swordfish"), "request")
    kept = flow.original_request.body
    assert kept.truncated and len(kept.data) == 8 and kept.size > 8
    log.revert(flow)
    assert b"hunter2" in flow.request.body.data and not flow.request.body.truncated


# --- Pilot: a held flow through a real proxy ------------------------------------------------


async def edit_in_screen(pilot, app, old: str, new: str) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, InterceptEditorScreen), "the editor")
    area = app.screen.query_one(TextArea)
    assert old in area.text
    area.load_text(area.text.replace(old, new, 1))
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: not isinstance(app.screen, InterceptEditorScreen), "applied")


async def test_a_held_request_edited_goes_upstream_edited_and_records_both(
    live,  # noqa: F811 (the fixture)
    echo_server,
    no_editor,
):
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        app.set_intercept("~q & ~u /echo")
        thread, out = in_thread(lambda: fetch(live, f"{echo_server.url}/echo?n=1"))
        await wait_for(pilot, lambda: app.state.held_ids, "the held request")
        flow_id = next(iter(app.state.held_ids))
        await pilot.press("e")
        await edit_in_screen(pilot, app, "/echo?n=1 HTTP/1.1", "/echo?n=2 HTTP/1.1")
        row = app.state.index.rows[flow_id]
        assert row.modified and row.held
        await pilot.pause(0.2)
        assert any("✎" in line and "/echo?n=2" in line for line in table_text(app))
        assert "✎ 1 modified" in header_text(app)
        await pilot.press("a")
        await asyncio.to_thread(thread.join, WAIT)
        assert out and out[0][0] == 200, out
        assert [r.path for r in echo_server.received] == ["/echo?n=2"]  # the edited one
        await wait_for(pilot, lambda: app.state.index.rows[flow_id].finished, "finished")
        await asyncio.to_thread(live.store.flush)
        recorded = live.store.get(flow_id)
        assert recorded.request.path == "/echo?n=2"
        assert recorded.original_request.path == "/echo?n=1"
        assert recorded.modified_by == [UI_EDIT]
        assert live.store.count("~modified") == 1
        # the detail's Changes tab shows both
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowDetailScreen), "the detail")
        app.screen.query_one(TabbedContent).active = "changes"
        changes = static_text(app.screen.query_one("#changes-view"))
        assert UI_EDIT in changes and "went on as edited" in changes
        assert "- GET http://127.0.0.1" in changes and "/echo?n=1" in changes
        assert "+ GET http://127.0.0.1" in changes and "/echo?n=2" in changes


async def test_a_held_edit_reverted_before_resuming_sends_the_original(
    live,  # noqa: F811 (the fixture)
    echo_server,
    no_editor,
):
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        app.set_intercept("~q")
        thread, out = in_thread(lambda: fetch(live, f"{echo_server.url}/echo?n=1"))
        await wait_for(pilot, lambda: app.state.held_ids, "the held request")
        flow_id = next(iter(app.state.held_ids))
        await pilot.press("e")
        await edit_in_screen(pilot, app, "/echo?n=1 HTTP/1.1", "/echo?n=2 HTTP/1.1")
        assert app.state.index.rows[flow_id].modified
        await pilot.press("V")
        await wait_for(pilot, lambda: not app.state.index.rows[flow_id].modified, "unmarked")
        assert app.state.counts.modified == 0
        await pilot.press("a")
        await asyncio.to_thread(thread.join, WAIT)
        assert out and out[0][0] == 200, out
        assert [r.path for r in echo_server.received] == ["/echo?n=1"]
        await wait_for(pilot, lambda: app.state.index.rows[flow_id].finished, "finished")
        await asyncio.to_thread(live.store.flush)
        recorded = live.store.get(flow_id)
        assert recorded.modified_by == [] and recorded.original_request is None
        assert live.store.count("~modified") == 0


async def test_a_held_response_edited_reaches_the_client_and_keeps_the_upstreams(
    live,  # noqa: F811 (the fixture)
    echo_server,
    no_editor,
):
    app = InspectorApp(live)
    async with app.run_test(size=SIZE) as pilot:
        app.set_intercept("~s & ~u /status/404")
        thread, out = in_thread(lambda: fetch(live, f"{echo_server.url}/status/404"))
        await wait_for(pilot, lambda: app.state.held_ids, "the held response")
        flow_id = next(iter(app.state.held_ids))
        await pilot.press("e")
        await edit_in_screen(pilot, app, "HTTP/1.1 404 Not Found", "HTTP/1.1 200 Fine")
        await pilot.press("a")
        await asyncio.to_thread(thread.join, WAIT)
        assert out and out[0][0] == 200, out
        await wait_for(pilot, lambda: app.state.index.rows[flow_id].finished, "finished")
        await asyncio.to_thread(live.store.flush)
        recorded = live.store.get(flow_id)
        assert (recorded.response.status_code, recorded.response.reason) == (200, "Fine")
        assert recorded.original_response.status_code == 404
        assert recorded.original_request is None and recorded.modified_by == [UI_EDIT]


# --- Pilot: a saved session, D then e, V, and the file afterwards ---------------------------


async def test_duplicate_edit_marks_filters_and_reverts(tmp_path: Path, no_editor):
    path = build_session(tmp_path / "s.db", sample_flows())
    app = InspectorApp(open_saved(path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 13, "loaded")
        await pilot.press("U", "g", "D")
        await wait_for(pilot, lambda: len(app.state.index) == 14, "the duplicate")
        twin = app.state.index.row_at(13).id
        await pilot.press("G", "e")
        await edit_in_screen(pilot, app, "page=1", "page=2")
        assert app.state.index.rows[twin].modified
        await pilot.press("f", *"~modified", "enter")
        await wait_for(pilot, lambda: len(app.state.index) == 1, "the ~modified filter")
        assert app.state.index.row_at(0).id == twin
        await pilot.pause(0.2)
        assert any("✎" in line and "page=2" in line for line in table_text(app))
        await pilot.press("V")
        await wait_for(pilot, lambda: len(app.state.index) == 0, "reverted: no longer ~modified")
        flow = app.state.load_flow(twin)
        assert flow.request.path == "/v1/users?page=1" and not flow.modified_by


async def test_an_edit_saved_in_the_file_is_found_and_reverted_later(tmp_path: Path, no_editor):
    """Edited in one run (recorded in the session), found by ``export --filter ~modified``,
    reverted in the next run from the originals the record keeps."""
    from inspector.config import Config
    from inspector.tui.session import open_live

    path = tmp_path / "s.db"
    session = open_live(Config(listen_port=0, confdir=tmp_path / "conf", session=path))
    build_flows = sample_flows()
    for flow in build_flows:
        session.record(flow)
    session.store.flush()
    app = InspectorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.state.index) == 13 and app.loaded, "loaded")
        await pilot.press("g", "e")
        await edit_in_screen(pilot, app, "page=1", "page=5")
        edited_id = app.state.index.row_at(0).id
        await wait_for(pilot, lambda: session.store.count("~modified") == 1, "recorded")
    session.close()
    har = subprocess.run(
        [sys.executable, "-m", "inspector", "export", str(path), "--format", "har",
         "--filter", "~modified"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    entries = json.loads(har.stdout)["log"]["entries"]
    assert [e["request"]["url"][-6:] for e in entries] == ["page=5"]
    assert entries[0]["_original"]["request"]["url"].endswith("page=1")
    assert entries[0]["_original"]["modifiedBy"] == [UI_EDIT]
    session = open_live(Config(listen_port=0, confdir=tmp_path / "conf", session=path))
    app = InspectorApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.loaded and len(app.state.index) == 13, "loaded")
        assert app.state.index.rows[edited_id].modified
        app.screen.select_flow(edited_id)
        await pilot.press("U", "V")  # nothing marked: V reverts the current flow
        await wait_for(pilot, lambda: not app.state.index.rows[edited_id].modified, "reverted")
        await wait_for(pilot, lambda: session.store.count("~modified") == 0, "recorded")
        assert session.store.get(edited_id).request.path == "/v1/users?page=1"
        assert isinstance(app.screen, FlowListScreen)
    session.close()
