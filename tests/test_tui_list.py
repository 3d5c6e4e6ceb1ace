"""The flow list over the store: row ids in memory, rows read by page, filters and sorts
in SQL, live rows joining the stored ones in arrival order (inspector/tui/flow_index.py)."""

from __future__ import annotations

from array import array
from pathlib import Path

import pytest

from inspector.bus import EventKind, FlowEvent
from inspector.filters import parse
from inspector.flow import Flow
from inspector.store import Store
from inspector.tui import flow_index
from inspector.tui.app import InspectorApp
from inspector.tui.rows import SORT_KEYS, FlowRow
from inspector.tui.session import Session, open_saved
from inspector.tui.state import FlowState
from inspector.tui.widgets.flow_table import FlowTable
from inspector.tui.widgets.status_bar import SourceInfo
from tests.tui_fixtures import build_session, numbered_flow, wait_for

EXPRS = [None, "~c 404", "~m PUT & ~d host1", "~b 1 | ~c 5xx", "!~s", "~u q=3"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def numbered(count: int, start: int = 0) -> list[Flow]:
    """Numbered flows, every tenth without a response (an error), as the benchmark's."""
    flows = [numbered_flow(n) for n in range(start, start + count)]
    for flow in flows[::10]:
        flow.response = None
    return flows


def shown(state: FlowState) -> list[str]:
    index = state.index
    return [index.row_at(i).id for i in range(len(index))]


def saved_state(path: Path, flows: list[Flow]) -> FlowState:
    build_session(path, flows)
    state = FlowState(open_saved(path))
    state.load(state.session.all_seqs())
    return state


def test_stored_rows_are_read_a_page_at_a_time_into_a_bounded_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(flow_index, "CACHE_ROWS", 100)
    flows = numbered(400)
    state = saved_state(tmp_path / "s.db", flows)
    index = state.index
    assert isinstance(index.stored, array) and len(index.stored) == len(index) == 400
    assert not index.live and len(index.rows) == 400
    assert shown(state) == [f.id for f in flows]
    assert len(index._cache) <= 100 + flow_index.PAGE  # not one row per flow
    assert index.row_at(400) is None and index.position(flows[123].id) == 123
    assert index.rows[flows[5].id].path == flows[5].request.path
    assert state.counts.exchanges == 400
    state.session.close()


@pytest.mark.parametrize("key", sorted(SORT_KEYS))
def test_sql_filters_and_sorts_show_what_the_python_filter_and_sort_show(tmp_path, key):
    flows = numbered(120)
    state = saved_state(tmp_path / "s.db", flows)
    rows = {f.id: FlowRow.from_flow(f, n) for n, f in enumerate(flows)}
    sort_key = SORT_KEYS[key]
    for reverse in (False, True):
        state.index.set_sort(key, reverse)
        for expr in EXPRS:
            state.set_filter(expr)
            assert state.start_query() is None  # a small session: answered at once
            ids = shown(state)
            check = parse(expr) if expr else (lambda f: True)
            assert set(ids) == {f.id for f in flows if check(f)}, (key, reverse, expr)
            keys = [sort_key(rows[i]) for i in ids]
            assert keys == sorted(keys, reverse=reverse), (key, reverse, expr)
    state.session.close()


def writable_state(path: Path) -> tuple[FlowState, Store]:
    store = Store(path)
    state = FlowState(Session(store=store, info=SourceInfo(session=str(path))))
    state.load(store.all_seqs())
    return state, store


def arrive(state: FlowState, store: Store, flows: list[Flow], *, stored: bool = True) -> None:
    """Flows as the proxy reports them: events on the queue, the finished ones stored."""
    for flow in flows:
        state.queue.append(FlowEvent(EventKind.RESPONSE, flow))
        if stored and flow.finished:
            store.put(flow)
    store.flush()
    state.apply_events(len(state.queue))


def test_a_flow_in_flight_keeps_its_place_when_later_ones_are_stored(tmp_path):
    state, store = writable_state(tmp_path / "s.db")
    arrive(state, store, numbered(3))
    assert state.absorb() and not state.index.live
    slow, quick = numbered_flow(3), numbered_flow(4)
    done, end = slow.response, slow.timings.end
    slow.response = slow.timings.end = None  # in flight: the store has not got it
    arrive(state, store, [slow, quick])
    assert not slow.finished
    assert state.absorb()  # the quick one is stored: the slow one is pinned before it
    assert shown(state)[-2:] == [slow.id, quick.id] and state.index.pinned
    assert state.index.position(slow.id) == 3 and state.counts.exchanges == 5
    slow.response, slow.timings.end = done, end
    arrive(state, store, [slow])
    assert state.absorb() and not state.index.pinned and not state.index.live
    assert shown(state)[-2:] == [slow.id, quick.id]
    assert state.index.row_at(3).status == done.status_code
    assert state.counts.exchanges == 5
    store.close()


def test_a_query_in_the_background_keeps_the_flows_stored_meanwhile(tmp_path, monkeypatch):
    monkeypatch.setattr(flow_index, "SYNC_ROWS", 10)
    state, store = writable_state(tmp_path / "s.db")
    first = numbered(50)
    arrive(state, store, first)
    state.absorb()
    state.set_filter("~c 404")
    query = state.start_query()
    assert query is not None and state.filter_pending  # the store is asked in a worker
    more = numbered(20, start=50)
    arrive(state, store, more)  # judged by the filter as they arrive...
    state.absorb()  # ...and stored while the query runs
    seqs = state.session.list_seqs(query, lambda: False)
    assert state.query_done(query, seqs) and not state.filter_pending
    check = parse("~c 404")
    assert shown(state) == [f.id for f in first + more if check(f)]
    store.close()


def test_marks_of_a_read_only_session_show_in_marks_only_and_filters(tmp_path):
    flows = numbered(30)
    state = saved_state(tmp_path / "s.db", flows)
    picked = [flows[3].id, flows[17].id]
    state.mark(picked, True)
    assert state.index.row_at(3).marked
    assert state.index.marked_ids(shown_only=False) == picked
    state.index.only_marked = True
    assert state.start_query() is None and shown(state) == picked
    state.index.only_marked = False
    state.set_filter("~marked | ~c 201")
    state.start_query()
    expected = [f.id for f in flows if f.id in picked or parse("~c 201")(f)]
    assert shown(state) == expected
    assert len(state.hidden_ids()) == 30 - len(expected)
    state.mark([flows[3].id], False)
    state.start_query()
    assert flows[3].id not in shown(state)
    state.session.close()


def test_deleting_flows_leaves_no_gap_in_the_list(tmp_path):
    state, store = writable_state(tmp_path / "s.db")
    flows = numbered(40)
    arrive(state, store, flows)
    state.absorb()
    gone = [flows[0].id, flows[7].id, flows[39].id]
    state.forget(gone)
    store.delete(gone)
    assert shown(state) == [f.id for f in flows if f.id not in gone]
    assert state.index.total == 37
    # a reopened list (with gaps in the row ids) reads the same
    store.close()
    again = FlowState(open_saved(tmp_path / "s.db"))
    again.load(again.session.all_seqs())
    assert shown(again) == shown(state)
    again.session.close()


@pytest.mark.anyio
async def test_show_filters_and_sorts_a_big_session_in_the_background(tmp_path, monkeypatch):
    monkeypatch.setattr(flow_index, "SYNC_ROWS", 10)
    flows = numbered(200)
    build_session(tmp_path / "s.db", flows)
    app = InspectorApp(open_saved(tmp_path / "s.db"))
    async with app.run_test(size=(150, 40)) as pilot:
        await wait_for(pilot, lambda: app.loaded and len(app.state.index) == 200, "loaded")
        table = app.screen.query_one(FlowTable)
        assert table.cursor == 199  # following the newest
        app.apply_filter("~c 404")
        await wait_for(pilot, lambda: not app.state.filter_pending, "the filter")
        expected = [f.id for f in flows if parse("~c 404")(f)]
        assert shown(app.state) == expected
        assert table.virtual_size.height == len(expected) + 1
        await pilot.press("v")  # reversed: a query again
        await wait_for(pilot, lambda: not app.state.filter_pending, "the reversed list")
        assert shown(app.state) == expected[::-1]
        await pilot.press("g")
        assert table.cursor_row.id == expected[-1]


def test_a_stored_flow_changed_in_the_ui_shows_and_counts_as_modified(tmp_path):
    flows = numbered(6)
    state = saved_state(tmp_path / "s.db", flows)
    assert state.counts.modified == 0
    edited = flows[2]
    edited.modified_by = ["edited in the UI"]
    state.add_flows([edited])  # what the app does after an edit
    assert state.index.row_at(2).modified and state.counts.modified == 1
    assert state.counts.exchanges == 6 and shown(state) == [f.id for f in flows]
    edited.modified_by = []  # reverted
    state.add_flows([edited])
    assert not state.index.row_at(2).modified and state.counts.modified == 0
    state.session.close()


def test_a_full_collection_waits_while_a_list_query_runs_but_not_for_long():
    from inspector.tui import collector as collector_module
    from inspector.tui.collector import Collector

    now = [1000.0]
    collector = Collector(clock=lambda: now[0])
    collector.start()
    try:
        now[0] += collector_module.MIN_INTERVAL
        assert not collector.tick(0, busy=True)  # the user waits for a filter's answer
        now[0] += collector_module.MAX_DEFER / 2
        assert not collector.tick(0, busy=True)
        assert collector.tick(0)  # answered and painted: the collection runs
        now[0] += collector_module.MIN_INTERVAL + collector_module.MAX_DEFER
        assert collector.tick(0, busy=True)  # a query never ends: not put off forever
    finally:
        collector.stop()


def test_a_list_query_given_up_answers_nothing(tmp_path):
    flows = numbered(50)
    build_session(tmp_path / "s.db", flows)
    store = Store(tmp_path / "s.db", readonly=True)
    assert store.list_seqs("~c 404", cancelled=lambda: True) is None
    calls = []

    def cancelled() -> bool:  # given up while SQLite works (its progress handler asks)
        calls.append(1)
        return len(calls) > 1

    from inspector.store import reads

    steps, reads.PROGRESS_STEPS = reads.PROGRESS_STEPS, 10
    try:
        assert store.list_seqs("~b 1", sort="path", cancelled=cancelled) is None
    finally:
        reads.PROGRESS_STEPS = steps
    check = parse("~c 404")  # row ids count from 1 in capture order
    assert list(store.list_seqs("~c 404")) == [n + 1 for n, f in enumerate(flows) if check(f)]
    store.close()


def test_a_read_only_session_indexes_what_is_left_for_search_ahead_of_it(tmp_path):
    recorder = Store(tmp_path / "s.db")  # still recording: nothing indexed yet
    flows = numbered(40)
    for flow in flows:
        recorder.put(flow)
    recorder.flush()
    reader = Store(tmp_path / "s.db", readonly=True)
    try:
        reader.prepare_search()  # the UI does it in a worker once the list is loaded
        conn = reader._readers._search_conn
        assert conn is not None  # every search reads through this one connection
        temp = {name for (name,) in conn.execute("SELECT name FROM temp.sqlite_master")}
        if "backlog_state" in temp:  # (unless the recorder indexed everything meanwhile)
            top = conn.execute("SELECT top FROM temp.backlog_state").fetchone()
            assert top == (40,)  # built up to the last flow
        assert reader.search("17") == [flows[17].id]
        assert reader._readers._search_conn is conn
    finally:
        reader.close()
        recorder.close()
    assert reader._readers._search_conn is None
