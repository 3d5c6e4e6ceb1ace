"""``~http2`` over recorded traffic: a real proxy, HTTP/2 and HTTP/1.1 clients, the session file."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import requests

from inspector.config import Endpoint, Mode
from inspector.filters import parse
from inspector.store import SCHEMA_VERSION, Store
from inspector.tui.rows import FlowRow
from protocol.headers import Headers
from protocol.http2 import AsyncHTTP2Connection
from tests.h2_fixtures import hypercorn_plain
from tests.h2_servers import HypercornServer
from tests.proxy_fixtures import live_proxy

__all__ = ["hypercorn_plain"]  # a fixture used by name


async def _h2_get(port: int, paths: list[str]) -> None:
    conn = AsyncHTTP2Connection("127.0.0.1", port, read_timeout=10)
    await conn.connect()
    try:
        for path in paths:
            stream = await conn.open_stream(
                b"GET", b"http", b"h2.test", path.encode(), Headers(), end_stream=True
            )
            assert (await stream.receive_response()).status_code == 200
            assert [chunk async for chunk in stream.iter_body()]
    finally:
        await conn.close()


def _record_mixed(tmp_path: Path, upstream: HypercornServer) -> Path:
    """Two exchanges over HTTP/2 and one over HTTP/1.1 through a reverse proxy to hypercorn."""
    mode = Mode("reverse", Endpoint("http", "127.0.0.1", upstream.port))
    with live_proxy(tmp_path, mode=mode) as proxy:
        asyncio.run(_h2_get(proxy.port, ["/two/a", "/two/b"]))
        assert requests.get(f"{proxy.url}/one", timeout=10).text.endswith("http/1.1 body=0")
        proxy.finished(3)
    return tmp_path / "session.db"


def test_http2_selects_the_same_flows_in_memory_in_the_session_and_on_list_rows(
    tmp_path: Path, hypercorn_plain: HypercornServer
) -> None:
    session = _record_mixed(tmp_path, hypercorn_plain)
    h2 = parse("~http2")
    with Store(session, readonly=True) as store:
        flows = list(store.iter_flows())
        by_sql = [f.request.path for f in store.iter_flows("~http2")]
        negated = [f.request.path for f in store.iter_flows("!~http2 & ~m GET")]
        summaries = store.summary_rows()
    assert sorted(by_sql) == ["/two/a", "/two/b"]
    assert negated == ["/one"]
    assert sorted(f.request.path for f in flows if h2(f)) == sorted(by_sql)
    row_test = h2.row_test()
    assert row_test is not None
    from_summaries = sorted(s.path for s in summaries if row_test(FlowRow.from_summary(s)))
    assert from_summaries == sorted(by_sql)
    assert {s.path: s.http_version for s in summaries}["/one"] == "HTTP/1.1"


def test_a_version_3_session_gains_the_column_from_its_records(
    tmp_path: Path, hypercorn_plain: HypercornServer
) -> None:
    session = _record_mixed(tmp_path, hypercorn_plain)
    with sqlite3.connect(session) as conn:  # the layout before the column (HTTP/2 flows in it)
        conn.execute("ALTER TABLE flows DROP COLUMN http_version")
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with Store(session, readonly=True) as reader:  # a migrated copy; the file stays at 3
        assert reader.count("~http2") == 2 and reader.count() == 3
    with Store(session) as store:
        assert sorted(f.request.path for f in store.iter_flows("~http2")) == ["/two/a", "/two/b"]
    with sqlite3.connect(session) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)
