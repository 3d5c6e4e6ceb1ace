"""The hostile-client corpus (tests/corpus_requests.py) against the real proxy process.

Each case: the client sends its bytes on a fresh connection; the status it gets (or
the close) must be one the case accepts, the proxy must close after an error, the
origin must have seen exactly what that outcome allows (nothing, or one request that
passes the case's checks), the proxy's memory stays within a fixed budget, and a
normal request works right after.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from inspector.store import Store
from tests.corpus import CLOSED, Case
from tests.corpus_held import HELD_BACK
from tests.corpus_requests import REQUESTS
from tests.hostile_harness import (
    RecordingOrigin,
    fill,
    normal_request,
    rss_kib,
    status_and_close,
)
from tests.proxy_process import ProxyProcess

# How far the proxy's resident memory may rise over its warmed-up size during the corpus.
RSS_BUDGET_KIB = 48 * 1024


@pytest.fixture(scope="module")
def origin() -> Iterator[RecordingOrigin]:
    server = RecordingOrigin()
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    p = ProxyProcess(tmp_path_factory.mktemp("hostile-clients"))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def rss_ceiling(proxy: ProxyProcess, origin: RecordingOrigin) -> int:
    for _ in range(20):
        normal_request(proxy, origin, "/warm-up")
    return rss_kib(proxy) + RSS_BUDGET_KIB


def test_corpus_is_large_and_named_once() -> None:
    assert len(REQUESTS) >= 150 - 40  # with the upstream and peer corpora: over 150
    assert len({c.name for c in REQUESTS}) == len(REQUESTS)


def _send(case: Case, proxy: ProxyProcess, origin: RecordingOrigin) -> tuple[int, bool]:
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
        try:
            s.sendall(fill(case.data, origin))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy may hang up before reading everything (overlong input)
        if case.half_close:
            s.shutdown(socket.SHUT_WR)
        status, closed, _ = status_and_close(s)
    return status, closed


@pytest.mark.parametrize("case", REQUESTS + HELD_BACK, ids=lambda c: c.name)
def test_hostile_request(
    case: Case, proxy: ProxyProcess, origin: RecordingOrigin, rss_ceiling: int
) -> None:
    seen_before, received_before = len(origin.seen), origin.received
    status, closed = _send(case, proxy, origin)
    normal_request(proxy, origin)  # the barrier: whatever the case sent upstream is in by now
    barrier = origin.seen[-1]
    assert b"/barrier " in barrier.head
    seen = [s for s in origin.seen[seen_before:-1]]
    received = origin.received - received_before - len(barrier.raw)
    assert status in case.statuses, (
        f"{case.name}: got {status or 'a close'}, not {sorted(case.statuses)}"
    )
    if status >= 400 or status == CLOSED:
        assert closed, f"{case.name}: connection left open after {status}"
    problem = case.outcomes[status].holds(seen, received, origin.authority)
    assert problem is None, f"{case.name} ({status}): {problem}"
    assert rss_kib(proxy) < rss_ceiling, f"{case.name}: proxy memory grew past the budget"


def test_session_records_only_real_exchanges(proxy: ProxyProcess) -> None:
    """Rejected garbage is answered, not recorded as a fake exchange with a made-up URL;
    runs after the corpus (same module, file order)."""
    store = Store(proxy.session, readonly=True)
    try:
        hosts = {flow.request.host for flow in store.iter_flows()}
    finally:
        store.close()
    assert hosts <= {"127.0.0.1"}
