"""What keeps the list fast under load: paced garbage collection, one-pass filters,
reused row lines and resizes without a layout (the speed itself is bench/bench_tui.py's)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from inspector.bus import EventKind, FlowEvent
from inspector.tui import collector as collector_module
from inspector.tui.collector import Collector
from inspector.tui.widgets.flow_table import FlowTable
from tests.tui_fixtures import bus_app, numbered_flow, wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Cycle:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def full_collections_during(action) -> int:
    """How many generation-2 collections ran while ``action()`` ran."""
    seen: list[int] = []

    def callback(phase: str, info: dict) -> None:
        if phase == "stop" and info["generation"] == 2:
            seen.append(1)

    gc.callbacks.append(callback)
    try:
        action()
    finally:
        gc.callbacks.remove(callback)
    return len(seen)


# --- the collector ----------------------------------------------------------------------


def test_collector_takes_over_the_thresholds_and_gives_them_back():
    saved = gc.get_threshold()
    clock = Clock()
    collector = Collector(clock=clock)
    collector.start()
    try:
        idle = collector_module.thresholds(collector_module.IDLE_THRESHOLDS)
        active = collector_module.thresholds(collector_module.ACTIVE_THRESHOLDS)
        assert gc.get_threshold() == idle
        assert not collector.active
        collector.input_seen()  # small young collections while keys are pressed
        assert collector.active and gc.get_threshold() == active
        clock.now += collector_module.ACTIVE
        collector.tick(0)
        assert not collector.active and gc.get_threshold() == idle
        # automatic full collections wait about as many allocations either way
        assert idle[0] * idle[1] * idle[2] == pytest.approx(active[0] * active[1] * active[2], 0.01)
    finally:
        collector.stop()
    assert gc.get_threshold() == saved


def test_tick_runs_a_full_collection_once_one_is_due():
    clock = Clock()
    collector = Collector(clock=clock)
    collector.start()
    try:
        garbage = Cycle()
        gone = weakref.ref(garbage)
        gc.collect()  # alive: now in the oldest generation, as long-lived lines are
        del garbage  # cyclic garbage only a full collection frees
        assert full_collections_during(lambda: collector.tick(0)) == 0  # not due yet
        assert gone() is not None
        clock.now += collector_module.MIN_INTERVAL
        assert full_collections_during(lambda: collector.tick(0)) == 1
        assert gone() is None
        assert collector.collections == 1
        assert not collector.tick(0)  # the next one waits its interval again
    finally:
        collector.stop()


def test_tick_puts_a_collection_off_while_keys_are_pressed_but_not_for_long():
    clock = Clock()
    collector = Collector(clock=clock)
    collector.start()
    try:
        clock.now += collector_module.MIN_INTERVAL
        collector.input_seen()
        assert not collector.tick(0)  # a key was just pressed: more may follow
        clock.now += 2 * collector.quiet
        assert collector.tick(0)  # a pause in the typing
        clock.now += collector_module.MIN_INTERVAL
        for _ in range(3):  # keys keep coming...
            collector.input_seen()
            assert not collector.tick(0)
            clock.now += collector_module.MAX_DEFER / 3
        clock.now += collector.quiet / 2
        collector.input_seen()
        assert collector.tick(0)  # ...but the collection is not put off forever
    finally:
        collector.stop()


def test_rows_are_frozen_after_a_collection_and_thawed_when_the_app_stops():
    if gc.get_freeze_count():
        pytest.skip("something else in this process froze objects")
    clock = Clock()
    collector = Collector(clock=clock, freeze_every=100)
    collector.start()
    try:
        garbage = Cycle()
        gone = weakref.ref(garbage)
        del garbage
        clock.now += collector_module.MIN_INTERVAL
        assert collector.tick(50) and gc.get_freeze_count() == 0  # too few new rows
        clock.now += collector_module.MIN_INTERVAL
        assert collector.tick(150)
        assert gc.get_freeze_count() > 0
        assert gone() is None  # collected first: garbage is never frozen
    finally:
        collector.stop()
    assert gc.get_freeze_count() == 0


async def test_the_app_paces_full_collections_and_restores_the_thresholds(tmp_path: Path):
    saved = gc.get_threshold()
    app, _, store = bus_app(tmp_path)
    async with app.run_test(size=(150, 40)) as pilot:
        assert gc.get_threshold() == collector_module.thresholds(collector_module.IDLE_THRESHOLDS)
        await pilot.press("down")  # a key puts the next one off a little, no more
        await wait_for(pilot, lambda: app.collector.collections > 0, "a full collection")
    store.close()
    assert gc.get_threshold() == saved


# --- filters, rows and the table --------------------------------------------------------


def line_text(table: FlowTable, y: int) -> str:
    return "".join(segment.text for segment in table.render_line(y))


async def test_a_row_that_changes_is_drawn_again_and_the_scrollbar_follows_new_rows(tmp_path):
    app, bus, store = bus_app(tmp_path)
    async with app.run_test(size=(150, 30)) as pilot:
        await wait_for(pilot, lambda: app.loaded, "the empty session to load")
        flows = [numbered_flow(n) for n in range(80)]  # more rows than the screen shows
        pending = flows[0].response
        flows[0].response = None
        for flow in flows:
            bus.publish(FlowEvent(EventKind.STARTED, flow))
        table = app.screen.query_one(FlowTable)
        await wait_for(pilot, lambda: len(app.state.index) == len(flows), "the rows")
        table.follow = False
        table.cursor = 0
        await pilot.pause()
        assert "…" in line_text(table, 1)  # no response yet
        flows[0].response = pending
        bus.publish(FlowEvent(EventKind.RESPONSE, flows[0]))
        await wait_for(pilot, lambda: app.state.index.row_at(0).status is not None, "the response")
        assert "200 OK" in line_text(table, 1)  # the same row, drawn again
        table.cursor = 1  # the cursor's highlight moves: both rows drawn again
        await pilot.pause()
        scrollbar = table.vertical_scrollbar
        assert scrollbar.window_virtual_size == len(flows) + 1
        more = [numbered_flow(n) for n in range(80, 120)]
        for flow in more:
            bus.publish(FlowEvent(EventKind.RESPONSE, flow))
        total = len(flows) + len(more)
        await wait_for(pilot, lambda: table.virtual_size.height == total + 1, "the new rows")
        assert scrollbar.window_virtual_size == total + 1  # resized without a layout
        table.action_last()
        await pilot.pause()
        assert more[-1].request.path in line_text(table, table.scrollable_content_region.height - 1)
    store.close()
