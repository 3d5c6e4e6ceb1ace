"""The app's drain of bus events: one row update per flow per batch, floods repainted later."""

from __future__ import annotations

import asyncio

import pytest

from inspector.bus import Bus, EventKind, FlowEvent
from inspector.flow import FlowError, Phase
from inspector.tui.app import BUSY_BATCH
from inspector.tui.widgets.flow_table import FlowTable
from inspector.tui.widgets.status_bar import HeaderBar
from tests.tui_fixtures import bus_app, numbered_flow, wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def publish(bus: Bus, kinds: tuple[EventKind, ...], flow) -> None:
    for kind in kinds:
        bus.publish(FlowEvent(kind, flow))


LIFE = (EventKind.STARTED, EventKind.REQUEST, EventKind.RESPONSE_HEADERS, EventKind.RESPONSE)


async def test_one_batch_counts_each_flow_and_error_once_and_honours_removal(tmp_path):
    app, bus, store = bus_app(tmp_path)
    async with app.run_test(size=(150, 40)) as pilot:
        await wait_for(pilot, lambda: app.loaded, "the empty session to load")
        ok, failed, gone = numbered_flow(1), numbered_flow(2), numbered_flow(3)
        failed.response = None
        failed.error = FlowError("TimeoutError", "read timed out", Phase.STATUS_LINE, 1.0)
        # All in one batch: the app's thread publishes, so no drain runs in between.
        publish(bus, LIFE, ok)
        publish(bus, (EventKind.STARTED, EventKind.ERROR, EventKind.ERROR), failed)
        publish(bus, (EventKind.STARTED, EventKind.REQUEST, EventKind.REMOVED), gone)
        await wait_for(pilot, lambda: len(app.state.index) == 2, "the batch to be applied")
        assert [app.state.index.row_at(i).id for i in range(2)] == [ok.id, failed.id]
        assert app.state.index.row_at(0).status == ok.response.status_code
        assert app.state.index.row_at(1).error == "TimeoutError"
        assert app.state.errors == 1 and [e.flow_id for e in app.state.error_events] == [failed.id]
        header = app.screen.query_one(HeaderBar)
        await wait_for(pilot, lambda: header.counts.exchanges == 2, "the header's counts")
        assert header.counts.errors == 1
    store.close()


async def test_a_flood_is_shown_whole_after_it_ends(tmp_path):
    app, bus, store = bus_app(tmp_path)
    async with app.run_test(size=(150, 40)) as pilot:
        await wait_for(pilot, lambda: app.loaded, "the empty session to load")
        flows = [numbered_flow(n) for n in range(3 * BUSY_BATCH)]
        for chunk in range(3):  # three busy batches, a drain between each
            for flow in flows[chunk * BUSY_BATCH : (chunk + 1) * BUSY_BATCH]:
                publish(bus, LIFE, flow)
            await asyncio.sleep(app.drain_interval * 1.5)
        table = app.screen.query_one(FlowTable)
        header = app.screen.query_one(HeaderBar)
        await wait_for(pilot, lambda: header.counts.exchanges == len(flows), "the last repaint")
        assert len(app.state.index) == len(flows)
        assert table.follow and table.cursor == len(flows) - 1
        assert table.cursor_row.id == flows[-1].id
    store.close()


async def test_filters_on_list_rows_apply_at_once_and_enter_does_not_redo_them(tmp_path):
    app, bus, store = bus_app(tmp_path)
    async with app.run_test(size=(150, 40)) as pilot:
        await wait_for(pilot, lambda: app.loaded, "the empty session to load")
        flows = [numbered_flow(n) for n in range(30)]
        for flow in flows:
            publish(bus, LIFE, flow)
        await wait_for(pilot, lambda: len(app.state.index) == len(flows), "the flows")
        app.apply_filter("~c 404 | ~m put")  # a small session: answered at once
        assert not app.state.filter_pending
        expected = [
            f.id for f in flows if f.response.status_code == 404 or f.request.method == "PUT"
        ]
        assert [app.state.index.row_at(i).id for i in range(len(app.state.index))] == expected
        view = (app.state.index.shown_stored, app.state.index.live_shown)
        app.apply_filter(" ~c 404 | ~m put ")  # enter after the live change: nothing to redo
        assert (app.state.index.shown_stored, app.state.index.live_shown) == view
        assert app.state.index.live_shown is view[1]
        app.apply_filter("~b nothing-has-this")  # a body filter asks the store
        await wait_for(pilot, lambda: not app.state.filter_pending, "the store query")
        assert len(app.state.index) == 0
        app.apply_filter(None)
        assert len(app.state.index) == len(flows)
    store.close()
