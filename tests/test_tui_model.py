"""The TUI's pure parts: the flow index behind the list, and held-message editing."""

from __future__ import annotations

import pytest

from inspector.flow import FlowBody, FlowResponse
from inspector.tui.editing import EditError, apply_text, message_text
from inspector.tui.flow_index import FlowIndex
from inspector.tui.rows import FlowRow
from inspector.tui.widgets.flow_table import cell, fit
from tests.tui_fixtures import _flow, numbered_flow, sample_flows


def ids(index: FlowIndex) -> list[str]:
    return [index.row_at(i).path for i in range(len(index))]


def test_index_upsert_keeps_capture_order_and_updates_rows():
    index = FlowIndex()
    a, b = numbered_flow(1), numbered_flow(2)
    pending = a.response
    a.response = None
    assert index.upsert(a, None) is True
    assert index.row_at(0).status is None
    a.response = pending
    assert index.upsert(a, None) is False
    assert index.upsert(b, None) is True
    assert ids(index) == ["/items/1?q=1", "/items/2?q=2"]
    assert index.row_at(0).status == a.response.status_code


def test_index_filter_sort_and_remove():
    """Without a store every row is live: the filter's verdicts and Python sorts show them."""
    index = FlowIndex()
    flows = [numbered_flow(n) for n in range(10)]
    for flow in flows:
        index.upsert(flow, None)
    index.set_verdicts({f.id: f.response.status_code == 404 for f in flows})
    assert index.start("~c 404") is None
    assert [index.row_at(i).status for i in range(len(index))] == [404]
    # a live flow judged by the filter on arrival
    extra = numbered_flow(11)  # 404 as well
    index.upsert(extra, True)
    assert len(index) == 2
    index.upsert(numbered_flow(12), False)
    assert len(index) == 2 and len(index.rows) == 12
    index.set_verdicts({})
    index.set_sort("status", reverse=True)
    assert index.start(None) is None
    statuses = [index.row_at(i).status for i in range(len(index))]
    assert statuses == sorted(statuses, reverse=True)
    assert index.sorted
    index.remove([flows[0].id, extra.id])
    assert len(index) == 10 and flows[0].id not in index.rows
    with pytest.raises(KeyError):
        index.set_sort("nonsense")


def test_rows_and_cells_show_errors_replays_and_marks():
    flows = {f.request.path: f for f in sample_flows()}
    failed = FlowRow.from_flow(flows["/slow"], 0)
    assert cell(failed, "status")[0] == "ConnectionRefusedError"
    assert cell(failed, "size")[0] == ""
    replay = FlowRow.from_flow(flows["/v1/users?page=1"], 1)
    assert cell(replay, "")[0] in ("", "↻")
    marked = FlowRow.from_flow(flows["/v1/login"], 2)
    assert cell(marked, "")[0] == "●"
    assert cell(marked, "status")[0] == "201 Created"
    assert cell(marked, "duration")[0] == "42 ms"
    marked.held = True
    assert cell(marked, "status")[0] == "⏸ held"
    assert fit("abcdef", 4) == "abc…" and fit("ab", 4, right=True) == "  ab"


def test_request_text_round_trips_unchanged():
    flow = sample_flows()[1]  # POST with a JSON body
    before = (list(flow.request.headers), flow.request.body)
    text = message_text(flow, "request")
    assert text.startswith("POST https://api.example.com/v1/login HTTP/1.1\nHost: api.example.com")
    apply_text(flow, text, "request")
    assert (flow.request.headers, flow.request.body) == before
    assert flow.intercepted


def test_request_edit_changes_url_headers_body_and_fixes_length():
    flow = sample_flows()[1]
    flow.response = None  # held before the request went upstream
    text = message_text(flow)
    text = text.replace("POST https://api.example.com/v1/login", "PUT http://other.test:8080/x?y=1")
    text = text.replace('"password":"hunter2"', '"password":"longer-secret"')
    text = text.replace("Accept: */*", "Accept: */*\nX-Debug: 1")
    apply_text(flow, text)
    req = flow.request
    assert (req.method, req.scheme, req.host, req.port, req.path) == (
        "PUT",
        "http",
        "other.test",
        8080,
        "/x?y=1",
    )
    assert (b"X-Debug", b"1") in req.headers
    assert (b"Host", b"other.test:8080") in req.headers  # followed the URL
    assert req.body.data == b'{"user":"ada","password":"longer-secret"}'
    assert (b"Content-Length", str(len(req.body.data)).encode()) in req.headers


def test_binary_bodies_are_kept_behind_a_marker():
    flow = _flow(1, "POST", "h.test", "/up", req_body=bytes(range(256)), status=None)
    text = message_text(flow)
    assert "<binary body of 256 bytes: kept unchanged" in text
    apply_text(flow, text.replace("/up", "/up2"))
    assert flow.request.path == "/up2" and flow.request.body.data == bytes(range(256))


def test_response_edit():
    flow = _flow(1, "GET", "h.test", "/", body=b"old")
    text = message_text(flow)
    assert text.startswith("HTTP/1.1 200 OK\nContent-Type: application/json")
    apply_text(flow, text.replace("200 OK", "418 I'm a teapot").replace("\n\nold", "\n\nnew body"))
    resp = flow.response
    assert (resp.status_code, resp.reason, resp.body.data) == (418, "I'm a teapot", b"new body")
    assert (b"Content-Length", b"8") in resp.headers


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: the start line is missing"),
        ("GET\nHost: x\n\n", "line 1: expected 'METHOD URL HTTP/1.1'"),
        ("GET ftp://x/ HTTP/1.1\n\n", "the URL must be http(s)://host/path or /path"),
        ("GET /a HTTP/1.1\nno colon here\n\n", "line 2: expected 'Name: value'"),
        ("GET /a HTTP/1.1\nBad Name: v\n\n", "line 2: expected 'Name: value'"),
        ("GET http://x:99999/ HTTP/1.1\n\n", "bad port"),
    ],
)
def test_bad_edits_say_which_line(text, message):
    flow = _flow(1, "GET", "h.test", "/", status=None)
    with pytest.raises(EditError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_text(flow, text)
    assert flow.request.path == "/"  # nothing applied


def test_bad_response_start_line():
    flow = _flow(1, "GET", "h.test", "/")
    flow.response = FlowResponse(200, "OK", body=FlowBody(b""))
    with pytest.raises(EditError, match=r"expected 'HTTP/1\.1 CODE REASON'"):
        apply_text(flow, "HTTP/1.1 OK\n\n")


# --- filtering list rows in memory: the same verdicts as on whole flows --------------------

ROW_EXPRS = [
    "~m get",
    "~m POST | ~m DELETE",
    "~d example",
    "~d '^api\\.'",
    "~d '::1'",
    "~d Kelvin",
    "~u /v1/",
    "~u ':8443/'",
    "~u 'users\\?page=[0-9]$'",
    "~u cafe",
    "~u 'CAF\u00c9'",
    "~c 2xx",
    "~c 404",
    "!~c 5xx & ~s",
    "~e",
    "~q",
    "~marked",
    "~replay",
    "v1 !(~c 404 | ~m DELETE)",
    "~d host1 & ~m PUT",
]


def _row_flows() -> list:
    flows = sample_flows()
    flows += [numbered_flow(n) for n in range(20, 30)]
    flows += [
        _flow(40, "GET", "::1", "/v6", scheme="http", port=8080),
        _flow(41, "CONNECT", "tunnel.example.com", "", port=8443, status=None),
        _flow(42, "GET", "api.example.com", "/caf\u00e9/\u212aelvin", port=8443),
        _flow(43, "PUT", "\u212aelvin.example.com", "/k", status=None),
    ]
    flows[-3].request.path = ""
    return flows


def test_row_tests_give_the_flow_filters_verdicts(tmp_path):
    """Rows made live (from flows) and loaded (from the store) filter like the flows."""
    from inspector.filters import parse
    from inspector.store import Store

    flows = _row_flows()
    store = Store(tmp_path / "s.db")
    for flow in flows:
        store.put(flow)
    store.flush()
    loaded = {s.id: FlowRow.from_summary(s) for s in store.summary_rows(0, 1000)}
    store.close()
    assert len(loaded) == len(flows)
    for expr in ROW_EXPRS:
        check = parse(expr)
        test = check.row_test()
        assert test is not None, expr
        expected = {f.id for f in flows if check(f)}
        live = {f.id for n, f in enumerate(flows) if test(FlowRow.from_flow(f, n))}
        assert live == expected, expr
        assert {i for i, row in loaded.items() if test(row)} == expected, expr
    assert any(parse(e)(f) for e in ROW_EXPRS for f in flows[-4:])  # the odd ones count


@pytest.mark.parametrize("expr", ["~b Ada", "~h nginx", "~t json", "~c 2xx & ~hq curl", "!~bs x"])
def test_filters_on_headers_and_bodies_have_no_row_test(expr):
    from inspector.filters import parse

    assert parse(expr).row_test() is None


def test_long_filter_chains_test_rows_like_flows():
    from inspector.filters import parse

    flows = [numbered_flow(n) for n in range(40)]
    rows = [FlowRow.from_flow(f, n) for n, f in enumerate(flows)]
    for expr in [" ".join(["~s"] * 2000 + ["~m put"]), " | ".join(["~e"] * 2000 + ["~c 404"])]:
        check = parse(expr)
        test = check.row_test()
        assert [test(r) for r in rows] == [check(f) for f in flows]
        assert any(check(f) for f in flows)


def test_flow_state_needs_no_textual():
    """The UI's model imports without Textual (it is testable, and usable, alone)."""
    import subprocess
    import sys

    code = (
        "import sys, inspector.tui.state; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_flow_state_drains_events_and_filters_without_an_app(tmp_path):
    from inspector.bus import EventKind, FlowEvent
    from inspector.store import Store
    from inspector.tui.session import Session
    from inspector.tui.state import FlowState
    from inspector.tui.widgets.status_bar import SourceInfo

    store = Store(tmp_path / "s.db")
    state = FlowState(Session(store=store, info=SourceInfo(session="s.db")))
    flows = [numbered_flow(i) for i in range(4)]
    flows[3].response.status_code = 503
    for flow in flows:
        state.queue.append(FlowEvent(EventKind.RESPONSE, flow))
    state.apply_events(len(state.queue))
    assert state.counts.exchanges == 4 and not state.queue
    assert state.set_filter("~c 503") and state.start_query() is None
    assert [state.index.row_at(i).id for i in range(len(state.index))] == [flows[3].id]
    assert state.toggle_filter() and state.start_query() is None
    assert len(state.index) == 4
    store.close()
