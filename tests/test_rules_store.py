"""What a rule or an addon changed, through the session file: originals, ~modified, migration."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from inspector.addons.host import AddonHost
from inspector.changes import Changes
from inspector.filters import parse
from inspector.flow import Flow, FlowBody, FlowError, FlowRequest, FlowResponse, Phase
from inspector.rules import RuleSet
from inspector.store import SCHEMA_VERSION, Store, flow_from_record, flow_to_record
from inspector.store.rows import flow_rows


def changed_flow(secret: bytes = b"password=hunter2") -> Flow:
    rules = RuleSet.from_options(
        modify_body=["/password=\\w+/password=***"], modify_headers=["/~s/Server/"]
    )
    changes = Changes(rules, AddonHost([]), body_limit=4096)
    req = FlowRequest(
        "POST", "http", "example.com", 80, "/login",
        headers=[(b"Host", b"example.com"), (b"Content-Length", str(len(secret)).encode())],
        body=FlowBody(secret, len(secret)),
    )  # fmt: skip
    flow = Flow(req)
    asyncio.run(changes.request(flow))
    flow.response = FlowResponse(200, "OK", headers=[(b"Server", b"x/1")], body=FlowBody(b"ok", 2))
    asyncio.run(changes.response(flow))
    flow.comment = "checked"
    flow.timings.end = flow.timings.start + 0.01
    return flow


def plain_flow() -> Flow:
    flow = Flow(FlowRequest("GET", "http", "example.com", 80, "/", headers=[(b"Host", b"h")]))
    flow.response = FlowResponse(200, "OK", body=FlowBody(b"password=hunter2", 16))
    flow.timings.end = flow.timings.start + 0.01
    return flow


def test_a_changed_flow_round_trips_with_its_originals(tmp_path: Path) -> None:
    flow, plain = changed_flow(), plain_flow()
    with Store(tmp_path / "s.db") as store:
        store.put(flow)
        store.put(plain)
        store.flush()
        back = store.get(flow.id)
        assert back is not None
        assert (
            back.modified_by
            == flow.modified_by
            == [
                "--modify-body /password=\\w+/password=***",
                "--modify-headers /~s/Server/",
            ]
        )
        assert back.request.body.data == b"password=***"
        assert back.original_request is not None
        assert back.original_request.body.data == b"password=hunter2"
        assert back.original_response is not None
        assert back.original_response.headers == [(b"Server", b"x/1")]
        assert back.response is not None and back.response.headers == []
        assert back.comment == "checked"
        # ~modified in SQL and in Python agree; ~b looks at what was sent, not the originals
        assert [f.id for f in store.iter_flows("~modified")] == [flow.id]
        assert parse("~modified")(flow) and not parse("~modified")(plain)
        assert [f.id for f in store.iter_flows("~b hunter2")] == [plain.id]
        summaries = {s.id: s.modified for s in store.summaries(0, 10)}
        assert summaries == {flow.id: True, plain.id: False}


def test_a_version_2_session_opens_and_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with Store(path) as store:
        store.put(plain_flow())
        store.flush()
    with sqlite3.connect(path) as conn:  # the layout before rules and addons
        conn.execute("ALTER TABLE flows DROP COLUMN modified")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with Store(path, readonly=True) as reader:  # a migrated copy; the file stays as it is
        assert reader.count("~modified") == 0 and reader.count() == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "2",
        )
    flow = changed_flow()
    with Store(path) as store:
        store.put(flow)
        store.flush()
        assert store.count("~modified") == 1 and store.count() == 2
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)


def test_an_original_with_the_same_body_is_not_stored_twice(tmp_path: Path) -> None:
    flow = plain_flow()
    body = flow.response.body  # type: ignore[union-attr]
    flow.original_response = FlowResponse(200, "OK", headers=[(b"Server", b"x")], body=body)
    flow.modified_by = ["--modify-headers /~s/Server/"]
    path = tmp_path / "s.db"
    with Store(path) as store:
        store.put(flow)
        store.flush()
        back = store.get(flow.id)
    assert back is not None and back.original_response is not None
    assert back.original_response.body.data == b"password=hunter2"
    with sqlite3.connect(path) as conn:
        parts = [p for (p,) in conn.execute("SELECT part FROM bodies ORDER BY part")]
    assert parts == [1]  # the response body once (the request's is empty)


@pytest.mark.parametrize(
    ("original", "current"),
    [
        ([(b"A", b"1"), (b"B", b"2"), (b"C", b"3")], [(b"A", b"1"), (b"C", b"3"), (b"X", b"9")]),
        ([(b"Set-Cookie", b"a"), (b"S", b"1"), (b"set-cookie", b"b")], [(b"S", b"1")]),
        ([(b"A", b"1"), (b"B", b"2")], [(b"B", b"2"), (b"A", b"1")]),
        ([(b"Host", b"h")], [(b"host", b"h")]),  # only the case changed
        ([], [(b"X", b"1"), (b"X", b"2")]),
    ],
)
def test_originals_round_trip_through_the_record(original: list, current: list) -> None:
    flow = plain_flow()
    flow.request.headers = list(current)
    flow.original_request = FlowRequest("GET", "http", "old.test", 80, "/o", headers=list(original))
    flow.modified_by = ["addon.py:request"]
    rec = flow_to_record(flow)
    back = flow_from_record(json.loads(json.dumps(rec)), False, {})
    assert back.original_request is not None
    assert back.original_request.headers == original
    assert back.original_request.host == "old.test" and back.request.headers == current


def _variants() -> list[Flow]:
    """Flows whose records differ in their last keys: none, labels alone, originals
    alone, both, both with an error, a comment and labels that are not ASCII."""
    changed = changed_flow()
    labels_only = plain_flow()
    labels_only.modified_by = ["addon.py:request"]
    originals_only = plain_flow()
    originals_only.original_response = FlowResponse(500, "Error", body=FlowBody(b"x", 1))
    odd = changed_flow()
    odd.modified_by.append("--modify-headers /~q/X-Name/Zoë")
    odd.original_request.method = "PUT"  # type: ignore[union-attr]
    odd.error = FlowError("ValueError", "bad", Phase.ADDON, 1.5)
    odd.comment = "ünïcode"
    moved = changed_flow()  # every field of the original differs, and it has trailers
    orig = moved.original_request
    assert orig is not None
    orig.scheme, orig.host, orig.port, orig.path = "https", "old.test", 8443, '/o?a="1"'
    orig.timestamp += 0.125
    orig.headers += [(b"X-Odd", b'q"uo\\te \x01 caf\xe9'), (b"X-Odd", b"")]
    orig.trailers = [(b"X-Sum", b"1")]
    no_response = changed_flow()
    no_response.response = None  # an original response told in full
    return [plain_flow(), changed, labels_only, originals_only, odd, moved, no_response, moved]


def test_the_stored_record_is_the_flow_record_as_compact_json() -> None:
    for flow in _variants():
        expected = json.dumps(flow_to_record(flow), separators=(",", ":"))
        assert flow_rows(flow).record == expected
        again = flow_from_record(json.loads(flow_rows(flow).record), False, {})
        assert again.modified_by == flow.modified_by
