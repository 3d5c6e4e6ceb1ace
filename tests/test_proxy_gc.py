"""The runtime tunes the cyclic collector while proxies run, and restores it after the last."""

from __future__ import annotations

import gc
import urllib.request

from inspector.runtime import GC_GEN0_THRESHOLD
from tests.proxy_fixtures import live_proxy


def _get_through(proxy, url: str) -> bytes:  # type: ignore[no-untyped-def]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
    with opener.open(url, timeout=10) as response:
        return response.read()


def test_collector_tuned_while_two_proxies_run_and_restored_after(tmp_path, echo_server):
    before, frozen_before = gc.get_threshold(), gc.get_freeze_count()
    with live_proxy(tmp_path / "a") as first:
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
        assert gc.get_freeze_count() > 0 or frozen_before
        with live_proxy(tmp_path / "b") as second:
            assert _get_through(second, echo_server.url + "/x")
        # the second proxy stopping must not undo the tuning the first still runs with
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
        assert _get_through(first, echo_server.url + "/y")
        assert len(first.finished(1)) == 1
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before
