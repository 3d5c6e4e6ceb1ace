"""The runtime tunes the cyclic collector while proxies run, and restores it after the last."""

from __future__ import annotations

import gc
import urllib.request
from collections.abc import Iterator

import pytest

from inspector.runtime import GC_GEN0_THRESHOLD
from tests.proxy_fixtures import live_proxy


def _get_through(proxy, url: str) -> bytes:  # type: ignore[no-untyped-def]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
    with opener.open(url, timeout=10) as response:
        return response.read()


@pytest.fixture
def nothing_frozen() -> Iterator[None]:
    """Start with no frozen objects (as a fresh process does); put back what was frozen."""
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    yield
    if frozen:
        gc.freeze()


@pytest.fixture
def embedder_froze() -> Iterator[int]:
    """A program that embeds the proxy and froze its own objects before starting it."""
    already = gc.get_freeze_count()
    gc.freeze()
    yield gc.get_freeze_count()
    if not already:
        gc.unfreeze()


def test_collector_tuned_while_two_proxies_run_and_restored_after(
    tmp_path, echo_server, nothing_frozen
):  # type: ignore[no-untyped-def]
    before = gc.get_threshold()
    with live_proxy(tmp_path / "a") as first:
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
        assert gc.get_freeze_count() > 0, "start-up objects are frozen"
        with live_proxy(tmp_path / "b") as second:
            assert _get_through(second, echo_server.url + "/x")
        # the second proxy stopping must not undo the tuning the first still runs with
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
        assert gc.get_freeze_count() > 0
        assert _get_through(first, echo_server.url + "/y")
        assert len(first.finished(1)) == 1
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_objects_the_embedder_froze_are_left_alone(tmp_path, echo_server, embedder_froze):  # type: ignore[no-untyped-def]
    # Frozen objects that die leave the count, so it may only shrink, never grow or drop to 0.
    with live_proxy(tmp_path) as proxy:
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
        assert 0 < gc.get_freeze_count() <= embedder_froze, "the proxy froze more on its own"
        assert _get_through(proxy, echo_server.url + "/x")
    assert 0 < gc.get_freeze_count() <= embedder_froze, "the proxy unfroze the embedder's"
