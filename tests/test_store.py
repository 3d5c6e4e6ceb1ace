"""The session store: round trips, filters in SQL, search, errors, migration, crash safety."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from inspector import content
from inspector.filters import FilterError, parse
from inspector.flow import (
    Flow,
    FlowBody,
    FlowError,
    FlowRequest,
    FlowResponse,
    Phase,
    Timings,
    TLSInfo,
    WebSocketMessage,
    new_flow_id,
)
from inspector.store import SCHEMA_VERSION, Store, StoreError, flow_to_record

ROOT = Path(__file__).resolve().parent.parent


def make_flow(
    i: int = 0,
    *,
    method: str = "GET",
    host: str = "api.example.com",
    status: int | None = 200,
    resp_body: bytes = b'{"ok": true}',
    content_type: bytes = b"application/json",
    error: str | None = None,
) -> Flow:
    flow = Flow(
        FlowRequest(
            method,
            "https",
            host,
            443,
            f"/items/{i}?q=x",
            headers=[(b"Host", host.encode()), (b"User-Agent", b"test/1.0")],
            body=FlowBody(b"", 0),
            timestamp=1000.0 + i,
        ),
        timings=Timings(start=1000.0 + i, end=1000.0 + i + 0.005 * (i % 7)),
    )
    if status is not None:
        flow.response = FlowResponse(
            status,
            "",
            headers=[(b"Content-Type", content_type), (b"Content-Length", b"%d" % len(resp_body))],
            body=FlowBody(resp_body, len(resp_body)),
        )
    if error is not None:
        flow.error = FlowError(error, "it failed", Phase.CONNECT, 1000.5 + i)
    return flow


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "session.db")
    yield s
    s.close()


def test_put_flush_get_round_trip_with_everything(store: Store) -> None:
    flow = make_flow(1)
    flow.request.body = FlowBody(b"\x00\xffbinary\r\n", 400, truncated=True, sha256="ab" * 32)
    flow.request.trailers = [(b"X-Checksum", b"\xe9t\xe9")]
    flow.client_addr = ("::1", 51234)
    flow.mode = "reverse:http://127.0.0.1:9000"
    flow.tls = TLSInfo(sni="api.example.com", upstream_version="TLSv1.3", upstream_alpn="http/1.1")
    flow.websocket = [
        WebSocketMessage(1001.0, True, 1, 5, b"hello"),
        WebSocketMessage(1002.0, False, 2, 3, b"\x00\x01\xff"),
    ]
    flow.replay_of = "f" * 32
    flow.intercepted = True
    store.put(flow)
    store.flush()
    assert store.get(flow.id) == flow
    assert store.count() == 1
    assert store.get("no-such-id") is None


def test_put_is_an_upsert_keeping_capture_order(store: Store) -> None:
    flows = [make_flow(i, status=None) for i in range(3)]
    for flow in flows:
        store.put(flow)
    store.flush()
    flows[0].response = FlowResponse(204, "No Content")
    store.put(flows[0])
    store.flush()
    assert store.count() == 3
    got = list(store.iter_flows())
    assert [f.id for f in got] == [f.id for f in flows]
    assert got[0].response is not None and got[0].response.status_code == 204


def test_puts_from_many_threads_are_all_kept(store: Store) -> None:
    def worker(base: int) -> None:
        for i in range(250):
            store.put(make_flow(base + i))

    threads = [threading.Thread(target=worker, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    store.flush()
    assert store.count() == 1000


def test_summaries_page_without_bodies(store: Store) -> None:
    flows = [make_flow(i, status=200 + (i % 3)) for i in range(30)]
    for flow in flows:
        store.put(flow)
    store.flush()
    page = store.summaries(10, 5)
    assert [f.id for f in page] == [f.id for f in flows[10:15]]
    for got, want in zip(page, flows[10:15], strict=True):
        assert got.response is not None and want.response is not None
        assert got.response.body.data == b""  # no body bytes read
        assert got.response.body.size == want.response.body.size
        assert got.response.header("content-type") == "application/json"
        assert got.request.url == want.request.url
    assert store.summaries(29, 100)[0].id == flows[29].id
    assert store.summaries(30, 100) == []
    assert [f.response.status_code for f in store.summaries(0, 3, "~c 202")] == [202] * 3  # type: ignore[union-attr]
    by_status = store.summaries(0, 30, sort="status", descending=True)
    assert [f.response.status_code for f in by_status][:10] == [202] * 10  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="unknown sort key"):
        store.summaries(0, 10, sort="bogus")


def test_marks_and_deletes(store: Store) -> None:
    flows = [make_flow(i) for i in range(5)]
    for flow in flows:
        store.put(flow)
    store.flush()
    store.set_marked(flows[1].id, True)
    store.set_marked([flows[2].id, flows[3].id], True)
    assert store.count("~marked") == 3
    store.put(flows[1])  # a later put (flow.marked False) does not clear the user's mark
    store.flush()
    assert store.get(flows[1].id).marked  # type: ignore[union-attr]
    store.set_marked(flows[1].id, False)
    assert store.count("~marked") == 2
    assert store.delete([flows[0].id, "missing"]) == 1
    assert store.delete(flows[2].id) == 1
    assert store.count() == 3
    assert store.get(flows[0].id) is None
    assert flows[0].id not in store.search("items")
    assert store.search("items") == [flows[1].id, flows[3].id, flows[4].id]


def test_search_urls_headers_and_text_bodies(store: Store) -> None:
    text = make_flow(1, resp_body=b"<p>Quarterly revenue report</p>", content_type=b"text/html")
    binary = make_flow(2, resp_body=b"\x89PNG revenue", content_type=b"image/png")
    unlabelled = make_flow(3, resp_body=b"plain words about revenue", content_type=b"")
    gz = make_flow(4, resp_body=b"revenue", content_type=b"text/plain")
    gz.response.headers.append((b"Content-Encoding", b"gzip"))  # type: ignore[union-attr]
    other = make_flow(5, host="shop.test")
    for flow in (text, binary, unlabelled, gz, other):
        store.put(flow)
    store.flush()
    assert store.search("revenue") == [text.id, unlabelled.id]
    assert store.search("QUARTERLY rev") == [text.id]  # case-insensitive, last word a prefix
    assert store.search("shop") == [other.id]  # URL
    assert store.search("test/1.0") == [f.id for f in (text, binary, unlabelled, gz, other)]
    assert store.search('user-agent: "test') != []  # quotes in the text are harmless
    assert store.search("...") == []
    assert store.search("   ") == []
    assert store.search("items", limit=2) == [text.id, binary.id]


def test_search_finds_text_the_viewers_show_as_text(store: Store) -> None:
    # One rule (content.is_text_body) for search, the viewers and HAR export: a body
    # labelled as something else whose bytes are text is searchable too.
    labelled = make_flow(1, resp_body=b"export ledger", content_type=b"application/octet-stream")
    store.put(labelled)
    store.flush()
    assert store.search("ledger") == [labelled.id]
    assert content.render(b"export ledger", "application/octet-stream").viewer == "text"


def test_every_older_schema_version_has_a_migration() -> None:
    from inspector.store.migrations import MIGRATIONS

    assert sorted(MIGRATIONS) == list(range(SCHEMA_VERSION))


def test_bad_filter_expression_raises_filter_error(store: Store) -> None:
    with pytest.raises(FilterError, match="unknown operator"):
        store.count("~nope")
    with pytest.raises(FilterError):
        list(store.iter_flows("(~m GET"))


# --- SQL filters select exactly what the in-memory filters select --------------------------

FILTER_CASES = [
    "~m GET", "~m post", "~d example", "~d '^shop'", "~u /items/1", "~u 'items/(2|3)\\?'",
    "~c 200", "~c 4xx", "~c 500", "~h 'content-type: text'", "~hq user-agent", "~hs '^x-'",
    "~b revenue", "~b '\u00e9t\u00e9'", "~bq hello", "~bs ok", "~t json", "~t html", "~e",
    "~s", "~q", "!~s", "~marked", "~replay", "~m GET & !~c 2xx", "~e | ~c 404",
    "!(~m GET | ~d shop) & ~q", "items", "~b ''", "~h ''", "!~b x",
]  # fmt: skip


def _varied_flows() -> list[Flow]:
    flows = [
        make_flow(0),
        make_flow(1, method="POST", status=404, content_type=b"text/html"),
        make_flow(2, host="shop.test", status=None, error="ConnectionRefusedError"),
        make_flow(3, host="shop.test", status=None),
        make_flow(4, resp_body="\u00e9t\u00e9 revenue".encode(), content_type=b"text/plain"),
        make_flow(5, resp_body=b"", status=500),
    ]
    flows[1].request.body = FlowBody(b"hello=1", 7)
    flows[1].request.headers.append((b"Content-Type", b"application/x-www-form-urlencoded"))
    flows[4].response.headers.append((b"X-Trace", b"1"))  # type: ignore[union-attr]
    flows[5].marked = True
    flows[5].replay_of = flows[0].id
    flows[3].request.headers = []
    return flows


@pytest.mark.parametrize("expr", FILTER_CASES)
def test_sql_filter_matches_python_filter(store: Store, expr: str) -> None:
    flows = _varied_flows()
    for flow in flows:
        store.put(flow)
    store.flush()
    check = parse(expr)
    want = [f.id for f in flows if check(f)]
    assert [f.id for f in store.iter_flows(expr)] == want
    assert store.count(expr) == len(want)
    assert [f.id for f in store.summaries(0, 100, expr)] == want


# --- property: arbitrary flows survive the store -------------------------------------------

_text = st.text(max_size=12)
_latin1 = st.binary(max_size=16)
_pairs = st.lists(st.tuples(_latin1, _latin1), max_size=3)
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_body = st.builds(
    FlowBody, data=st.binary(max_size=64), size=st.integers(0, 2**40), truncated=st.booleans(),
    sha256=st.none() | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)  # fmt: skip
_request = st.builds(
    FlowRequest, method=_text, scheme=st.sampled_from(["http", "https"]), host=_text,
    port=st.integers(0, 65535), path=_text, http_version=_text, headers=_pairs, body=_body,
    trailers=_pairs, timestamp=_finite,
)  # fmt: skip
_response = st.builds(
    FlowResponse, status_code=st.integers(100, 999), reason=_text, http_version=_text,
    headers=_pairs, body=_body, trailers=_pairs, timestamp=_finite,
)  # fmt: skip
_timings = st.builds(
    Timings, start=_finite, connect_start=st.none() | _finite, connect_end=st.none() | _finite,
    tls_end=st.none() | _finite, request_sent=st.none() | _finite,
    response_start=st.none() | _finite, end=st.none() | _finite,
)  # fmt: skip
_flows = st.builds(
    Flow, request=_request, id=st.uuids().map(lambda u: u.hex),
    client_addr=st.tuples(_text, st.integers(0, 65535)), mode=_text,
    response=st.none() | _response, timings=_timings,
    tls=st.none() | st.builds(TLSInfo, sni=st.none() | _text, upstream_cipher=st.none() | _text),
    websocket=st.lists(st.builds(WebSocketMessage, timestamp=_finite, from_client=st.booleans(),
                                 opcode=st.integers(0, 15), size=st.integers(0, 2**32),
                                 head=_latin1), max_size=3),
    error=st.none() | st.builds(FlowError, exc_class=_text, message=_text,
                                phase=st.sampled_from(list(Phase)), timestamp=_finite),
    replay_of=st.none() | _text, marked=st.booleans(), intercepted=st.booleans(),
)  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flow=_flows)
def test_any_flow_round_trips(store: Store, flow: Flow) -> None:
    flow.id = new_flow_id()  # examples share the store; a repeated id would be an update
    store.put(flow)
    store.flush()
    assert store.get(flow.id) == flow


# --- opening files ---------------------------------------------------------------------------


def test_new_file_is_wal_with_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "new.db"
    with Store(path):
        pass
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    conn.close()


@pytest.mark.parametrize("readonly", [False, True])
def test_random_bytes_are_refused_clearly(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(StoreError) as info:
        Store(path, readonly=readonly)
    message = str(info.value)
    assert str(path) in message and "not an http-inspector session" in message
    assert "pick a session file" in message


@pytest.mark.parametrize("readonly", [False, True])
def test_another_sqlite_database_is_refused_clearly(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="SQLite database but not an http-inspector session"):
        Store(path, readonly=readonly)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM customers").fetchone() == (0,)


def test_missing_file_read_only_and_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such session file; check the path"):
        Store(tmp_path / "missing.db", readonly=True)
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path, readonly=True)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with Store(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"newer http-inspector .*upgrade"):
        Store(path)


def test_read_only_store_reads_while_writer_writes(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    writer = Store(path)
    try:
        writer.put(make_flow(0))
        writer.flush()
        reader = Store(path, readonly=True)
        assert reader.count() == 1
        writer.put(make_flow(1))
        writer.flush()
        assert reader.count() == 2  # sees new commits
        with pytest.raises(StoreError, match="read-only"):
            reader.put(make_flow(2))
        with pytest.raises(StoreError, match="read-only"):
            reader.delete("x")
        reader.close()
        with pytest.raises(StoreError, match="closed"):
            reader.count()
    finally:
        writer.close()
    writer.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        writer.put(make_flow(3))


def test_readers_in_several_threads(store: Store) -> None:
    for i in range(50):
        store.put(make_flow(i))
    store.flush()
    counts: list[int] = []

    def read() -> None:
        counts.append(sum(1 for _ in store.iter_flows("~c 200")))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert counts == [50] * 4


# --- migration from the version 0 layout --------------------------------------------------


def _write_version_0(path: Path, flows: list[Flow]) -> None:
    """The legacy layout (see inspector/store/migrations.py): one JSON document per flow."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '0')")
    conn.execute("CREATE TABLE flows (id TEXT PRIMARY KEY, seq INTEGER, flow TEXT NOT NULL)")
    for seq, flow in enumerate(flows):
        rec = flow_to_record(flow)
        rec["marked"] = flow.marked
        rec["req"]["body"]["data"] = flow.request.body.data.decode("latin-1")
        if flow.response is not None:
            rec["resp"]["body"]["data"] = flow.response.body.data.decode("latin-1")
        conn.execute("INSERT INTO flows VALUES (?, ?, ?)", (flow.id, seq, json.dumps(rec)))
    conn.commit()
    conn.close()


def test_version_0_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    flows = [make_flow(i, resp_body=b"old \xff body %d" % i) for i in range(5)]
    flows[2].marked = True
    _write_version_0(path, flows)
    before = path.read_bytes()
    with Store(path, readonly=True) as store:  # read through a migrated copy
        assert [f for f in store.iter_flows()] == flows
        assert store.search("items") == [f.id for f in flows]
    assert path.read_bytes() == before  # a read-only open never changes the file
    with Store(path) as store:
        assert [f for f in store.iter_flows()] == flows
        assert store.count("~marked") == 1
        assert store.search("items") == [f.id for f in flows]
    with Store(path, readonly=True) as store:
        assert store.count() == 5
    conn = sqlite3.connect(path)
    version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


# --- crash safety ---------------------------------------------------------------------------

_CRASH_WRITER = textwrap.dedent(
    """
    import sys, time
    from tests.test_store import make_flow
    from inspector.store import Store

    store = Store(sys.argv[1])
    n = int(sys.argv[2])
    for i in range(n):
        store.put(make_flow(i))
    store.flush()
    print("flushed", flush=True)
    i = n
    while True:  # keep writing until killed, so the kill lands mid-transaction
        store.put(make_flow(i))
        i += 1
        if i % 500 == 0:
            time.sleep(0.001)
    """
)


def test_flushed_flows_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    n = 500
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH_WRITER, str(path), str(n)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"flushed\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    with Store(path) as store:
        paths = [f.request.path for f in store.iter_flows()]
        # Every flushed flow is there (the writer went on putting more until the kill).
        assert paths[:n] == [make_flow(i).request.path for i in range(n)]
        assert store.count() == len(paths) >= n
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_write_failure_keeps_flows_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("inspector.store.files.BUSY_TIMEOUT", 0.05)
    path = tmp_path / "locked.db"
    store = Store(path)
    try:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        flows = [make_flow(i) for i in range(3)]
        store.put(flows[0])
        with pytest.raises(StoreError, match=r"could not write 1 flow\(s\) to the session"):
            store.flush()
        # A batch with an operation in the middle: nothing of it may be lost either.
        store.put(flows[1])
        with pytest.raises(StoreError, match="could not write"):
            store.set_marked(flows[0].id)
        store.put(flows[2])
        store.put(flows[1])  # an update keeps the first place
        with pytest.raises(StoreError, match=r"could not write 3 flow\(s\) to the session"):
            store.flush()
        assert "database is locked" in capsys.readouterr().err
        other.execute("ROLLBACK")
        other.close()
        store.flush()  # the kept flows are written with the next batch
        assert [f.id for f in store.iter_flows()] == [f.id for f in flows]
    finally:
        store.close()


_FORGETFUL_WRITER = textwrap.dedent(
    """
    import sys
    from tests.test_store import make_flow
    from inspector.store import Store

    store = Store(sys.argv[1])
    for i in range(300):
        store.put(make_flow(i))
    # no flush(), no close(): the exit handler must still save every flow
    """
)


def test_flows_are_saved_at_exit_without_close(tmp_path: Path) -> None:
    path = tmp_path / "atexit.db"
    subprocess.run(
        [sys.executable, "-c", _FORGETFUL_WRITER, str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        timeout=60,
    )
    with Store(path, readonly=True) as store:
        assert store.count() == 300


def test_many_concurrent_readers_share_a_small_pool(store: Store) -> None:
    for i in range(20):
        store.put(make_flow(i))
    store.flush()
    barrier = threading.Barrier(10)
    results: list[int] = []

    def read() -> None:
        barrier.wait(timeout=30)
        for _ in range(20):
            results.append(len(store.summaries(0, 100)) + store.count("~s"))

    threads = [threading.Thread(target=read) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [40] * 200
    assert store._readers.idle <= 4  # connections beyond the pool size were closed


def test_summary_rows_are_light_and_agree_with_flows(store: Store) -> None:
    flows = [make_flow(i, status=200 + (i % 3)) for i in range(12)]
    flows[3].response = None
    flows[3].error = FlowError("TimeoutError", "timed out", Phase.STATUS_LINE, 1.0)
    flows[4].replay_of = flows[0].id
    for flow in flows:
        store.put(flow)
    store.flush()
    store.set_marked(flows[5].id)
    rows = store.summary_rows(0, 100)
    assert [r.id for r in rows] == [f.id for f in flows]
    for row, flow in zip(rows, flows, strict=True):
        resp = flow.response
        assert (row.method, row.scheme, row.host, row.port, row.path, row.url) == (
            flow.request.method,
            flow.request.scheme,
            flow.request.host,
            flow.request.port,
            flow.request.path,
            flow.request.url,
        )
        assert row.start == flow.timings.start
        assert row.duration == flow.timings.duration
        assert row.status == (resp.status_code if resp else None)
        assert row.content_type == (resp.header("content-type") if resp else None)
        assert row.response_size == (resp.body.size if resp else None)
        assert row.error_class == (flow.error.exc_class if flow.error else None)
        assert row.replay_of == flow.replay_of
        assert row.marked is (flow is flows[5])
    assert [r.id for r in store.summary_rows(2, 3, "~s")] == [flows[2].id, flows[4].id, flows[5].id]
    slowest = store.summary_rows(0, 1, sort="duration", descending=True)[0]
    assert slowest.duration == max(f.timings.duration or 0 for f in flows)
    with pytest.raises(ValueError, match="unknown sort key"):
        store.summary_rows(sort="url")


def test_search_index_follows_updates_and_deletes(store: Store) -> None:
    flow = make_flow(1, resp_body=b"alpha words", content_type=b"text/plain")
    keep = make_flow(2, resp_body=b"alpha kept", content_type=b"text/plain")
    store.put(flow)
    store.put(keep)
    store.flush()
    assert store.search("alpha") == [flow.id, keep.id]
    flow.response.body = FlowBody(b"beta words", 10)  # type: ignore[union-attr]
    flow.request.headers.append((b"X-Note", b"gamma"))
    store.put(flow)
    store.flush()
    assert store.search("alpha") == [keep.id]  # the old text is gone from the index
    assert store.search("beta") == [flow.id]
    assert store.search("gamma") == [flow.id]
    store.delete(flow.id)
    assert store.search("beta") == [] and store.search("words") == []
    assert store.search("alpha kept") == [keep.id]
    with sqlite3.connect(store.path) as conn:
        conn.execute("INSERT INTO flows_fts (flows_fts) VALUES ('integrity-check')")


def test_a_malformed_flow_is_reported_and_does_not_block_others(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    good = make_flow(1)
    bad = make_flow(2)
    bad.request.headers = [("Host", "not bytes")]  # type: ignore[list-item]
    store.put(bad)
    store.put(good)
    store.flush()  # returns: the writer is not stuck on the bad flow
    assert [f.id for f in store.iter_flows()] == [good.id]
    assert f"cannot record flow {bad.id}" in capsys.readouterr().err


@pytest.fixture(scope="module")
def varied_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[Flow]]]:
    import random

    rng = random.Random(7)
    flows = _varied_flows()
    words = [b"alpha", b"Beta", b"caf\xc3\xa9", b"\xff\x00bin", b"K\xe2\x84\xaaelvin", b""]
    for i in range(30):
        flow = make_flow(
            10 + i,
            method=rng.choice(["GET", "post", "PUT", "DELETE"]),
            host=rng.choice(["a.test", "shop.test", "127.0.0.1", "::1"]),
            status=rng.choice([None, 200, 204, 301, 404, 500, 503]),
            resp_body=b" ".join(rng.sample(words, 2)),
            content_type=rng.choice([b"text/plain", b"application/json", b"image/png", b""]),
            error=rng.choice([None, None, "TimeoutError"]),
        )
        flow.request.headers.append((b"X-Word", rng.choice(words) or b"none"))
        flow.marked = rng.random() < 0.2
        flows.append(flow)
    store = Store(tmp_path_factory.mktemp("varied") / "varied.db")
    for flow in flows:
        store.put(flow)
    store.flush()
    yield store, flows
    store.close()


@settings(max_examples=250, deadline=None)
@given(expr=st.deferred(lambda: _filter_exprs()))
@example(expr="!~websocket")  # found by this test: SQL's NULL status under NOT
def test_sql_and_python_filters_agree_on_any_expression(
    varied_store: tuple[Store, list[Flow]], expr: str
) -> None:
    store, flows = varied_store
    check = parse(expr)
    assert [f.id for f in store.iter_flows(expr)] == [f.id for f in flows if check(f)]


def _filter_exprs() -> st.SearchStrategy[str]:
    from tests.test_filters import _expr

    words = st.sampled_from(
        ["alpha", "beta", "caf\u00e9", "\u212aelvin", "kelvin", "^x-word", "test"]
    )
    leaf = st.one_of(
        st.builds(
            lambda op, w: f"{op} '{w}'",
            st.sampled_from(["~b", "~bq", "~bs", "~h", "~hq", "~hs", "~u", "~d", "~t"]),
            words,
        ),
        st.sampled_from(["~m get", "~m POST", "~c 2xx", "~c 404", "~e", "~s", "~q", "~marked"]),
    )
    return st.one_of(_expr, leaf, st.builds(lambda a, b: f"{a} | !{b}", leaf, leaf))


# --- group commit and search indexing in idle time -------------------------------------


def _meta(path: Path, key: str) -> str | None:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def _fts_rowids(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO flows_fts (flows_fts) VALUES ('integrity-check')")
        return [r[0] for r in conn.execute("SELECT rowid FROM flows_fts ORDER BY rowid")]


def test_flush_and_close_cut_the_commit_delay_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("inspector.store.writer.COMMIT_DELAY", 3600.0)
    path = tmp_path / "s.db"
    flows = [make_flow(i) for i in range(3)]
    store = Store(path)
    store.put(flows[0])
    store.flush(timeout=10)  # the writer does not sit out the hour
    assert store.count() == 1
    store.put(flows[1])
    store.delete(flows[0].id)  # any waiting caller cuts it short
    store.put(flows[2])
    store.close()
    with Store(path, readonly=True) as reader:
        assert [f.id for f in reader.iter_flows()] == [flows[1].id, flows[2].id]


def test_a_trickle_is_committed_without_flush(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as store:
        flows = [make_flow(i) for i in range(3)]
        for flow in flows:
            store.put(flow)
        ids = [f.id for f in flows]
        with Store(path, readonly=True) as reader:
            for _ in range(500):  # bounded: 500 x 10 ms
                if reader.count() == 3:
                    break
                threading.Event().wait(0.01)
            assert [f.id for f in reader.iter_flows()] == ids


def test_new_flows_are_indexed_when_the_writer_is_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("inspector.store.writer.INDEX_IDLE", 0.05)
    monkeypatch.setattr("inspector.store.search.INDEX_CHUNK", 2)
    path = tmp_path / "s.db"
    with Store(path) as store:
        flows = [make_flow(i) for i in range(5)]
        for flow in flows:
            store.put(flow)
        store.flush()
        for _ in range(500):  # bounded: 500 x 10 ms
            if _meta(path, "fts_indexed") == "5":
                break
            threading.Event().wait(0.01)
        assert _meta(path, "fts_indexed") == "5"
        assert _fts_rowids(path) == [1, 2, 3, 4, 5]
        assert store.search("items") == [f.id for f in flows]


def test_search_indexes_what_is_unindexed_first(store: Store) -> None:
    flows = [make_flow(i, resp_body=b"word%d shared" % i, content_type=b"text/plain")
             for i in range(4)]  # fmt: skip
    for flow in flows:
        store.put(flow)
    store.flush()
    assert _meta(store.path, "fts_indexed") == "0"  # nothing indexed on the write path
    assert store.search("word2") == [flows[2].id]
    assert _meta(store.path, "fts_indexed") == "4"
    assert _fts_rowids(store.path) == [1, 2, 3, 4]
    assert store.search("shared") == [f.id for f in flows]


def test_updates_and_deletes_of_unindexed_flows_index_each_flow_once(store: Store) -> None:
    indexed = make_flow(1, resp_body=b"alpha one", content_type=b"text/plain")
    store.put(indexed)
    store.flush()
    assert store.search("alpha") == [indexed.id]  # flow 1 is indexed now
    fresh = [make_flow(i, resp_body=b"alpha %d" % i, content_type=b"text/plain")
             for i in (2, 3, 4)]  # fmt: skip
    for flow in fresh:
        store.put(flow)
    store.flush()
    fresh[0].response.body = FlowBody(b"beta", 4)  # type: ignore[union-attr]
    store.put(fresh[0])  # an update before it was ever indexed
    store.delete(fresh[1].id)  # a delete before it was ever indexed
    indexed.response.body = FlowBody(b"gamma", 5)  # type: ignore[union-attr]
    store.put(indexed)  # an update of an indexed flow
    store.flush()
    assert store.search("alpha") == [fresh[2].id]
    assert store.search("beta") == [fresh[0].id]
    assert store.search("gamma") == [indexed.id]
    assert _fts_rowids(store.path) == [1, 2, 4]


def test_a_big_backlog_is_indexed_while_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("inspector.store.writer.INDEX_IDLE", 3600.0)
    monkeypatch.setattr("inspector.store.writer.MAX_BACKLOG", 3)
    monkeypatch.setattr("inspector.store.search.INDEX_CHUNK", 2)
    path = tmp_path / "s.db"
    with Store(path) as store:
        for i in range(8):
            store.put(make_flow(i))
            store.flush()  # one batch per flow
        # Each batch past a backlog of 3 indexes 2 more: the backlog stays bounded.
        assert 8 - int(_meta(path, "fts_indexed") or 0) <= 4
    assert _fts_rowids(path) == list(range(1, int(_meta(path, "fts_indexed") or 0) + 1))


def test_read_only_search_finds_flows_another_process_has_not_indexed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    flows = [make_flow(i, resp_body=b"needle %d" % i, content_type=b"text/plain")
             for i in range(3)]  # fmt: skip
    with Store(path) as writer:
        writer.put(flows[0])
        writer.flush()
        assert writer.search("needle") == [flows[0].id]  # flow 1 indexed
        writer.put(flows[1])
        writer.put(flows[2])
        writer.flush()  # flows 2 and 3 are not indexed yet
        with Store(path, readonly=True) as reader:
            assert reader.search("needle") == [f.id for f in flows]
            assert reader.search("needle", limit=2) == [flows[0].id, flows[1].id]
            assert reader.search("needle 2") == [flows[2].id]
            assert reader.search("absent") == []
            more = make_flow(9, resp_body=b"needle 9", content_type=b"text/plain")
            writer.put(more)
            writer.flush()  # its temporary index grows by the new flow only
            assert reader.search("needle") == [f.id for f in [*flows, more]]
            assert _meta(path, "fts_indexed") == "1"  # a reader never writes the file
            assert writer.search("needle 9") == [more.id]  # the watermark moves...
            assert reader.search("needle") == [f.id for f in [*flows, more]]  # ...no doubles


def test_version_1_file_is_migrated_as_fully_indexed(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    flows = [make_flow(i) for i in range(3)]
    with Store(path) as store:
        for flow in flows:
            store.put(flow)
        store.flush()
        store.search("items")  # version 1 indexed every flow as it was written
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'fts_indexed'")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with Store(path, readonly=True) as reader:  # through a migrated copy
        assert reader.search("items") == [f.id for f in flows]
    with Store(path) as store:
        assert store.search("items") == [f.id for f in flows]
    assert _meta(path, "fts_indexed") == "3"
    assert _meta(path, "schema_version") == str(SCHEMA_VERSION)
    assert _fts_rowids(path) == [1, 2, 3]  # indexed once, not again


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
        return {r[0] for r in rows}


def test_a_sort_index_is_created_when_first_sorted_by(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    flows = [make_flow(i, status=(500, 200, 404)[i % 3]) for i in range(6)]
    with Store(path) as store:
        for flow in flows:
            store.put(flow)
        store.flush()
        assert _indexes(path) == {"flows_order"}  # writes pay for no sort index yet
        with Store(path, readonly=True) as reader:  # sorts without the index
            by_status = [f.id for f in reader.summary_rows(sort="status", descending=True)]
        assert _indexes(path) == {"flows_order"}
        assert [f.id for f in store.summary_rows(sort="status", descending=True)] == by_status
        assert _indexes(path) == {"flows_order", "flows_status"}
        store.summaries(0, 2, sort="size")
        assert _indexes(path) == {"flows_order", "flows_status", "flows_resp_size"}
    # close() leaves a session with every sort index, for read-only viewers.
    assert _indexes(path) == {"flows_order", "flows_start", "flows_method", "flows_host",
                              "flows_status", "flows_resp_size", "flows_duration"}  # fmt: skip
    expected = sorted(flows, key=lambda f: (f.response.status_code, flows.index(f)), reverse=True)  # type: ignore[union-attr]
    assert by_status == [f.id for f in expected]


def test_close_indexes_what_is_left_within_its_time_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flows = [make_flow(i) for i in range(5)]
    with Store(tmp_path / "all.db") as store:
        for flow in flows:
            store.put(flow)
    assert _meta(tmp_path / "all.db", "fts_indexed") == "5"
    monkeypatch.setattr("inspector.store.writer.CLOSE_INDEX_SECONDS", 0.0)
    monkeypatch.setattr("inspector.store.search.INDEX_CHUNK", 2)
    with Store(tmp_path / "some.db") as store:
        for flow in flows:
            store.put(flow)
    assert _meta(tmp_path / "some.db", "fts_indexed") == "2"  # one chunk, then time is up
    with Store(tmp_path / "some.db", readonly=True) as reader:
        assert reader.search("items") == [f.id for f in flows]


def test_a_closed_session_is_one_file_even_after_reads(tmp_path: Path) -> None:
    """Readers close before the writer, so SQLite folds the WAL back into the file."""
    path = tmp_path / "s.db"
    store = Store(path)
    store.put(make_flow())
    store.flush()
    assert store.count() == 1 and len(store.summary_rows()) == 1
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]
    reopened = Store(path, readonly=True)
    try:
        assert reopened.count() == 1
    finally:
        reopened.close()
